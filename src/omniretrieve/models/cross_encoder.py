"""Cross-encoder rerankers (bge-reranker-v2-m3, ms-marco MiniLM, jina-reranker-v2, ...).

A ``*ForSequenceClassification`` checkpoint with one output: the query and the document go in
as a text pair, the logit goes through a sigmoid (as bge-reranker-v2-m3 is reported), so scores
lie in [0, 1] like every reranker here. Pairs are batched by token budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omniretrieve.inputs import Input, texts_of
from omniretrieve.models.base import (
    LoadOptions,
    PairwiseRerankModel,
    ProgressCallback,
    ScoreOutput,
    score_token_batches,
)
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.runtime.torch_utils import load_pretrained

DEFAULT_MAX_LENGTH = 512
"""Query + document tokens per pair unless the checkpoint allows fewer (FlagEmbedding's and
sentence-transformers' CrossEncoder default for these models)."""
SCORED_ARCHITECTURE_SUFFIX = "ForSequenceClassification"


def _single_logit(info: CheckpointInfo) -> bool:
    labels = info.config.get("id2label")
    if isinstance(labels, dict):
        return len(labels) == 1
    return int(info.config.get("num_labels", 2)) == 1


def _matches(info: CheckpointInfo) -> bool:
    return (
        any(a.endswith(SCORED_ARCHITECTURE_SUFFIX) for a in info.architectures)
        and _single_logit(info)
        and not info.config.get("vision_config")  # VLM rerankers have their own family
    )


def max_pair_length(config: dict[str, Any], tokenizer_limit: int | None) -> int:
    """Tokens a pair may take: the default, the tokenizer's and the position table's limits."""
    positions = int(config.get("max_position_embeddings") or DEFAULT_MAX_LENGTH)
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        positions -= 2  # their positions start after the padding index
    limits = [DEFAULT_MAX_LENGTH, positions]
    if tokenizer_limit and tokenizer_limit < 1_000_000:
        limits.append(int(tokenizer_limit))
    return min(limits)


class CrossEncoderReranker(PairwiseRerankModel):
    family = "cross-encoder"
    modalities = frozenset({"text"})

    def __init__(
        self, model_id: str, model: Any, tokenizer: Any, max_length: int, options: LoadOptions
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.options = options

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> CrossEncoderReranker:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        assert source.path is not None and source.info is not None
        tokenizer = AutoTokenizer.from_pretrained(source.path)
        model = load_pretrained(
            AutoModelForSequenceClassification, source.path, options.device, options.dtype
        )
        limit = max_pair_length(source.info.config, getattr(tokenizer, "model_max_length", None))
        return cls(source.model_id, model, tokenizer, limit, options)

    def _pairs(
        self, query: str, documents: Sequence[str]
    ) -> tuple[list[dict[str, Any]], list[bool]]:
        """Each pair's token ids (and segment ids where the model has them), cut to the
        limit by shortening the longer side first; and whether a pair was cut."""
        full = self.tokenizer([query] * len(documents), list(documents), truncation=False)
        cut = self.tokenizer(
            [query] * len(documents),
            list(documents),
            truncation="longest_first",
            max_length=self.max_length,
        )
        keys = [k for k in ("input_ids", "token_type_ids") if k in cut]
        pairs = [{k: cut[k][i] for k in keys} for i in range(len(documents))]
        truncated = [len(ids) > self.max_length for ids in full["input_ids"]]
        return pairs, truncated

    def score_many(
        self,
        requests: Sequence[tuple[Input, Sequence[Input]]],
        *,
        progress: ProgressCallback | None = None,
    ) -> list[ScoreOutput]:
        """Every request's pairs planned into shared batches (pairs are scored independently),
        split back per request."""

        def forward(inputs: dict[str, Any]) -> Any:
            return self.model(**inputs).logits[:, 0].float()

        pairs: list[dict[str, Any]] = []
        truncated: list[bool] = []
        sizes: list[int] = []
        for query, documents in requests:
            query_text = texts_of([query], model_id=self.model_id, field="query")[0]
            texts = texts_of(documents, model_id=self.model_id, field="documents")
            request_pairs, request_cut = self._pairs(query_text, texts)
            pairs += request_pairs
            truncated += request_cut
            sizes.append(len(request_pairs))
        return score_token_batches(
            pairs, truncated, sizes, self.tokenizer, self.options, forward, progress
        )


FAMILY = Family(
    name="cross-encoder",
    kind="reranker",
    modalities=frozenset({"text"}),
    matches=_matches,
    loader=lambda: CrossEncoderReranker,
)
