"""The seed benchmarks' layouts on tiny fixtures with known answers: MIRACL's TREC qrels and
topics, MKQA's answer-match recall, MMEB's hit@1 over per-query candidate lists (a tiny random
CLIP), a CoIR folder's instruction, and each layout's default metrics and depth."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.errors import InputError
from omniretrieve.eval.layouts import load_eval_dataset
from omniretrieve.eval.layouts.miracl import read_trec_qrels
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.eval.runner import evaluate
from tests.builders.tiny_clip import build_tiny_clip, png_bytes

DOCS = {
    "d1": ("Paris", "Paris is the capital and largest city of France."),
    "d2": ("Berlin", "Berlin is the capital of Germany, on the river Spree."),
    "d3": ("Rust", "Rust is a programming language with ownership and borrowing."),
    "d4": ("Cats", "Cats are small carnivorous mammals that sleep most of the day."),
}


def write_miracl(root: Path) -> Path:
    (root / "topics").mkdir(parents=True)
    (root / "qrels").mkdir()
    (root / "corpus").mkdir()
    with gzip.open(root / "corpus" / "docs-0.jsonl.gz", "wt", encoding="utf-8") as handle:
        for doc_id, (title, text) in DOCS.items():
            handle.write(json.dumps({"docid": doc_id, "title": title, "text": text}) + "\n")
    (root / "topics" / "topics.miracl-v1.0-xx-dev.tsv").write_text(
        "1\tcapital of France\n2\tprogramming language ownership\n3\tunjudged topic\n"
    )
    # TREC's four columns; d2 judged non-relevant for topic 1
    (root / "qrels" / "qrels.miracl-v1.0-xx-dev.tsv").write_text(
        "1\tQ0\td1\t1\n1\tQ0\td2\t0\n2\tQ0\td3\t1\n"
    )
    return root


def test_miracl_reads_trec_qrels_and_topics(tmp_path: Path) -> None:
    root = write_miracl(tmp_path / "miracl-xx")
    qrels = read_trec_qrels(root / "qrels" / "qrels.miracl-v1.0-xx-dev.tsv")
    assert qrels == {"1": {"d1": 1, "d2": 0}, "2": {"d3": 1}}
    dataset = load_eval_dataset(root)
    assert dataset.layout == "miracl" and dataset.metrics == ("ndcg@10", "recall@100")
    (task,) = dataset.tasks
    assert task.name == "dev" and task.queries == {
        "1": "capital of France",
        "2": ("programming language ownership"),
    }
    assert dataset.corpus["d1"].title == "Paris"
    # by hand: topic 1 ranks the non-relevant d2 first, d1 second: NDCG@10 = 1 / log2(3)
    run = {"1": {"d2": 2.0, "d1": 1.0}, "2": {"d3": 1.0}}
    scored = evaluate_run(task.qrels, run, ["ndcg@10"])
    assert scored.per_query["ndcg@10"] == pytest.approx({"1": 1 / math.log2(3), "2": 1.0})
    report = evaluate([root], ["bm25"], cache_dir=tmp_path / "c", show_progress=False)
    result = report.result("miracl-xx", "dev", "bm25")
    assert result.metrics["ndcg@10"] == 1.0 and result.metrics["recall@100"] == 1.0
    assert report.config["search_depth_by_dataset"] == {"miracl-xx": 100}
    (root / "qrels" / "qrels.miracl-v1.0-xx-dev.tsv").write_text("1 d1 1\n")
    with pytest.raises(Exception, match="4 fields"):
        load_eval_dataset(root)


def write_mkqa(root: Path) -> Path:
    (root / "queries").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in DOCS.items())
    )
    questions = [
        {"id": "a", "question": "what is the capital of France", "answers": ["Paris"]},
        {"id": "b", "question": "which river flows through Berlin", "answers": ["River  Spree"]},
        {"id": "c", "question": "what do cats eat", "answers": ["fish"]},  # in no document
        {"id": "d", "question": "an unanswerable one", "answers": []},  # not scored
    ]
    (root / "queries" / "en.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return root


def test_mkqa_scores_answer_strings_in_the_top_k(tmp_path: Path) -> None:
    root = write_mkqa(tmp_path / "mkqa-mini")
    dataset = load_eval_dataset(root)
    assert dataset.layout == "mkqa"
    assert dataset.metrics == ("answer_recall@20", "answer_recall@100")
    (task,) = dataset.tasks
    assert task.name == "en" and sorted(task.queries) == ["a", "b", "c"]
    report = evaluate([root], ["bm25"], cache_dir=tmp_path / "c", show_progress=False)
    result = report.result("mkqa-mini", "en", "bm25")
    # by hand: a and b find their answer in the top document, c's answer is nowhere
    assert result.per_query["answer_recall@1"] == {"a": 1.0, "b": 1.0, "c": 0.0}
    assert result.metrics["answer_recall@20"] == pytest.approx(2 / 3)
    with pytest.raises(InputError, match="answer_recall"):
        evaluate([root], ["bm25"], metrics=["ndcg@10"], show_progress=False)


def write_mmeb(root: Path) -> Path:
    (root / "tasks").mkdir(parents=True)
    (root / "images").mkdir()
    colors = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (90, 90, 90)]
    for number, color in enumerate(colors):
        (root / "images" / f"c{number}.png").write_bytes(png_bytes(color, (48, 40)))
    lines = [  # image -> caption candidates (the first is right)
        {"qry_text": "", "qry_img_path": f"c{n}.png", "tgt_text": [f"colour {n}", "a dog", "x"]}
        for n in range(3)
    ]
    (root / "tasks" / "ImageToText.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    lines = [  # text -> image candidates
        {"qry_text": f"colour {n}", "tgt_img_path": [f"c{n}.png", f"c{(n + 1) % 4}.png"]}
        for n in range(4)
    ]
    (root / "tasks" / "TextToImage.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def test_mmeb_hit_at_1_per_task_and_overall(tmp_path: Path) -> None:
    # hit@1 by hand: the right candidate scored highest -> 1, else 0
    qrels = {"q1": {"right": 1}, "q2": {"right": 1}}
    run = {"q1": {"right": 0.9, "wrong": 0.5}, "q2": {"right": 0.2, "wrong": 0.7}}
    assert evaluate_run(qrels, run, ["hit@1"]).per_query["hit@1"] == {"q1": 1.0, "q2": 0.0}

    clip = str(build_tiny_clip(tmp_path / "clip"))
    root = write_mmeb(tmp_path / "mmeb-mini")
    dataset = load_eval_dataset(root)
    assert dataset.layout == "mmeb" and dataset.metrics == ("hit@1",)
    report = evaluate([root], ["bm25", f"dense:{clip}"], show_progress=False)
    assert "dense:<model>" in report.result("mmeb-mini", "ImageToText", "bm25").skipped
    embedder = Embedder(clip)
    for task in dataset.tasks:
        expected = {}
        for query_id, text in task.queries.items():
            image = task.query_images.get(query_id)
            query = {**({"text": text} if text else {}), **({"image": image} if image else {})}
            vector = embedder.encode([query], task="retrieval.query").embeddings[0]
            documents = [dataset.corpus[d] for d in task.candidates[query_id]]
            targets = embedder.encode(
                [{"text": d.text} if d.text else {"image": d.image} for d in documents],
                task="retrieval.passage",
            ).embeddings
            scores = np.asarray(targets) @ np.asarray(vector)
            expected[query_id] = float(scores[0] > scores[1:].max())
        ours = report.result("mmeb-mini", task.name, f"dense:{clip}")
        assert ours.per_query["hit@1"] == expected, task.name
    from omniretrieve.eval.report import summary_rows

    cells = dict(dict(summary_rows(report))[f"dense:{clip}"])
    per_task = [cells[f"mmeb-mini {t.name} hit@1"] for t in dataset.tasks]
    assert cells["mmeb-mini overall hit@1"] == pytest.approx(sum(per_task) / 2)


def test_a_coir_folder_instruction_goes_to_the_embedders(tmp_path: Path, tiny_bert_dir) -> None:
    root = tmp_path / "coir-task"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "text": x}) + "\n" for d, (_, x) in DOCS.items())
    )
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "ownership"}) + "\n")
    (root / "qrels" / "test.tsv").write_text("q\td3\t1\n")
    (root / "instruction.txt").write_text("Given a question, find the code that answers it.\n")
    dataset = load_eval_dataset(root)
    assert dataset.instruction == "Given a question, find the code that answers it."
    report = evaluate([root], [f"dense:{tiny_bert_dir}"], cache_dir=tmp_path / "c",
                      show_progress=False)  # fmt: skip
    assert report.config["query_instructions"] == {
        "coir-task/instruction.txt": "Given a question, find the code that answers it."
    }
    assert report.config["search_depth_by_dataset"] == {"coir-task": 100}
    (root / "instruction.txt").unlink()  # the same instruction given by hand: the same run
    by_hand = evaluate(
        [root],
        [f"dense:{tiny_bert_dir}"],
        cache_dir=tmp_path / "c",
        show_progress=False,
        instruction="Given a question, find the code that answers it.",
    )
    pipeline = f"dense:{tiny_bert_dir}"
    assert (
        report.result("coir-task", "test", pipeline).per_query
        == by_hand.result("coir-task", "test", pipeline).per_query
    )


def test_modality_gap_scores_text_and_image_pairs_with_one_model(tmp_path: Path) -> None:
    """``modality_gap``: the relevant pairs of a text set and of a page-image set, scored by
    one reranker (a tiny random m0, which reads both), its histogram and overlap reported."""
    from omniretrieve import Reranker
    from omniretrieve.eval.modality_gap import histogram_overlap
    from tests.builders.tiny_m0 import build_tiny_m0

    m0 = str(build_tiny_m0(tmp_path / "m0"))
    text = write_miracl(tmp_path / "text-set")
    pages = tmp_path / "pages"
    (pages / "qrels").mkdir(parents=True)
    for number, color in enumerate([(200, 30, 30), (30, 30, 200)]):
        (pages / f"p{number}.png").write_bytes(png_bytes(color, (48, 40)))
    (pages / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"p{n}", "image": f"p{n}.png"}) + "\n" for n in range(2))
    )
    (pages / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "a red page"}) + "\n")
    (pages / "qrels" / "test.tsv").write_text("q\tp0\t1\n")
    out = tmp_path / "out"
    report = evaluate(
        [text, pages], ["bm25"], cache_dir=tmp_path / "c", out_dir=out,
        modality_gap=m0, show_progress=False,
    )  # fmt: skip
    gap = report.config["modality_gap"]
    assert (gap["text_pairs"], gap["image_pairs"]) == (2, 1)  # d1, d3 (d2 is graded 0); p0
    reranker = Reranker(m0)
    page_score = reranker.rerank("a red page", [{"image": str(pages / "p0.png")}]).results[0]
    assert gap["image_mean"] == pytest.approx(page_score.relevance_score, abs=1e-5)
    assert gap["overlap"] == histogram_overlap(
        report.modality_gap.text_scores, report.modality_gap.image_scores
    )
    assert (out / "modality-gap.png").is_file()
    assert "## Modality gap" in (out / "report.md").read_text()
