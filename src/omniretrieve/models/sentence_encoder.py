"""BERT-like sentence encoders (all-MiniLM-L6-v2, e5, bge, gte ...): pooled hidden states.

Reads the sentence-transformers layout when present: ``modules.json`` (which modules run),
``1_Pooling/config.json`` (mean / CLS / max / last-token pooling), ``sentence_bert_config.json``
(max length, lower-casing) and ``config_sentence_transformers.json`` (prompts per task). A plain
transformers checkpoint gets mean pooling and the model's own maximum length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from omniretrieve.errors import InputError, UnsupportedModelError
from omniretrieve.inputs import Input, texts_of
from omniretrieve.models.base import EncodeOutput, LoadOptions, ProgressCallback, check_task
from omniretrieve.models.pooling import pool
from omniretrieve.models.sources import CheckpointInfo, ModelSource, vectors_key
from omniretrieve.models.transformer_embedder import TransformerEmbedder
from omniretrieve.runtime.precision import resolve_dtype

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
SUPPORTED_MODULES = frozenset({"Transformer", "Pooling", "Normalize"})
"""sentence-transformers modules by class name: ``sentence_transformers.models.Pooling``
before version 6, ``sentence_transformers.sentence_transformer.modules.pooling.Pooling`` and
``sentence_transformers.base.modules.transformer.Transformer`` from 6 on."""
POOLING_MODES = {"mean": "mean", "cls": "cls", "max": "max", "lasttoken": "last"}
TASK_PROMPT_NAMES = {
    "retrieval.query": ("query", "retrieval.query"),
    "retrieval.passage": ("document", "passage", "retrieval.passage"),
    "text-matching": ("text-matching", "sts"),
    "classification": ("classification",),
    "separation": ("clustering", "separation"),
}


def is_encoder(info: CheckpointInfo) -> bool:
    """A BERT-like encoder architecture."""
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
    default_prompt: str = ""
    """The prompt of ``default_prompt_name`` (sentence-transformers' setting): used when the
    task names none of the checkpoint's prompts (e5's ``query: ``)."""

    @classmethod
    def read(cls, info: CheckpointInfo) -> EncoderLayout:
        modules = info.read_json("modules.json") or []
        pooling_dir = ""
        normalize = False
        for module in modules if isinstance(modules, list) else []:
            kind = module.get("type", "")
            if not kind.startswith("sentence_transformers.") or (
                kind.rsplit(".", 1)[-1] not in SUPPORTED_MODULES
            ):
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
        max_length = int(st_config.get("max_seq_length") or _tokenizer_limit(info) or model_max)
        if info.config.get("model_type") in ("roberta", "xlm-roberta"):
            max_length = min(max_length, model_max - 2)  # roberta positions start after padding
        prompts_config = info.read_json("config_sentence_transformers.json") or {}
        prompts = prompts_config.get("prompts", {}) if isinstance(prompts_config, dict) else {}
        default_name = (
            prompts_config.get("default_prompt_name") if isinstance(prompts_config, dict) else None
        )
        dimension = int(
            (pooling_config if isinstance(pooling_config, dict) else {}).get(
                "word_embedding_dimension"
            )
            or (pooling_config if isinstance(pooling_config, dict) else {}).get(
                "embedding_dimension"
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
            default_prompt=str(prompts.get(default_name, "")) if default_name else "",
        )

    def prompt_for(self, task: str | None, instruction: str | None) -> str:
        if instruction is not None:
            return instruction
        for name in TASK_PROMPT_NAMES.get(task, ()) if task is not None else ():
            if name in self.prompts:
                return self.prompts[name]
        return self.default_prompt


def _tokenizer_limit(info: CheckpointInfo) -> int | None:
    """The tokenizer's ``model_max_length``, where sentence-transformers 6 keeps the maximum
    length (None when absent or the "no limit" placeholder)."""
    config = info.read_json("tokenizer_config.json")
    value = config.get("model_max_length") if isinstance(config, dict) else None
    return int(value) if isinstance(value, int | float) and 0 < value < 1_000_000 else None


def _pooling_mode(config: dict[str, Any]) -> str:
    mode = config.get("pooling_mode")
    if isinstance(mode, str):  # sentence-transformers 6
        if mode not in POOLING_MODES:
            raise UnsupportedModelError(f"pooling mode {mode!r} is not supported")
        return POOLING_MODES[mode]
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_max_tokens"):
        return "max"
    if config.get("pooling_mode_lasttoken"):
        return "last"
    if config.get("pooling_mode_mean_tokens", True):
        return "mean"
    raise UnsupportedModelError(f"pooling configuration {config} is not supported")


def _int8_model(source: ModelSource, options: LoadOptions) -> Any:
    """The checkpoint's int8 onnxruntime graph (built once per weights, then cached)."""
    import torch

    from omniretrieve.runtime.cache import default_cache_dir
    from omniretrieve.runtime.onnx_int8 import OnnxEncoder, int8_artefact

    path = source.path
    assert path is not None
    artefact = int8_artefact(
        lambda: SentenceEncoder.load_weights(path, replace(options, dtype="float32")),
        vectors_key(source.model_id, source.fingerprint()),
        default_cache_dir(),
    )
    return OnnxEncoder(artefact, torch.get_num_threads())


