"""ColBERT (v2 checkpoints, as stanford-futuredata/ColBERT saves them): a BERT-like encoder and a
``linear`` projection (no bias) in one weights file, the encoder's tensors under ``bert.``;
``artifact.metadata`` holds the ColBERT settings. Recognised from ``HF_ColBERT`` in the config's
architectures, or an encoder architecture with ``artifact.metadata`` beside it.

As ColBERT's ``QueryTokenizer`` / ``DocTokenizer`` and ``ColBERT.query`` / ``ColBERT.doc``
compute them (recipe in ``docs/models.md``):

- a query (``task="retrieval.query"``) reads ``". " + text``, padded to ``query_maxlen`` and
  cut there; position 1 becomes the query marker (``query_token_id``); padding becomes
  ``[MASK]`` (query augmentation), attended to only with ``attend_to_mask_tokens``; every
  position gives a vector: ``query_maxlen`` vectors;
- a document reads ``". " + text``, cut at ``doc_maxlen``; position 1 becomes the document
  marker; the vectors of padding and (with ``mask_punctuation``) of punctuation tokens are
  dropped;
- each vector is ``linear(state)``, L2-normalised; the score is MaxSim summed over the query's
  vectors (``similarity: cosine``; ``l2`` checkpoints are refused).
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.errors import InputError, UnsupportedModelError
from omniretrieve.inputs import Input, texts_of
from omniretrieve.models.base import (
    LoadOptions,
    MultiEncodeOutput,
    PerTokenEmbedder,
    ProgressCallback,
    check_outputs,
    check_task,
)
from omniretrieve.models.sentence_encoder import is_encoder
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.runtime.batching import plan_batches
from omniretrieve.runtime.torch_utils import load_pretrained

METADATA = "artifact.metadata"
WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def _matches(info: CheckpointInfo) -> bool:
    return "HF_ColBERT" in info.architectures or (is_encoder(info) and METADATA in info.files)


@dataclass(frozen=True)
class ColbertSettings:
    query_token_id: str = "[unused0]"
    doc_token_id: str = "[unused1]"
    query_maxlen: int = 32
    doc_maxlen: int = 180
    dim: int = 128
    mask_punctuation: bool = True
    attend_to_mask_tokens: bool = False
    similarity: str = "cosine"

    @classmethod
    def read(cls, path: Path) -> ColbertSettings:
        """From ``artifact.metadata`` (its settings at the top level or under ``config``);
        ColBERT's defaults where it is absent."""
        target = path / METADATA
        data: dict[str, Any] = json.loads(target.read_text()) if target.is_file() else {}
        data = data.get("config", data) if isinstance(data, dict) else {}
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        settings = cls(**known)
        if settings.similarity != "cosine":
            raise UnsupportedModelError(
                f"{path}: ColBERT similarity {settings.similarity!r} is not supported (cosine is)"
            )
        return settings


def _dimension(info: CheckpointInfo) -> int | None:
    return ColbertSettings.read(info.path).dim if info.path is not None else None


def load_linear(path: Path, dtype: Any, device: str) -> Any:
    """The checkpoint's ``linear.weight`` as a bias-free ``Linear``."""
    import torch

    weights = next((path / name for name in WEIGHTS if (path / name).is_file()), None)
    if weights is None:
        raise UnsupportedModelError(f"{path}: no {' or '.join(WEIGHTS)}")
    if weights.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as tensors:
            if "linear.weight" not in tensors.keys():  # noqa: SIM118 (safe_open has no __contains__)
                raise UnsupportedModelError(
                    f"{weights}: no linear.weight (not a ColBERT checkpoint)"
                )
            weight = tensors.get_tensor("linear.weight")
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        if "linear.weight" not in state:
            raise UnsupportedModelError(f"{weights}: no linear.weight (not a ColBERT checkpoint)")
        weight = state["linear.weight"]
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        linear.weight.copy_(weight)
    return linear.to(device=device, dtype=dtype).eval()


