"""A thin wrapper over pytrec_eval (trec_eval's own implementation of the measures)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ALL_METRICS: tuple[str, ...] = (
    "ndcg@5",
    "ndcg@10",
    "mrr@10",
    "map@20",
    "recall@5",
    "recall@10",
    "recall@20",
)
"""Every metric an evaluation computes (reports lead with each layout's own)."""
Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

MEASURES = {
    "ndcg": "ndcg_cut",
    "recall": "recall",
    "map": "map_cut",
    "mrr": "recip_rank",
    "p": "P",
    "hit": "success",
}
ANSWER_RECALL = "answer_recall"
"""Scored from answer strings (:mod:`omniretrieve.eval.answers`), not by trec_eval."""


@dataclass(frozen=True)
class MetricResult:
    mean: dict[str, float]
    """Metric name (``ndcg@10``) -> mean over the judged queries."""
    per_query: dict[str, dict[str, float]]
    """Metric name -> query id -> value, kept for significance tests."""

    @classmethod
    def of(cls, per_query: dict[str, dict[str, float]]) -> MetricResult:
        """Per-query values with their means (0 where no query was scored)."""
        mean = {m: sum(v.values()) / len(v) if v else 0.0 for m, v in per_query.items()}
        return cls(mean, per_query)


def _trec_name(metric: str) -> tuple[str, str]:
    name, _, cutoff = metric.lower().partition("@")
    if name not in MEASURES:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(MEASURES)} (with @k)")
    trec = MEASURES[name]
    if name == "mrr":
        if cutoff and not cutoff.isdigit():
            raise ValueError(f"metric {metric!r}: the cutoff is a number")
        return trec, "recip_rank"
    if not cutoff.isdigit():
        raise ValueError(f"metric {metric!r} needs a cutoff, e.g. {name}@10")
    return trec, f"{trec}_{cutoff}"


def check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    """The metric names, checked (``ndcg@10``, ``recall@100``, ``p@5``, ``map@20``,
    ``mrr@10``, ``hit@1``, ``answer_recall@20``): a :class:`ValueError` names a wrong one."""
    checked = tuple(m.strip().lower() for m in metrics if m.strip())
    for metric in checked:
        name, _, cutoff = metric.partition("@")
        if name == ANSWER_RECALL:
            if not cutoff.isdigit():
                raise ValueError(f"metric {metric!r} needs a cutoff, e.g. {name}@20")
            continue
        _trec_name(metric)
    return checked


def is_answer_metric(metric: str) -> bool:
    return metric.partition("@")[0] == ANSWER_RECALL


def metric_depth(metrics: Iterable[str]) -> int:
    """How many documents a run must hold for every metric (the largest cutoff)."""
    return max((int(m.partition("@")[2] or 0) for m in metrics), default=0)


def write_trec_run(path: Path, run: Run, name: str) -> None:
    """``run`` in TREC format (``qid Q0 docid rank score name``), best first per query, as
    trec_eval, pytrec_eval and ranx read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for query_id, scores in run.items():
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        for rank, (doc_id, score) in enumerate(ranked, start=1):
            lines.append(f"{query_id} Q0 {doc_id} {rank} {score:.6f} {name}\n")
    path.write_text("".join(lines), encoding="utf-8")


def read_trec_run(path: Path) -> dict[str, dict[str, float]]:
    """A TREC run file back as query id -> document id -> score."""
    run: dict[str, dict[str, float]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise ValueError(
                f"{path}:{number}: a run line has 6 fields (qid Q0 doc rank score run)"
            )
        run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
    return run


def evaluate_run(qrels: Qrels, run: Run, metrics: Iterable[str] = ("ndcg@10",)) -> MetricResult:
    """Score ``run`` against ``qrels``. Queries without judgments are ignored; judged queries
    missing from the run count as 0 (trec_eval's default is to skip them, which flatters)."""
    metrics = list(metrics)
    if any(is_answer_metric(m) for m in metrics):
        raise ValueError(f"{ANSWER_RECALL}@k is scored from answer strings, not judgments")
    trec_names = {m: _trec_name(m) for m in metrics}
    cutoffs: dict[str, set[str]] = {}
    for trec, key in trec_names.values():
        cutoffs.setdefault(trec, set()).add(key.rsplit("_", 1)[-1] if trec != "recip_rank" else "")
    measures = {
        trec if trec == "recip_rank" else f"{trec}.{','.join(sorted(cuts))}"
        for trec, cuts in cutoffs.items()
    }
    judged = {qid: {d: int(s) for d, s in docs.items()} for qid, docs in qrels.items() if docs}
    scored_run = {qid: {d: float(s) for d, s in run.get(qid, {}).items()} for qid in judged}
    results = _evaluate(judged, scored_run, measures - {"recip_rank"})
    per_query: dict[str, dict[str, float]] = {}
    for metric, (trec, key) in trec_names.items():
        if trec == "recip_rank":
            # trec_eval's reciprocal rank has no cutoff: MRR@k scores the top k only
            cutoff = metric.partition("@")[2]
            depth = int(cutoff) if cutoff else None
            ranks = _evaluate(judged, truncate(scored_run, depth), {"recip_rank"})
            per_query[metric] = {qid: float(ranks.get(qid, {}).get(key, 0.0)) for qid in judged}
        else:
            per_query[metric] = {qid: float(results.get(qid, {}).get(key, 0.0)) for qid in judged}
    return MetricResult.of(per_query)


def _evaluate(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], measures: set[str]
) -> dict[str, dict[str, float]]:
    import pytrec_eval

    if not measures:
        return {}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures)
    return evaluator.evaluate({q: r for q, r in run.items() if r})


def truncate(run: Run, depth: int | None) -> dict[str, dict[str, float]]:
    """Each query's best ``depth`` documents (ties broken by document id, as trec_eval does)."""
    if depth is None:
        return {q: dict(docs) for q, docs in run.items()}
    return {
        q: dict(sorted(docs.items(), key=lambda item: (-item[1], item[0]))[:depth])
        for q, docs in run.items()
    }
