"""Fine-tuning on this machine: training time, throughput and NDCG@10 before and after.

    python benchmarks/finetune_quality.py [--cases supervised,reranker,unsup-cranfield,...]
        [--work DIR] [--pseudo-queries 1000]

Each case is two commands a user would run, ``omniretrieve finetune`` then ``omniretrieve
eval`` on the dataset's test queries (the training reads only what the case says):

- ``supervised``: all-MiniLM-L6-v2 on SciFact's train qrels (hybrid-mined hard negatives);
  dense and hybrid, base vs tuned, on SciFact test, with the paired randomisation test;
- ``reranker``: a cross-encoder from MiniLM's weights on SciFact train (7 mined negatives per
  pair), reranking hybrid's top 100 on SciFact test, against the offline reranker;
- ``refit``: the offline reranker's weights refitted on SciFact's corpus alone
  (pseudo-queries), reranking hybrid's top 100 on SciFact test, against the bundled weights;
- ``unsup-scifact``, ``unsup-cranfield``, ``unsup-cosqa``: unsupervised adaptation from the
  corpus alone (pseudo-queries cut as ``--cut`` says, ``--negatives`` mined per pair, the
  offline reranker's margins), dense base vs adapted. An adaptation that does not beat its
  base on held-out pseudo-queries would not be written (the table says "not used" and counts
  the base as the adapted model); it is kept here (``--keep-rejected``) to be measured.

Prints a markdown table (and writes it to WORK/finetune.md); every number comes from the
``training.json`` and ``results.json`` files the commands write under WORK.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
CLI = [sys.executable, "-m", "omniretrieve.cli"]
BASE = "all-MiniLM-L6-v2"


def run(arguments: list[str], log: Path) -> int:
    started = time.perf_counter()
    with log.open("w") as handle:
        code = subprocess.call([*CLI, *arguments], stdout=handle, stderr=subprocess.STDOUT)
    print(f"  {' '.join(arguments[:3])}... exit {code} in {time.perf_counter() - started:.0f} s")
    return code


def finetune(name: str, arguments: list[str], work: Path) -> tuple[Path, dict]:
    out = (work / name).resolve()
    if not (out / "training.json").is_file():
        model = [] if "-m" in arguments else ["-m", BASE]
        run(["finetune", *model, "-o", str(out), *arguments], work / f"{name}.finetune.log")
    record = json.loads((out / "training.json").read_text())
    return out, record


def evaluate(name: str, dataset: str, pipelines: list[str], work: Path) -> dict:
    out = work / f"{name}.eval"
    if not (out / "results.json").is_file():
        arguments = ["eval", "-d", str(DATASETS / dataset), "--metrics", "ndcg@10,recall@100"]
        for pipeline in pipelines:
            arguments += ["-p", pipeline]
        arguments += ["--compare", "all", "--cache-dir", str(work / "cache"), "-o", str(out)]
        run(arguments, work / f"{name}.eval.log")
    return json.loads((out / "results.json").read_text())


def ndcg(results: dict, pipeline: str) -> float:
    for result in results["results"]:
        if result["pipeline"] == pipeline:
            return float(result["metrics"]["ndcg@10"])
    raise KeyError(pipeline)


def p_value(results: dict, first: str, second: str) -> float | None:
    for test in results["significance"]:
        if {test["a"], test["b"]} == {first, second} and test["metric"] == "ndcg@10":
            return float(test["randomisation_p"])
    return None


def row(case: str, record: dict, results: dict, before: str, after: str) -> str:
    held = record["held_out"]
    accepted = record["accepted"]
    base = ndcg(results, before)
    measured = ndcg(results, after)
    tuned = measured if accepted else base
    p = p_value(results, before, after)
    rejected = "" if accepted else f" (the rejected model: {measured:.3f})"
    return (
        f"| {case} | {record['data']['pairs']} | {held['seconds']:.0f} | "
        f"{held['examples_per_second']:.1f} | {held['base']:.3f} -> {held['tuned']:.3f} "
        f"({'used' if accepted else 'not used'}) | `{before}` {base:.3f} | {tuned:.3f}"
        f"{rejected} | {tuned - base:+.3f} | {f'{p:.4f}' if p is not None else '-'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cases", default="supervised,reranker,unsup-cranfield,unsup-scifact,unsup-cosqa"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/omniretrieve-finetune-bench"))
    parser.add_argument("--pseudo-queries", type=int, default=1000)
    parser.add_argument(
        "--cut", default="lead", help="unsup-*: pseudo-queries' cut (lead, sentence, mixed)"
    )
    parser.add_argument("--negatives", type=int, default=3, help="unsup-*: mined per pair")
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    rows: list[str] = []
    for case in args.cases.split(","):
        print(case)
        if case == "supervised":
            out, record = finetune(
                case, ["-d", str(DATASETS / "scifact"), "--split", "train", "--keep-rejected"], work
            )
            results = evaluate(
                case, "scifact", ["dense", f"dense:{out}", "hybrid", f"hybrid:{out}"], work
            )
            rows.append(
                row("SciFact, train qrels: dense", record, results, "dense", f"dense:{out}")
            )
            rows.append(
                row("SciFact, train qrels: hybrid", record, results, "hybrid", f"hybrid:{out}")
            )
        elif case == "reranker":
            out, record = finetune(
                case,
                [
                    "-d",
                    str(DATASETS / "scifact"),
                    "--split",
                    "train",
                    "--target",
                    "reranker",
                    "--keep-rejected",
                ],
                work,
            )
            results = evaluate(case, "scifact", ["hybrid+rerank", f"hybrid+rerank:{out}"], work)
            rows.append(
                row(
                    "SciFact, train qrels: cross-encoder",
                    record,
                    results,
                    "hybrid+rerank",
                    f"hybrid+rerank:{out}",
                )
            )
        elif case == "refit":
            corpus = DATASETS / "scifact" / "corpus.jsonl"
            out, record = finetune(
                case,
                ["-m", "omniretrieve-hybrid-reranker", "--corpus", str(corpus), "--pseudo-queries",
                 str(args.pseudo_queries), "--keep-rejected"],
                work,
            )  # fmt: skip
            results = evaluate(case, "scifact", ["hybrid+rerank", f"hybrid+rerank:{out}"], work)
            rows.append(row("SciFact, corpus only: offline reranker refit", record, results,
                            "hybrid+rerank", f"hybrid+rerank:{out}"))  # fmt: skip
        elif case.startswith("unsup-"):
            dataset = case.removeprefix("unsup-")
            corpus = DATASETS / dataset / "corpus.jsonl"
            out, record = finetune(
                case,
                ["--corpus", str(corpus), "--pseudo-queries", str(args.pseudo_queries),
                 "--cut", args.cut, "--negatives", str(args.negatives), "--keep-rejected"],
                work,
            )  # fmt: skip
            results = evaluate(case, dataset, ["dense", f"dense:{out}"], work)
            rows.append(
                row(f"{dataset}, corpus only: dense", record, results, "dense", f"dense:{out}")
            )
        else:
            raise SystemExit(f"unknown case {case!r}")
    header = (
        "| case | training pairs | training s | examples/s | held-out NDCG@10 | base | tuned "
        "| gain | p (paired randomisation) |\n|---|---|---|---|---|---|---|---|---|"
    )
    table = "\n".join([header, *rows])
    (work / "finetune.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
