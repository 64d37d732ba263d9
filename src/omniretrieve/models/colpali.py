"""ColPali and ColQwen2: late-interaction embedders over page images, one vector per token,
through transformers' own classes (``ColPaliForRetrieval`` / ``ColQwen2ForRetrieval`` and their
processors), so the prompts are the processors': a query reads its ``query_prefix``, the text and
ten augmentation tokens; a page image reads the ``visual_prompt_prefix``.

Per input, the model's embeddings (already L2-normalised by the model) at the positions the
attention mask keeps: padding dropped. The score is the processors' ``score_retrieval``: for
each query vector its largest dot product with a page's vectors, summed over the query's vectors.
Texts and images are batched apart; an input holding both is refused (the model reads one or the
other). These models have no single-vector output: ask for ``return_multivector``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.inputs import ImageInput, Input, TextInput
from omniretrieve.models.base import (
    LoadOptions,
    MultiEncodeOutput,
    PerTokenEmbedder,
    ProgressCallback,
    check_outputs,
    check_task,
)
from omniretrieve.models.images import load_image
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.runtime.batching import plan_batches
from omniretrieve.runtime.torch_utils import load_pretrained

ARCHITECTURES = {"ColPaliForRetrieval": "colpali", "ColQwen2ForRetrieval": "colqwen2"}
IMAGE_TOKEN_ESTIMATE = 1024
"""Tokens an image is assumed to take when batches are planned (before it is processed)."""


def _matches(info: CheckpointInfo) -> bool:
    return bool(set(info.architectures) & set(ARCHITECTURES))


def _dimension(info: CheckpointInfo) -> int | None:
    value = info.config.get("embedding_dim")
    return int(value) if isinstance(value, int) else None


class LateInteractionEmbedder(PerTokenEmbedder):
    family = "colpali"
    modalities = frozenset({"text", "image"})

    def __init__(
        self, model_id: str, model: Any, processor: Any, options: LoadOptions, backend: str
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.options = options
        self.backend = backend
        self.dimension = int(model.config.embedding_dim)
        self.multivector_dimension = self.dimension
        self.max_length = int(getattr(processor.tokenizer, "model_max_length", 0) or 0) or 32768
        self.dtype = self.runs_in(options.dtype, options.device)

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> LateInteractionEmbedder:
        import transformers

        assert source.path is not None and source.info is not None
        architecture = next(a for a in source.info.architectures if a in ARCHITECTURES)
        backend = ARCHITECTURES[architecture]
        model_class = getattr(transformers, architecture)
        processor_class = getattr(
            transformers, "ColPaliProcessor" if backend == "colpali" else "ColQwen2Processor"
        )
        processor = processor_class.from_pretrained(source.path)
        dtype = cls.runs_in(options.dtype, options.device)
        model = load_pretrained(model_class, source.path, options.device, dtype)
        return cls(source.model_id, model, processor, options, backend)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(list(texts))["input_ids"]]

    def encode_outputs(
        self,
        inputs: Sequence[Input],
        outputs: frozenset[str],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> MultiEncodeOutput:
        check_task(task)
        check_outputs(self, outputs)
        if instruction is not None:
            raise InputError(
                f"{self.model_id} takes no instruction (its processor's prompts are fixed)",
                field="instruction",
            )
        for position, item in enumerate(inputs):
            if not isinstance(item, TextInput | ImageInput):
                raise InputError(
                    f"input[{position}]: {self.model_id} reads a text or an image, not both",
                    field=f"input[{position}]",
                )
        texts = [i for i, item in enumerate(inputs) if isinstance(item, TextInput)]
        images = [i for i, item in enumerate(inputs) if isinstance(item, ImageInput)]
        found: dict[int, np.ndarray] = {}
        counts: dict[int, int] = {}
        # (a tokenizer given no text fails: a batch of images alone counts none)
        text_lengths = self.count_tokens([inputs[i].text for i in texts]) if texts else []  # type: ignore[union-attr]
        for group, lengths in (
            (texts, text_lengths),
            (images, [IMAGE_TOKEN_ESTIMATE] * len(images)),
        ):
            for batch in plan_batches(
                lengths,
                token_budget=max(self.options.token_budget, IMAGE_TOKEN_ESTIMATE),
                max_batch_size=self.options.max_batch_size,
            ):
                chosen = [group[i] for i in batch]
                for index, vectors in zip(
                    chosen, self._batch([inputs[i] for i in chosen]), strict=True
                ):
                    found[index], counts[index] = vectors, len(vectors)
                if progress is not None:
                    progress(len(chosen))
        order = range(len(inputs))
        return MultiEncodeOutput(
            dense=None,
            sparse=None,
            multivectors=[found[i] for i in order],
            truncated=[False] * len(inputs),
            token_counts=[counts[i] for i in order],
        )

    def _batch(self, items: Sequence[Input]) -> list[np.ndarray]:
        """One batch of texts or of images -> each one's vectors at its kept positions."""
        import torch

        if isinstance(items[0], TextInput):
            prepared = self.processor(
                text=[item.text for item in items],  # type: ignore[union-attr]
                return_tensors="pt",
                padding="longest",
            )
        else:
            pictures = [load_image(item, field="input") for item in items]  # type: ignore[arg-type]
            prepared = self.processor(images=pictures, return_tensors="pt")
        prepared = {k: v.to(self.options.device) for k, v in prepared.items()}
        with torch.inference_mode():
            embeddings = self.model(**prepared).embeddings.float().cpu().numpy()
        mask = prepared["attention_mask"].bool().cpu().numpy()
        return [embeddings[row][mask[row]] for row in range(len(items))]


FAMILY = Family(
    name="colpali",
    kind="embedder",
    modalities=frozenset({"text", "image"}),
    matches=_matches,
    loader=lambda: LateInteractionEmbedder,
    dimension=_dimension,
)