class SentenceEncoder(TransformerEmbedder):
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
        super().__init__(
            model_id,
            model,
            tokenizer,
            options,
            dimension=layout.dimension,
            max_length=layout.max_length,
        )
        self.layout = layout
        self.normalized = layout.normalize

    @classmethod
    def runs_in(cls, requested: str, device: str) -> str:
        """bf16 by default on CPUs with native bf16 (measured: 1.9x float32 at mean cosine
        0.99995, see ``runtime/precision.py``); int8 on request, on CPU only."""
        if requested == "int8":
            if device != "cpu":
                raise InputError("dtype int8 runs on CPU only (onnxruntime)", field="dtype")
            return requested
        return resolve_dtype(requested, device, fast_cpu=True)

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> SentenceEncoder:
        assert source.path is not None and source.info is not None
        source.verify()
        layout = EncoderLayout.read(source.info)
        dtype = cls.runs_in(options.dtype, options.device)
        if dtype == "int8":
            model = _int8_model(source, options)
        else:
            model = cls.load_weights(source.path, replace(options, dtype=dtype))  # type: ignore[arg-type]
        return cls(source.model_id, model, cls.load_tokenizer(source.path), layout, options)

    # -- tokenisation -------------------------------------------------------------------
    def _prepare(self, texts: Sequence[str], prefix: str) -> list[str]:
        prepared = [prefix + text for text in texts] if prefix else list(texts)
        if self.layout.lowercase:
            prepared = [text.lower() for text in prepared]
        return prepared

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """One tokenisation: truncation is told from where the last kept token ends."""
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
        return super().count_tokens(self._prepare(texts, ""))

    def token_ids(
        self, inputs: Sequence[Input], task: str | None, instruction: str | None
    ) -> tuple[list[list[int]], list[bool]]:
        """The inputs' token ids with the task's prompt (or ``instruction``), cut at the
        maximum length, and whether each was cut."""
        check_task(task)
        texts = texts_of(inputs, model_id=self.model_id)
        return self.tokenize(self._prepare(texts, self.layout.prompt_for(task, instruction)))

    # -- encoding -----------------------------------------------------------------------
    def encode(
        self,
        inputs: Sequence[Input],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> EncodeOutput:
        input_ids, truncated = self.token_ids(inputs, task, instruction)
        vectors = self.encode_token_batches(
            input_ids, lambda hidden, mask: pool(hidden, mask, self.layout.pooling), progress
        )
        lengths = [len(ids) for ids in input_ids]
        return EncodeOutput(vectors=vectors, truncated=truncated, token_counts=lengths)


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
