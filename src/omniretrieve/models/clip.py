"""Dual encoders for text <-> image retrieval: CLIP (``CLIPModel``) and SigLIP
(``SiglipModel``).

Text and images go through their own towers and projections into one space; vectors are
L2-normalised. CLIP pools the text at its end-of-text token, SigLIP at the last position of a
text padded to the length it was trained with (``padding="max_length"``), so SigLIP texts are
always padded to that length. Images go through the checkpoint's own image processor (the
PIL-based one: no torchvision needed). An input holding both text and an image has no single
vector in these models and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.inputs import ImageInput, Input, MixedInput, TextInput
from omniretrieve.models.base import EncodeOutput, LoadOptions, ProgressCallback, check_task
from omniretrieve.models.images import load_image
from omniretrieve.models.pooling import normalized
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.models.transformer_embedder import TransformerEmbedder
from omniretrieve.runtime.batching import plan_batches

DUAL_ENCODERS = {"CLIPModel": "clip", "SiglipModel": "siglip"}
IMAGE_BATCH = 16


def _matches(info: CheckpointInfo) -> bool:
    return bool(set(info.architectures) & set(DUAL_ENCODERS))


def _dimension(info: CheckpointInfo) -> int | None:
    if info.config.get("projection_dim"):
        return int(info.config["projection_dim"])
    text = info.config.get("text_config") or {}
    return int(text.get("projection_size") or text.get("hidden_size") or 0) or None


class DualEncoder(TransformerEmbedder):
    family = "clip"
    modalities = frozenset({"text", "image"})
    normalized = True

    def __init__(
        self,
        model_id: str,
        model: Any,
        tokenizer: Any,
        image_processor: Any,
        options: LoadOptions,
        *,
        kind: str,
        dimension: int,
        max_length: int,
    ) -> None:
        super().__init__(
            model_id, model, tokenizer, options, dimension=dimension, max_length=max_length
        )
        self.image_processor = image_processor
        self.kind = kind

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> DualEncoder:
        from transformers import AutoImageProcessor

        assert source.path is not None and source.info is not None
        kind = next(DUAL_ENCODERS[a] for a in source.info.architectures if a in DUAL_ENCODERS)
        image_processor = AutoImageProcessor.from_pretrained(source.path, backend="pil")
        text_config = source.info.config.get("text_config") or {}
        max_length = int(text_config.get("max_position_embeddings") or 77)
        dimension = _dimension(source.info)
        if not dimension:
            raise InputError(f"{source.path}: cannot tell the embedding size from config.json")
        return cls(
            source.model_id,
            cls.load_weights(source.path, options),
            cls.load_tokenizer(source.path),
            image_processor,
            options,
            kind=kind,
            dimension=dimension,
            max_length=max_length,
        )

    def encode(
        self,
        inputs: Sequence[Input],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> EncodeOutput:
        check_task(task)
        vectors = np.empty((len(inputs), self.dimension), dtype=np.float32)
        truncated = [False] * len(inputs)
        counts = [0] * len(inputs)
        texts = [(i, item.text) for i, item in enumerate(inputs) if isinstance(item, TextInput)]
        images = [(i, item) for i, item in enumerate(inputs) if isinstance(item, ImageInput)]
        for position, item in enumerate(inputs):
            if isinstance(item, MixedInput):
                raise InputError(
                    f"input[{position}] holds text and an image; {self.model_id} embeds one or "
                    "the other (send them as two inputs)",
                    field=f"input[{position}]",
                )
        if texts:
            prefix = instruction or ""
            self._encode_texts(
                [prefix + t for _, t in texts],
                [i for i, _ in texts],
                vectors,
                truncated,
                counts,
                progress,
            )
        for start in range(0, len(images), IMAGE_BATCH):
            chunk = images[start : start + IMAGE_BATCH]
            vectors[[i for i, _ in chunk]] = self._encode_images(
                [img for _, img in chunk], [i for i, _ in chunk]
            )
            if progress is not None:
                progress(len(chunk))
        return EncodeOutput(vectors=vectors, truncated=truncated, token_counts=counts)

    def _encode_texts(
        self,
        texts: list[str],
        positions: list[int],
        vectors: np.ndarray,
        truncated: list[bool],
        counts: list[int],
        progress: ProgressCallback | None,
    ) -> None:
        import torch

        full = self.tokenizer(texts, truncation=False)["input_ids"]
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        lengths = [self.max_length if self.kind == "siglip" else len(row) for row in ids]
        for batch in plan_batches(
            lengths,
            token_budget=self.options.token_budget,
            max_batch_size=self.options.max_batch_size,
        ):
            with torch.inference_mode():
                features = self._text_features([ids[i] for i in batch])
            normalised = normalized(features).cpu().numpy()
            for row, index in zip(normalised, batch, strict=True):
                vectors[positions[index]] = row
                truncated[positions[index]] = len(full[index]) > self.max_length
                counts[positions[index]] = len(ids[index])
            if progress is not None:
                progress(len(batch))

    def _encode_images(self, images: list[ImageInput], positions: list[int]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            features = self._image_features(images, positions)
        return normalized(features).cpu().numpy()

    def _text_features(self, rows: list[list[int]]) -> Any:
        """Projected text features of one batch of token ids (gradients unless turned off)."""
        batch = {"input_ids": rows}
        if self.kind == "siglip":  # padded as it was trained, pooled at the last position
            padded = self.tokenizer.pad(
                batch, padding="max_length", max_length=self.max_length, return_tensors="pt"
            )
        else:
            padded = self.tokenizer.pad(batch, padding=True, return_tensors="pt")
        arguments = {"input_ids": padded["input_ids"].to(self.options.device)}
        if self.kind == "clip":
            arguments["attention_mask"] = padded["attention_mask"].to(self.options.device)
        return _features(self.model.get_text_features(**arguments))

    def _image_features(self, images: list[ImageInput], positions: list[int]) -> Any:
        pil = [
            load_image(image, field=f"input[{p}]")
            for image, p in zip(images, positions, strict=True)
        ]
        pixels = self.image_processor(images=pil, return_tensors="pt")["pixel_values"]
        pixels = pixels.to(self.options.device, dtype=self.model.dtype)
        return _features(self.model.get_image_features(pixel_values=pixels))

    def training_vectors(self, inputs: Sequence[Input], *, query: bool) -> Any:
        """Normalised vectors of one batch with gradients (fine-tuning), in input order."""
        import torch

        rows: list[Any] = [None] * len(inputs)
        texts = [(i, x.text) for i, x in enumerate(inputs) if isinstance(x, TextInput)]
        images = [(i, x) for i, x in enumerate(inputs) if isinstance(x, ImageInput)]
        if len(texts) + len(images) != len(inputs):
            raise InputError(f"{self.model_id} trains on texts and images, one per input")
        if texts:
            ids = self.tokenizer(
                [t for _, t in texts], truncation=True, max_length=self.max_length
            )["input_ids"]
            for (i, _), row in zip(texts, self._text_features(ids), strict=True):
                rows[i] = row
        if images:
            features = self._image_features([x for _, x in images], [i for i, _ in images])
            for (i, _), row in zip(images, features, strict=True):
                rows[i] = row
        return normalized(torch.stack(rows))


def _features(output: Any) -> Any:
    """Projected features (transformers 5 returns an output object, 4.x a tensor)."""
    return output if hasattr(output, "shape") else output.pooler_output


FAMILY = Family(
    name="clip",
    kind="embedder",
    modalities=frozenset({"text", "image"}),
    matches=_matches,
    loader=lambda: DualEncoder,
    dimension=_dimension,
)
