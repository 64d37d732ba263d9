"""BERT-like sentence encoders (all-MiniLM-L6-v2, e5, bge, gte ...): pooled hidden states.

Reads the sentence-transformers layout when present: ``modules.json`` (which modules run),
``1_Pooling/config.json`` (mean / CLS / max / last-token pooling), ``sentence_bert_config.json``
(max length, lower-casing) and ``config_sentence_transformers.json`` (prompts per task). A plain
transformers checkpoint gets mean pooling and the model's own maximum length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniretrieve.errors import UnsupportedModelError
from omniretrieve.inputs import Input, texts_of
from omniretrieve.models.base import (
    EmbeddingModel,
    EncodeOutput,
    LoadOptions,
    ProgressCallback,
    check_task,
)
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.runtime.batching import plan_batches

ENCODER_ARCHITECTURES = frozenset(
    {
        "BertModel",
        "BertForMaskedLM",
        "BertForPreTraining",
        "RobertaModel",
        "RobertaForMaskedLM",
        "XLMRobertaModel",
        "XLMRobertaForMaskedLM",
        "MPNetModel",
        "MPNetForMaskedLM",
        "DistilBertModel",
        "DistilBertForMaskedLM",
        "ElectraModel",
    }
)
SUPPORTED_MODULES = frozenset(
    {
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    }
)
TASK_PROMPT_NAMES = {
    "retrieval.query": ("query", "retrieval.query"),
    "retrieval.passage": ("document", "passage", "retrieval.passage"),
    "text-matching": ("text-matching", "sts"),
    "classification": ("classification",),
    "separation": ("clustering", "separation"),
}


def _matches(info: CheckpointInfo) -> bool:
    return bool(set(info.architectures) & ENCODER_ARCHITECTURES)


@dataclass(frozen=True)
class EncoderLayout:
    """The sentence-transformers settings of a checkpoint, with defaults for plain ones."""

    pooling: str
    normalize: bool
    max_length: int
    lowercase: bool
    dimension: int
    prompts: dict[str, str]

    @classmethod
    def read(cls, info: CheckpointInfo) -> EncoderLayout:
        modules = info.read_json("modules.json") or []
        pooling_dir = ""
        normalize = False
        for module in modules if isinstance(modules, list) else []:
            kind = module.get("type", "")
            if kind not in SUPPORTED_MODULES:
                raise UnsupportedModelError(
                    f"{info.path}: sentence-transformers module {kind!r} is not supported "
                    f"(supported: {', '.join(sorted(SUPPORTED_MODULES))})"
                )
            if kind.endswith("Pooling"):
                pooling_dir = module.get("path", "")
            if kind.endswith("Normalize"):
                normalize = True
        pooling_config = info.read_json(f"{pooling_dir}/config.json") if pooling_dir else None
        pooling = _pooling_mode(pooling_config) if isinstance(pooling_config, dict) else "mean"
        st_json = info.read_json("sentence_bert_config.json")
        st_config: dict[str, Any] = st_json if isinstance(st_json, dict) else {}
        model_max = int(info.config.get("max_position_embeddings", 512))
        max_length = int(st_config.get("max_seq_length") or model_max) if st_config else model_max
        if info.config.get("model_type") in ("roberta", "xlm-roberta"):
            max_length = min(max_length, model_max - 2)  # roberta positions start after padding
        prompts_config = info.read_json("config_sentence_transformers.json") or {}
        prompts = prompts_config.get("prompts", {}) if isinstance(prompts_config, dict) else {}
        dimension = int(
            (pooling_config if isinstance(pooling_config, dict) else {}).get(
                "word_embedding_dimension"
            )
            or info.config.get("hidden_size")
            or info.config.get("dim", 0)
        )
        return cls(
            pooling=pooling,
            normalize=normalize,
            max_length=min(max_length, model_max),
            lowercase=bool(st_config.get("do_lower_case", False)),
            dimension=dimension,
            prompts={k: v for k, v in prompts.items() if isinstance(v, str)},
        )

    def prompt_for(self, task: str | None, instruction: str | None) -> str:
        if instruction is not None:
            return instruction
        if task is None:
            return ""
        for name in TASK_PROMPT_NAMES.get(task, ()):
            if name in self.prompts:
                return self.prompts[name]
        return ""


def _pooling_mode(config: dict[str, Any]) -> str:
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_max_tokens"):
        return "max"
    if config.get("pooling_mode_lasttoken"):
        return "last"
    if config.get("pooling_mode_mean_tokens", True):
        return "mean"
    raise UnsupportedModelError(f"pooling configuration {config} is not supported")


def _dimension(info: CheckpointInfo) -> int | None:
    try:
        return EncoderLayout.read(info).dimension or None
    except UnsupportedModelError:
        return None


class SentenceEncoder(EmbeddingModel):
    family = "sentence-encoder"
    modalities = frozenset({"text"})

    def __init__(
        self,
        model_id: str,
        model: Any,
        tokenizer: Any,
        layout: EncoderLayout,
        options: LoadOptions,
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.tokenizer = tokenizer
        self.layout = layout
        self.options = options
        self.dimension = layout.dimension
        self.max_length = layout.max_length
        self.normalized = layout.normalize

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> SentenceEncoder:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from omniretrieve.runtime.torch_utils import check_device, quiet_weight_loading, torch_dtype

        assert source.path is not None and source.info is not None
        source.verify()
        layout = EncoderLayout.read(source.info)
        device = check_device(options.device)
        tokenizer = AutoTokenizer.from_pretrained(source.path)
        with quiet_weight_loading():
            model = AutoModel.from_pretrained(source.path, dtype=torch_dtype(options.dtype, device))
        model.to(device).eval()
        torch.set_grad_enabled(False)
        return cls(source.model_id, model, tokenizer, layout, options)

    # -- tokenisation -------------------------------------------------------------------
    def _prepare(self, texts: Sequence[str], prefix: str) -> list[str]:
        prepared = [prefix + text for text in texts] if prefix else list(texts)
        if self.layout.lowercase:
            prepared = [text.lower() for text in prepared]
        return prepared

    def _tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        encoded = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        truncated = [
            _was_truncated(text, len(ids), offsets, special, self.max_length)
            for text, ids, offsets, special in zip(
                texts,
                encoded["input_ids"],
                encoded["offset_mapping"],
                encoded["special_tokens_mask"],
                strict=True,
            )
        ]
        return encoded["input_ids"], truncated

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        ids, _ = self._tokenize(self._prepare(texts, ""))
        return [len(row) for row in ids]

    # -- encoding -----------------------------------------------------------------------
    def encode(
        self,
        inputs: Sequence[Input],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> EncodeOutput:
        check_task(task)
        texts = texts_of(inputs, model_id=self.model_id)
        prepared = self._prepare(texts, self.layout.prompt_for(task, instruction))
        input_ids, truncated = self._tokenize(prepared)
        vectors = encode_token_batches(
            self.model,
            self.tokenizer,
            input_ids,
            self.options,
            self.dimension,
            lambda hidden, mask: _pool(hidden, mask, self.layout.pooling),
            progress,
        )
        lengths = [len(ids) for ids in input_ids]
        return EncodeOutput(vectors=vectors, truncated=truncated, token_counts=lengths)


def encode_token_batches(
    model: Any,
    tokenizer: Any,
    input_ids: Sequence[list[int]],
    options: LoadOptions,
    dimension: int,
    pool: Any,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Token ids -> pooled vectors: batches planned by token budget, padded per batch as the
    tokenizer pads, ``pool(last_hidden_state, attention_mask)`` per batch, input order kept."""
    import torch

    vectors = np.empty((len(input_ids), dimension), dtype=np.float32)
    for batch in plan_batches(
        [len(ids) for ids in input_ids],
        token_budget=options.token_budget,
        max_batch_size=options.max_batch_size,
    ):
        padded = tokenizer.pad(
            {"input_ids": [input_ids[i] for i in batch]}, padding=True, return_tensors="pt"
        )
        ids = padded["input_ids"].to(options.device)
        mask = padded["attention_mask"].to(options.device)
        with torch.inference_mode():
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            vectors[batch] = pool(hidden, mask).float().cpu().numpy()
        if progress is not None:
            progress(len(batch))
    return vectors


def _was_truncated(
    text: str, n_tokens: int, offsets: Sequence[tuple[int, int]], special: Sequence[int], limit: int
) -> bool:
    """True when tokenisation stopped at ``limit`` before the text's last non-blank character."""
    if n_tokens < limit:
        return False
    last_end = max(
        (end for (_, end), sp in zip(offsets, special, strict=True) if not sp), default=0
    )
    return bool(text[last_end:].strip())


def _pool(hidden: Any, mask: Any, mode: str) -> Any:
    import torch

    if mode == "cls":
        return hidden[:, 0]
    if mode == "last":
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    summed = (hidden * weights).sum(dim=1)
    return summed / weights.sum(dim=1).clamp(min=1e-9)


FAMILY = Family(
    name="sentence-encoder",
    kind="embedder",
    modalities=frozenset({"text"}),
    matches=_matches,
    loader=lambda: SentenceEncoder,
    dimension=_dimension,
)
