"""A thin wrapper over pytrec_eval (trec_eval's own implementation of the measures)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

MEASURES = {
    "ndcg": "ndcg_cut",
    "recall": "recall",
    "map": "map_cut",
    "mrr": "recip_rank",
    "p": "P",
}


@dataclass(frozen=True)
class MetricResult:
    mean: dict[str, float]
    """Metric name (``ndcg@10``) -> mean over the judged queries."""
    per_query: dict[str, dict[str, float]]
    """Metric name -> query id -> value, kept for significance tests."""


def _trec_name(metric: str) -> tuple[str, str]:
    name, _, cutoff = metric.lower().partition("@")
    if name not in MEASURES:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(MEASURES)} (with @k)")
    trec = MEASURES[name]
    if name == "mrr":
        return trec, "recip_rank"
    if not cutoff:
        raise ValueError(f"metric {metric!r} needs a cutoff, e.g. {name}@10")
    return trec, f"{trec}_{cutoff}"


def evaluate_run(qrels: Qrels, run: Run, metrics: Iterable[str] = ("ndcg@10",)) -> MetricResult:
    """Score ``run`` against ``qrels``. Queries without judgments are ignored; judged queries
    missing from the run count as 0 (trec_eval's default is to skip them, which flatters)."""
    import pytrec_eval

    metrics = list(metrics)
    trec_names = {m: _trec_name(m) for m in metrics}
    cutoffs: dict[str, set[str]] = {}
    for trec, key in trec_names.values():
        cutoffs.setdefault(trec, set()).add(key.rsplit("_", 1)[-1] if trec != "recip_rank" else "")
    measures = {
        trec if trec == "recip_rank" else f"{trec}.{','.join(sorted(cuts))}"
        for trec, cuts in cutoffs.items()
    }
    judged = {qid: {d: int(s) for d, s in docs.items()} for qid, docs in qrels.items() if docs}
    evaluator = pytrec_eval.RelevanceEvaluator(judged, measures)
    scored_run = {qid: {d: float(s) for d, s in run.get(qid, {}).items()} for qid in judged}
    results = evaluator.evaluate({q: r for q, r in scored_run.items() if r})
    per_query: dict[str, dict[str, float]] = {}
    for metric, (_, key) in trec_names.items():
        per_query[metric] = {qid: float(results.get(qid, {}).get(key, 0.0)) for qid in judged}
    mean = {m: sum(v.values()) / len(v) if v else 0.0 for m, v in per_query.items()}
    return MetricResult(mean=mean, per_query=per_query)
