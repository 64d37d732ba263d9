"""``tuning.json`` read back: validated against a schema before a search trusts it.

The file is written by :meth:`CollectionTuning.to_json`, but it lives on disk where an editor,
a bad copy or a bit flip can change it. Whatever is wrong in it (an unknown or missing fusion
``method``, weights that are not one finite value in [0, 1] per signal, a share outside
[0, 1], a string where a number belongs, a non-finite score) fails validation here, and the
collection searches with equal weights (the caller warns, naming the file, and leaves it in
place for inspection) instead of failing every hybrid search.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, model_validator

from omniretrieve.fusion.methods import FUSION_METHODS

Finite = Annotated[float, Field(allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]


def _known_method(name: str) -> str:
    if name not in FUSION_METHODS:
        raise ValueError(f"unknown fusion method {name!r}; known: {', '.join(FUSION_METHODS)}")
    return name


class _Checked(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class CandidateFile(_Checked):
    method: StrictStr
    weights: list[Share]
    ndcg: Finite
    mrr: Finite

    @model_validator(mode="after")
    def _method(self) -> CandidateFile:
        _known_method(self.method)
        return self


class RerankFile(_Checked):
    reranker: StrictStr
    first_stage_share: Share
    ndcg_without: Finite
    ndcg_reranker_most: Finite
    ndcg: Finite
    grid: dict[str, Finite]
    queries: Count
    candidates: Count

    @model_validator(mode="after")
    def _grid_keys(self) -> RerankFile:
        for key in self.grid:
            try:
                share = float(key)
            except ValueError:
                raise ValueError(f"rerank.grid key {key!r} is not a share") from None
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"rerank.grid key {key!r} is outside [0, 1]")
        return self


class TuningFile(_Checked):
    """The schema of ``tuning.json``; fields a later version adds are ignored."""

    method: StrictStr
    embedders: list[StrictStr] = Field(min_length=1)
    weights: list[Share]
    """BM25's, then one per embedder: each in [0, 1], at least one above 0."""
    ndcg: Finite
    equal_ndcg: Finite
    alone: dict[str, Finite]
    candidates: list[CandidateFile]
    rerank: RerankFile | None
    queries: Count
    kinds: dict[str, Count]
    documents: Count
    universe: Count
    seed: int
    seconds: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    fitted_at: StrictStr

    @model_validator(mode="after")
    def _consistent(self) -> TuningFile:
        _known_method(self.method)
        if len(self.weights) != 1 + len(self.embedders):
            raise ValueError(
                f"weights has {len(self.weights)} values; BM25 and {len(self.embedders)} "
                f"embedder(s) need {1 + len(self.embedders)}"
            )
        if not any(self.weights):
            raise ValueError("weights are all 0")
        return self


def validated_tuning(data: Mapping[str, Any]) -> TuningFile:
    """``data`` (a parsed ``tuning.json``) checked against :class:`TuningFile`; a
    :class:`ValueError` says the first problems (the file's field names and what is wrong)."""
    try:
        return TuningFile.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'file'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
        raise ValueError(problems) from None
