"""Multimodal embedders on vision-language backbones: BGE-VL-v1.5 (LLaVA-NeXT weights, named
``LLaVANextForEmbedding``), other LLaVA-NeXT checkpoints and BGE-VL-Screenshot (Qwen2.5-VL). An
input (text, image, or both: a composed query) becomes one prompt; its vector is the last
hidden state at the last real token, L2-normalised.

BGE-VL-v1.5 follows its reference code exactly (MODEL_RECIPES.md, verified): the fixed prompts
of :func:`bge_vl_prompt`, images resized to 512x512 RGB, batches padded on the left and pooled
at position -1. For the other checkpoints:

What is read from the checkpoint (the recipes leave it open): the chat template
(``chat_template`` in tokenizer_config.json, or chat_template.json / .jinja) wraps each input as
one user turn with the generation prompt added; ``config_sentence_transformers.json`` prompts,
when present, give the query instruction; ``1_Pooling/config.json``, when present, must say last
token. Without a chat template the prompt is the image placeholder, a newline and the text.
Queries (``task="retrieval.query"``) get the family's instruction (see
:data:`DEFAULT_INSTRUCTIONS`) unless ``instruction`` is given; candidates get none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omniretrieve.errors import UnsupportedModelError
from omniretrieve.inputs import ImageInput, Input, MixedInput, TextInput
from omniretrieve.models.base import (
    EncodeOutput,
    LoadOptions,
    ProgressCallback,
    check_task,
)
from omniretrieve.models.images import load_image
from omniretrieve.models.pooling import last_token, normalized
from omniretrieve.models.qwen_vl_inputs import (
    IMAGE_PLACEHOLDER,
    VisualInput,
    expand_image_pads,
    prepare_image,
    strip_vision_tokens,
)
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.models.transformer_embedder import TransformerEmbedder
from omniretrieve.runtime.batching import plan_batches

BACKENDS = {
    "LLaVANextForEmbedding": "bge-vl",
    "LlavaNextForConditionalGeneration": "llava-next",
    "Qwen2_5_VLForConditionalGeneration": "qwen2.5-vl",
}
"""``LLaVANextForEmbedding`` is BGE-VL's remote-code class over LLaVA-NeXT weights: the weights
load as LLaVA-NeXT (no remote code runs) and the inputs follow its reference code."""
COMPOSED_RETRIEVAL = (
    "Retrieve the target image that best meets the combined criteria by using both the "
    "provided image and the image retrieval instructions: "
)
DEFAULT_INSTRUCTIONS = {
    "bge-vl": COMPOSED_RETRIEVAL,
    "llava-next": COMPOSED_RETRIEVAL,
    "qwen2.5-vl": "Represent the given image with the given query.",
}
"""Query instructions from the models' recipes (BGE-VL-v1.5, BGE-VL-Screenshot)."""
PLACEHOLDERS = {"bge-vl": "<image>", "llava-next": "<image>", "qwen2.5-vl": IMAGE_PLACEHOLDER}
LLAVA_BACKENDS = frozenset({"bge-vl", "llava-next"})
"""Backends whose processor (LlavaNextProcessor, no torchvision needed) expands ``<image>``."""
BGE_VL_IMAGE_SIZE = (512, 512)
MAX_LENGTH = 4096
MIN_PIXELS = 56 * 56
MAX_PIXELS = 1280 * 28 * 28
IMAGE_TOKEN_ESTIMATE = 1024
"""Tokens an image is assumed to take when batches are planned (before it is processed)."""


def _matches(info: CheckpointInfo) -> bool:
    return bool(set(info.architectures) & set(BACKENDS))


def _dimension(info: CheckpointInfo) -> int | None:
    text = info.config.get("text_config") or info.config
    return int(text.get("hidden_size", 0)) or None


def checkpoint_settings(info: CheckpointInfo) -> tuple[str | None, str | None]:
    """(chat template, query prompt) as the checkpoint's files give them."""
    template = None
    tokenizer_config = info.read_json("tokenizer_config.json")
    if isinstance(tokenizer_config, dict) and isinstance(
        tokenizer_config.get("chat_template"), str
    ):
        template = tokenizer_config["chat_template"]
    chat = info.read_json("chat_template.json")
    if isinstance(chat, dict) and isinstance(chat.get("chat_template"), str):
        template = chat["chat_template"]
    if "chat_template.jinja" in info.files:
        template = (info.path / "chat_template.jinja").read_text(encoding="utf-8")
    pooling = info.read_json("1_Pooling/config.json")
    if isinstance(pooling, dict) and not pooling.get("pooling_mode_lasttoken", False):
        raise UnsupportedModelError(
            f"{info.path}: 1_Pooling/config.json asks for a pooling other than the last token"
        )
    prompts = info.read_json("config_sentence_transformers.json")
    query_prompt = None
    if isinstance(prompts, dict) and isinstance(prompts.get("prompts"), dict):
        found = prompts["prompts"].get("query")
        query_prompt = found if isinstance(found, str) and found else None
    return template, query_prompt


