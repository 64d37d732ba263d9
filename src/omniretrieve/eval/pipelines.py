"""The pipeline grammar of ``omniretrieve eval``.

    pipeline   := (["ocr+"] first-stage ["+rerank" [":" reranker]] | "rerank" [":" reranker])
                  ["+mmr" [":" lambda]]
    first-stage:= "bm25" | "dense" [":" model] | "hybrid" [":" model ("," model)*]
                  | ("sparse" | "multivector") ":" model ("," model)*

``dense`` and ``hybrid`` without a model use the bundled default embedder. ``dense`` searches
the models' dense vectors; ``sparse:<model>`` their learned token weights (BGE-M3's lexical
matching) and ``multivector:<model>`` their per-token vectors (late interaction: BGE-M3,
ColBERT, ColPali); ``hybrid`` fuses BM25 with every list each model gives. ``auto`` as the model
means the three bundled embedders (MiniLM, English; USE, 16 languages; multilingual-e5-small,
~100 languages), each query routed to those trained on its language (hybrid: BM25 alone when
none is; dense: all). ``hybrid`` fuses
BM25 with every named embedder (z-score fusion unless the collection says otherwise).
``+rerank`` re-orders the first stage's top 100 with the default reranker, ``+rerank:<model>``
with that one. ``rerank[:<model>]`` alone reranks the top 100 of a run given to the evaluation
(``--rerank-run FILE.trec``) instead of a first stage of ours. ``ocr+`` reads image documents
(and image queries) through OCR first. ``+mmr`` diversifies the result last (maximal marginal
relevance over the top 100, lambda 0.5 unless given: ``+mmr:0.7``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from omniretrieve.errors import InputError
from omniretrieve.models.registry import (
    DEFAULT_EMBEDDER,
    DEFAULT_RERANKER,
    E5_EMBEDDER,
    MULTILINGUAL_EMBEDDER,
)

FIRST_STAGES = ("bm25", "dense", "hybrid", "sparse", "multivector")
MODEL_OUTPUT_STAGES = ("sparse", "multivector")
"""First stages that search one output of the models they name (dense search's mode)."""
SUPPLIED_RUN = "run"
"""The mode of ``rerank[:model]``: its first stage is the run given with ``--rerank-run``."""
AUTO_EMBEDDERS = (DEFAULT_EMBEDDER, MULTILINGUAL_EMBEDDER, E5_EMBEDDER)
DEFAULT_MMR = 0.5
MMR_SUFFIX = re.compile(r"\+mmr(?::(?P<lam>[^+:]*))?$")


@dataclass(frozen=True)
class Pipeline:
    spec: str
    mode: str
    """Collection search mode: sparse, dense or hybrid; ``run``: the supplied run's
    candidates (``--rerank-run``) are reranked."""
    embedders: tuple[str, ...]
    reranker: str | None = None
    ocr: bool = False
    routing: bool = False
    """``auto``: per query, the embedders trained on the query's language."""
    diversity: float | None = None
    """``+mmr``: MMR's lambda (None: no diversity stage)."""
    outputs: tuple[str, ...] | None = None
    """The models' lists searched (``dense``, ``sparse``, ``multivector``); None: all."""


def parse_pipeline(spec: str) -> Pipeline:
    """``spec`` as a pipeline (``InputError`` naming ``pipeline`` when it is not one)."""
    text = spec.strip()
    if not text:
        raise InputError("a pipeline is an empty text", field="pipeline")
    mmr = MMR_SUFFIX.search(text)
    if mmr is None:
        return _parse_stages(spec)
    lam = _mmr_lambda(spec, mmr.group("lam"))
    return replace(_parse_stages(spec, text[: mmr.start()]), spec=text, diversity=lam)


def _mmr_lambda(spec: str, given: str | None) -> float:
    if given is None:
        return DEFAULT_MMR
    try:
        lam = float(given)
    except ValueError:
        lam = -1.0
    if not 0.0 <= lam <= 1.0:
        raise InputError(
            f"pipeline {spec!r}: +mmr:<lambda> takes a number within 0 and 1", field="pipeline"
        )
    return lam


def _parse_stages(spec: str, text: str | None = None) -> Pipeline:
    text = (spec if text is None else text).strip()
    ocr = False
    if text.startswith("ocr+"):
        ocr, text = True, text[len("ocr+") :]
    reranker: str | None = None
    stage, plus, rest = text.partition("+")
    if plus:
        name, colon, model = rest.partition(":")
        if name != "rerank" or (colon and not model.strip()):
            raise InputError(
                f"pipeline {spec!r}: after '+' comes 'rerank' or 'rerank:<model>', then "
                "'mmr' or 'mmr:<lambda>'",
                field="pipeline",
            )
        reranker = model.strip() if colon else DEFAULT_RERANKER
    kind, colon, models = stage.partition(":")
    if kind == "rerank" and not plus and not ocr:  # reranks a supplied run
        if colon and not models.strip():
            raise InputError(f"pipeline {spec!r}: an empty reranker name", field="pipeline")
        model = models.strip() if colon else DEFAULT_RERANKER
        return Pipeline(spec.strip(), SUPPLIED_RUN, (), model)
    if kind not in FIRST_STAGES:
        raise InputError(
            f"pipeline {spec!r}: the first stage is one of {', '.join(FIRST_STAGES)} "
            "(or the pipeline is rerank[:model], over --rerank-run)",
            field="pipeline",
        )
    embedders: tuple[str, ...] = ()
    if kind == "bm25":
        if colon:
            raise InputError(f"pipeline {spec!r}: bm25 takes no model", field="pipeline")
        mode = "sparse"
    else:
        mode = "dense" if kind in MODEL_OUTPUT_STAGES else kind
        if kind in MODEL_OUTPUT_STAGES and not colon:
            raise InputError(
                f"pipeline {spec!r}: {kind} names its model ({kind}:<model>)", field="pipeline"
            )
        names = [m.strip() for m in models.split(",")] if colon else [DEFAULT_EMBEDDER]
        if not all(names):
            raise InputError(f"pipeline {spec!r}: an empty model name", field="pipeline")
        if "auto" in names:
            if names != ["auto"]:
                raise InputError(f"pipeline {spec!r}: 'auto' stands alone", field="pipeline")
            return Pipeline(spec.strip(), mode, AUTO_EMBEDDERS, reranker, ocr, routing=True)
        embedders = tuple(names)
    outputs = None if kind in ("bm25", "hybrid") else ("dense" if kind == "dense" else kind,)
    return Pipeline(spec.strip(), mode, embedders, reranker, ocr, outputs=outputs)
