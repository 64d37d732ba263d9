"""eval: pipelines x datasets -> a markdown table, a JSON file and plots."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from omniretrieve.cli.app import app
from omniretrieve.cli.common import dtype_option, handle_errors

DEFAULT_PIPELINES = ("bm25", "dense", "hybrid", "hybrid+rerank")


def resolve_dataset(path: Path, datasets_root: Path | None) -> Path:
    """A folder as given, else the name under --datasets-root, $OMNIRETRIEVE_DATASETS or
    ../shared/datasets (the first that holds it)."""
    import os

    from omniretrieve.errors import InputError

    if path.is_dir() or path.is_absolute():
        return path
    roots = [datasets_root] if datasets_root is not None else []
    if os.environ.get("OMNIRETRIEVE_DATASETS"):
        roots.append(Path(os.environ["OMNIRETRIEVE_DATASETS"]))
    roots.append(Path("..") / "shared" / "datasets")
    for root in roots:
        if (root / path).is_dir():
            return root / path
    looked = ", ".join(str(r) for r in roots)
    raise InputError(
        f"dataset {str(path)!r} is neither a folder nor a name under {looked} (set "
        "--datasets-root or $OMNIRETRIEVE_DATASETS)",
        field="dataset",
    )


@app.command("eval")
@handle_errors
def eval_command(
    dataset: list[Path] = typer.Option(
        None,
        "--dataset",
        "-d",
        help="A dataset folder (BEIR, XQuAD-R, COCO, Winoground, own), or a name under "
        "--datasets-root (scifact).",
    ),
    suite: Path = typer.Option(
        None, "--suite", help="A TOML file of runs (datasets x pipelines), one merged report."
    ),
    datasets_root: Path = typer.Option(
        None,
        "--datasets-root",
        help="Where dataset names (-d scifact, a suite's names) are looked up; else "
        "$OMNIRETRIEVE_DATASETS, else ../shared/datasets.",
    ),
    pipeline: list[str] = typer.Option(
        None,
        "--pipeline",
        "-p",
        help="bm25 | dense[:model] | hybrid[:model,...] with +rerank[:model], ocr+ prefix "
        f"(default: {', '.join(DEFAULT_PIPELINES)}).",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write report.md, results.json, plots."),
    split: str = typer.Option(None, help="qrels split (default: test, else dev, else the only)."),
    collection: str = typer.Option(
        None, "--collection", help="Search this existing collection instead of building one."
    ),
    root: Path = typer.Option(None, help="Where --collection lives (default: user data dir)."),
    cache_dir: Path = typer.Option(None, help="Embedding and eval-collection cache."),
    max_queries: int = typer.Option(None, help="Only the first N queries of each task."),
    fit_fusion: str = typer.Option(
        None,
        "--fit-fusion",
        help="Choose hybrid fusion weights on this split (e.g. train); 'crossfit': on two "
        "folds of the evaluated queries, each fold searched with the other's weights; "
        "'pseudo': on pseudo-queries from the corpus alone (as collections tune themselves).",
    ),
    vector_store: str = typer.Option(
        "faiss", "--vector-store", help="faiss, or milvus (Milvus Lite) for the dense searches."
    ),
    sparse: str = typer.Option(
        "local",
        "--sparse",
        help="Where BM25 runs: local, or milvus (Milvus's full-text search; needs "
        "--vector-store milvus).",
    ),
    storage: str = typer.Option(
        "folder",
        "--storage",
        help="Where the collections' documents live: folder, or milvus (Milvus alone; needs "
        "--vector-store milvus --sparse milvus).",
    ),
    ocr_engine: str = typer.Option(
        "tesseract", help="OCR for ocr+ pipelines: tesseract, rapidocr."
    ),
    passages: str = typer.Option(
        "split", help="split: long documents as passages; first: one truncated vector each."
    ),
    named_task: str = typer.Option(
        None,
        "--task",
        help="A named task for the queries (BGE-Code: CosQA, Text2SQL, ...), sent to the "
        "embedders that know it.",
    ),
    instruction: str = typer.Option(
        None, "--instruction", help="A query instruction of your own, sent to every embedder."
    ),
    dtype: str = dtype_option(),
    metrics: str = typer.Option(
        None,
        "--metrics",
        help="Comma-separated metrics the report leads with, e.g. ndcg@10,recall@100,p@5 "
        "(default: each dataset layout's own).",
    ),
    depth: int = typer.Option(
        None, "--depth", help="Documents kept per query (default 20; at least every cutoff)."
    ),
    compare: list[str] = typer.Option(
        None,
        "--compare",
        help="A:B pipelines to test on every task, or 'all' for every pair (paired "
        "randomisation test, in report.md and results.json; default: the first pipeline "
        "against each other).",
    ),
    rerank_run: Path = typer.Option(
        None,
        "--rerank-run",
        help="A TREC run file whose top 100 per query rerank[:model] pipelines rerank.",
    ),
    modality_gap: str = typer.Option(
        None,
        "--modality-gap",
        help="A reranker or embedder: its scores of relevant pairs with text documents vs "
        "image documents (histogram and overlap in the report).",
    ),
    correction: str = typer.Option(
        "holm",
        "--correction",
        help="Multiple-comparison correction over the pairs of each task: holm, bonferroni, none.",
    ),
) -> None:
    """Evaluate retrieval pipelines; prints the markdown table, writes files with --out."""
    from omniretrieve.errors import InputError
    from omniretrieve.eval.report import markdown
    from omniretrieve.eval.runner import evaluate
    from omniretrieve.eval.suites import evaluate_suite

    options = {
        "split": split,
        "cache_dir": cache_dir,
        "max_queries": max_queries,
        "fit_fusion": fit_fusion,
        "passages": passages,
        "vector_store": vector_store,
        "sparse": sparse,
        "storage": storage,
        "ocr_engine": ocr_engine,
        "named_task": named_task,
        "instruction": instruction,
        "dtype": dtype,
        "metrics": metrics.split(",") if metrics else None,
        "depth": depth,
        "compare": compare or [],
        "correction": correction,
    }
    if suite is not None:
        if dataset or pipeline or collection or rerank_run:
            raise InputError(
                "--suite names its own datasets and pipelines (no --dataset, --pipeline, "
                "--collection, --rerank-run)",
                field="suite",
            )
        report = evaluate_suite(suite, datasets_root=datasets_root, out_dir=out, **options)
    else:
        if not dataset:
            raise InputError("name a dataset (--dataset PATH) or a suite (--suite FILE)")
        report = evaluate(
            [resolve_dataset(d, datasets_root) for d in dataset],
            list(pipeline or DEFAULT_PIPELINES),
            collection=collection,
            collections_root=root,
            out_dir=out,
            rerank_run=rerank_run,
            modality_gap=modality_gap,
            **options,
        )
    table = (out / "report.md").read_text(encoding="utf-8") if out else markdown(report)
    sys.stdout.write(table)
    if out is not None:
        typer.echo(f"wrote {out}/report.md, results.json and plots", err=True)