def bge_vl_prompt(text: str, has_image: bool, instruction: str, *, query: bool) -> str:
    """BGE-VL's fixed prompt (its reference code, not a chat template): queries name their
    instruction, candidates do not; the text, then the image, then the closing tag."""
    prompt = f"[INST] \n <instruct> {instruction} <query> " if query else "[INST] "
    if text:
        prompt += f" {text} \n"
    if has_image:
        prompt += " <image>"
    return prompt + " [/INST]"


@dataclass
class _Prepared:
    text: str
    images: list[Any] = field(default_factory=list)


class VlmEmbedder(TransformerEmbedder):
    family = "vlm-embedder"
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
        backend: str,
        dimension: int,
        max_length: int,
        chat_template: str | None,
        query_prompt: str | None,
        processor: Any = None,
    ) -> None:
        super().__init__(
            model_id, model, tokenizer, options, dimension=dimension, max_length=max_length
        )
        self.image_processor = image_processor
        self.processor = processor
        self.backend = backend
        self.chat_template = chat_template
        self.query_prompt = query_prompt

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> VlmEmbedder:
        from transformers import AutoImageProcessor, AutoProcessor

        assert source.path is not None and source.info is not None
        backend = next(BACKENDS[a] for a in source.info.architectures if a in BACKENDS)
        template, query_prompt = checkpoint_settings(source.info)
        # BGE-VL pools position -1 of the padded batch, so its batches are padded on the left
        padding_side = "left" if backend == "bge-vl" else "right"
        tokenizer = cls.load_tokenizer(source.path, padding_side=padding_side)
        processor = None
        if backend in LLAVA_BACKENDS:
            processor = AutoProcessor.from_pretrained(source.path, trust_remote_code=False)
            processor.tokenizer.padding_side = padding_side
            image_processor = processor.image_processor
        else:
            image_processor = AutoImageProcessor.from_pretrained(source.path, backend="pil")
        model = cls.load_weights(source.path, options, require_all=True)
        text = source.info.config.get("text_config") or source.info.config
        positions = int(text.get("max_position_embeddings") or MAX_LENGTH)
        return cls(
            source.model_id,
            model,
            tokenizer,
            image_processor,
            options,
            backend=backend,
            dimension=int(text["hidden_size"]),
            max_length=min(MAX_LENGTH, positions),
            chat_template=template,
            query_prompt=query_prompt,
            processor=processor,
        )

    # -- prompts --------------------------------------------------------------------------
    def instruction_for(self, task: str | None, instruction: str | None) -> str:
        if instruction is not None:
            return instruction
        if task != "retrieval.query":
            return ""
        return self.query_prompt or DEFAULT_INSTRUCTIONS[self.backend]

    def prompt(self, item: Input, instruction: str, position: int, *, query: bool) -> _Prepared:
        """One input as the model reads it (images not yet processed)."""

        text = item.text if isinstance(item, TextInput | MixedInput) else ""
        text = strip_vision_tokens(text)
        image = item if isinstance(item, ImageInput) else getattr(item, "image", None)
        images = [load_image(image, field=f"input[{position}]")] if image is not None else []
        if self.backend == "bge-vl":
            resized = [i.convert("RGB").resize(BGE_VL_IMAGE_SIZE) for i in images]
            return _Prepared(bge_vl_prompt(text, bool(images), instruction, query=query), resized)
        words = f"{instruction}{text}"
        if self.chat_template is not None:
            content: list[dict[str, str]] = [{"type": "image"}] if images else []
            if words:
                content.append({"type": "text", "text": words})
            rendered = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": content}],
                chat_template=self.chat_template,
                tokenize=False,
                add_generation_prompt=True,
            )
            return _Prepared(rendered, images)
        placeholder = PLACEHOLDERS[self.backend] + "\n" if images else ""
        return _Prepared(placeholder + words, images)

    # -- encoding -------------------------------------------------------------------------
    def encode(
        self,
        inputs: Sequence[Input],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> EncodeOutput:
        check_task(task)
        chosen = self.instruction_for(task, instruction)
        query = task == "retrieval.query" or instruction is not None
        prepared = [self.prompt(item, chosen, i, query=query) for i, item in enumerate(inputs)]
        counts = [
            len(self.tokenizer(p.text)["input_ids"]) + IMAGE_TOKEN_ESTIMATE * len(p.images)
            for p in prepared
        ]
        vectors = np.empty((len(inputs), self.dimension), dtype=np.float32)
        truncated = [False] * len(inputs)
        for batch in plan_batches(
            counts,
            token_budget=self.options.token_budget,
            max_batch_size=self.options.max_batch_size,
        ):
            rows, cut, used = self._forward([prepared[i] for i in batch])
            vectors[batch] = rows
            for index, flag, tokens in zip(batch, cut, used, strict=True):
                truncated[index] = flag
                counts[index] = tokens  # the planning estimate replaced by what was read
            if progress is not None:
                progress(len(batch))
        return EncodeOutput(vectors=vectors, truncated=truncated, token_counts=counts)

    def _forward(self, prepared: list[_Prepared]) -> tuple[np.ndarray, list[bool], list[int]]:
        """Vectors, truncation flags and tokens read (visual tokens included) of a batch."""
        import torch

        with torch.inference_mode():
            pooled, cut, used = self._pooled(prepared)
        return pooled.cpu().numpy(), cut, used

    def _pooled(self, prepared: list[_Prepared]) -> tuple[Any, list[bool], list[int]]:
        """One batch through the model, pooled and normalised (gradients unless turned off)."""
        if self.backend in LLAVA_BACKENDS:
            inputs, cut = self._llava_inputs(prepared)
        else:
            inputs, cut = self._qwen_inputs(prepared)
        inputs = {k: v.to(self.options.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        hidden = self.model(**inputs).last_hidden_state
        pooled = normalized(last_token(hidden, inputs["attention_mask"]))
        used = [int(n) for n in inputs["attention_mask"].sum(dim=1).tolist()]
        return pooled, cut, used

    def training_vectors(self, inputs: Sequence[Input], *, query: bool) -> Any:
        """Normalised vectors of one batch with gradients (fine-tuning), prompted as
        :meth:`encode` prompts queries (``retrieval.query``) and documents."""
        chosen = self.instruction_for("retrieval.query" if query else None, None)
        prepared = [self.prompt(x, chosen, i, query=query) for i, x in enumerate(inputs)]
        return self._pooled(prepared)[0]

    def _qwen_inputs(self, prepared: list[_Prepared]) -> tuple[dict[str, Any], list[bool]]:
        import torch

        visual: list[VisualInput] = []
        rows: list[list[int]] = []
        cut: list[bool] = []
        for item in prepared:
            images = [
                prepare_image(
                    self.image_processor, image, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
                )
                for image in item.images
            ]
            ids = self.tokenizer(expand_image_pads(item.text, images))["input_ids"]
            if len(ids) > self.max_length and not images:
                ids = ids[: self.max_length]
                cut.append(True)
            else:
                cut.append(False)
            rows.append(ids)
            visual.extend(images)
        padded = self.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
        pad_id = self.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        inputs = {
            "input_ids": padded["input_ids"],
            "attention_mask": padded["attention_mask"],
            "mm_token_type_ids": (padded["input_ids"] == pad_id).int(),
        }
        if visual:
            inputs["pixel_values"] = torch.cat([v.pixel_values for v in visual])
            inputs["image_grid_thw"] = torch.cat([v.grid_thw for v in visual])
        return inputs, cut

    def _llava_inputs(self, prepared: list[_Prepared]) -> tuple[dict[str, Any], list[bool]]:
        images = [image for item in prepared for image in item.images]
        features = self.processor(
            text=[item.text for item in prepared],
            images=images or None,
            padding=True,
            return_tensors="pt",
        )
        inputs = {k: v for k, v in features.items() if k != "token_type_ids"}
        return inputs, [False] * len(prepared)


FAMILY = Family(
    name="vlm-embedder",
    kind="embedder",
    modalities=frozenset({"text", "image"}),
    matches=_matches,
    loader=lambda: VlmEmbedder,
    dimension=_dimension,
)