class ColbertEmbedder(PerTokenEmbedder):
    family = "colbert"
    modalities = frozenset({"text"})

    def __init__(
        self,
        model_id: str,
        model: Any,
        linear: Any,
        tokenizer: Any,
        settings: ColbertSettings,
        options: LoadOptions,
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.linear = linear
        self.tokenizer = tokenizer
        self.settings = settings
        self.options = options
        self.dimension = int(linear.out_features)
        self.multivector_dimension = self.dimension
        self.max_length = settings.doc_maxlen
        self.dtype = self.runs_in(options.dtype, options.device)
        ids = tokenizer.convert_tokens_to_ids([settings.query_token_id, settings.doc_token_id])
        if any(i is None or i == tokenizer.unk_token_id for i in ids):
            raise UnsupportedModelError(
                f"{model_id}: the tokenizer lacks the marker tokens {settings.query_token_id} "
                f"and {settings.doc_token_id}"
            )
        self.query_marker, self.doc_marker = ids
        self.skiplist = (
            frozenset(
                tokenizer.encode(symbol, add_special_tokens=False)[0]
                for symbol in string.punctuation
            )
            if settings.mask_punctuation
            else frozenset()
        )

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> ColbertEmbedder:
        from transformers import AutoModel, AutoTokenizer

        assert source.path is not None
        settings = ColbertSettings.read(source.path)
        dtype = cls.runs_in(options.dtype, options.device)
        model = load_pretrained(AutoModel, source.path, options.device, dtype, require_all=True)
        linear = load_linear(source.path, next(model.parameters()).dtype, options.device)
        tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=False)
        return cls(source.model_id, model, linear, tokenizer, settings, options)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        ids = self.tokenizer([". " + t for t in texts], truncation=False)["input_ids"]
        return [min(len(row), self.settings.doc_maxlen) for row in ids]

    def encode_outputs(
        self,
        inputs: Sequence[Input],
        outputs: frozenset[str],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> MultiEncodeOutput:
        """Queries (``task="retrieval.query"``) or documents (any other task)."""
        check_task(task)
        check_outputs(self, outputs)
        if instruction is not None:
            raise InputError(f"{self.model_id} takes no instruction", field="instruction")
        texts = [". " + t for t in texts_of(inputs, model_id=self.model_id)]
        query = task == "retrieval.query"
        full = [len(ids) for ids in self.tokenizer(texts, truncation=False)["input_ids"]]
        limit = self.settings.query_maxlen if query else self.settings.doc_maxlen
        lengths = [limit if query else min(n, limit) for n in full]
        found: dict[int, np.ndarray] = {}
        for batch in plan_batches(
            lengths,
            token_budget=self.options.token_budget,
            max_batch_size=self.options.max_batch_size,
        ):
            chosen = [texts[i] for i in batch]
            vectors = self._queries(chosen) if query else self._documents(chosen)
            found.update(zip(batch, vectors, strict=True))
            if progress is not None:
                progress(len(batch))
        return MultiEncodeOutput(
            dense=None,
            sparse=None,
            multivectors=[found[i] for i in range(len(texts))],
            truncated=[n > limit for n in full],
            token_counts=lengths,
        )

    def _project(self, ids: Any, mask: Any) -> Any:

        hidden = self.model(input_ids=ids, attention_mask=mask)[0]
        return self.linear(hidden)

    def _queries(self, texts: list[str]) -> list[np.ndarray]:
        import torch

        encoded = self.tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.settings.query_maxlen,
            return_tensors="pt",
        )
        ids, mask = encoded["input_ids"], encoded["attention_mask"]
        ids[:, 1] = self.query_marker
        ids[ids == self.tokenizer.pad_token_id] = self.tokenizer.mask_token_id
        if self.settings.attend_to_mask_tokens:
            mask[ids == self.tokenizer.mask_token_id] = 1
        ids, mask = ids.to(self.options.device), mask.to(self.options.device)
        with torch.inference_mode():
            vectors = self._project(ids, mask)
            kept = (ids != self.tokenizer.pad_token_id).unsqueeze(2).to(vectors.dtype)
            vectors = torch.nn.functional.normalize((vectors * kept).float(), p=2, dim=2)
        return list(vectors.cpu().numpy())

    def _documents(self, texts: list[str]) -> list[np.ndarray]:
        import torch

        encoded = self.tokenizer(
            texts,
            padding="longest",
            truncation="longest_first",
            max_length=self.settings.doc_maxlen,
            return_tensors="pt",
        )
        ids, mask = encoded["input_ids"], encoded["attention_mask"]
        ids[:, 1] = self.doc_marker
        keep = torch.tensor(
            [
                [(x not in self.skiplist) and (x != self.tokenizer.pad_token_id) for x in row]
                for row in ids.tolist()
            ]
        )
        ids, mask = ids.to(self.options.device), mask.to(self.options.device)
        with torch.inference_mode():
            vectors = self._project(ids, mask)
            vectors = vectors * keep.to(vectors.device).unsqueeze(2).to(vectors.dtype)
            vectors = torch.nn.functional.normalize(vectors.float(), p=2, dim=2).cpu().numpy()
        return [vectors[row][keep[row].numpy()] for row in range(len(texts))]


FAMILY = Family(
    name="colbert",
    kind="embedder",
    modalities=frozenset({"text"}),
    matches=_matches,
    loader=lambda: ColbertEmbedder,
    dimension=_dimension,
    priority=5,
)
