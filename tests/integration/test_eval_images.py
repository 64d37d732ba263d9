"""Image sets through ``evaluate`` with image-capable models (tiny random CLIP and m0
checkpoints): Winoground's scores equal its rules applied to the models' own similarities;
text-to-image, image-to-text and composed-image retrieval equal exact search over the models'
vectors; reranking page images equals the reranker's own scores; text-only pipelines say why
they did not run."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder, Reranker
from omniretrieve.eval.layouts import load_eval_dataset
from omniretrieve.eval.runner import evaluate
from omniretrieve.eval.winoground import winoground_scores
from tests.builders.tiny_clip import build_tiny_clip, png_bytes
from tests.builders.tiny_m0 import build_tiny_m0

COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (90, 90, 90)]
CAPTIONS = ["a red square", "a green square", "the dog and the fish", "the fish and the dog"]


def write_winoground(root: Path, examples: list[tuple[str, str, int, int]]) -> Path:
    (root / "images").mkdir(parents=True)
    for number, color in enumerate(COLORS):
        (root / "images" / f"c{number}.png").write_bytes(png_bytes(color, (64, 56)))
    lines = [
        json.dumps(
            {
                "id": str(n),
                "caption_0": c0,
                "caption_1": c1,
                "image_0": f"c{i0}.png",
                "image_1": f"c{i1}.png",
            }
        )
        for n, (c0, c1, i0, i1) in enumerate(examples)
    ]
    (root / "examples.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_winoground_with_clip_and_m0(tmp_path: Path) -> None:
    clip = build_tiny_clip(tmp_path / "clip")
    m0 = build_tiny_m0(tmp_path / "m0")
    embedder = Embedder(clip)
    images = [{"image": base64.b64encode(png_bytes(c, (64, 56))).decode()} for c in COLORS]
    similarity = embedder.encode(CAPTIONS).embeddings @ embedder.encode(images).embeddings.T
    # from the model's own preferences: two captions that prefer different images (image
    # score 1), and the same with the images swapped (image score 0)
    a, b, x, y = next(
        (a, b, x, y)
        for a, b in itertools.permutations(range(len(CAPTIONS)), 2)
        for x, y in itertools.permutations(range(len(COLORS)), 2)
        if similarity[a, x] > similarity[a, y] and similarity[b, y] > similarity[b, x]
    )
    root = write_winoground(
        tmp_path / "winoground-mini",
        [(CAPTIONS[a], CAPTIONS[b], x, y), (CAPTIONS[a], CAPTIONS[b], y, x)],
    )
    pipelines = ["bm25", f"dense:{clip}", f"bm25+rerank:{m0}"]
    report = evaluate([root], pipelines, cache_dir=tmp_path / "c", out_dir=tmp_path / "out")
    dataset = load_eval_dataset(root)
    skipped = report.result("winoground-mini", "examples", "bm25")
    assert skipped.skipped and "image-capable" in skipped.skipped

    dense = report.result("winoground-mini", "examples", f"dense:{clip}")
    assert dense.metrics["image"] == 0.5
    assert dense.per_query["image"] == {"0": 1.0, "1": 0.0}

    def cosine(caption: str, image: str) -> float:
        vectors = embedder.encode([{"text": caption}, {"image": image}]).embeddings
        return float(np.dot(vectors[0], vectors[1]))

    expected = winoground_scores(dataset.examples, cosine)
    assert dense.metrics == {
        "text": expected.text,
        "image": expected.image,
        "group": expected.group,
    }

    reranker = Reranker(m0)

    def relevance(caption: str, image: str) -> float:
        response = reranker.rerank(caption, [{"image": image}], return_documents=False)
        return response.results[0].relevance_score

    expected = winoground_scores(dataset.examples, relevance)
    reranked = report.result("winoground-mini", "examples", f"bm25+rerank:{m0}")
    assert reranked.metrics == {
        "text": expected.text,
        "image": expected.image,
        "group": expected.group,
    }
    table = (tmp_path / "out" / "report.md").read_text()
    assert "winoground-mini text" in table and "winoground-mini group" in table


def test_text_to_image_retrieval_through_a_collection(tmp_path: Path) -> None:
    """An image-caption set (COCO's layout) with ``dense:<CLIP>``: the images are embedded as
    images in the eval collection; the run equals exact search over the model's own vectors."""
    from omniretrieve.eval.metrics import evaluate_run

    clip = build_tiny_clip(tmp_path / "clip")
    root = tmp_path / "captions-mini"
    root.mkdir()
    images, captions = [], []
    for number, color in enumerate(COLORS):
        (root / f"p{number}.png").write_bytes(png_bytes(color, (64, 56)))
        images.append(json.dumps({"_id": f"p{number}", "path": f"p{number}.png"}))
        captions.append(
            json.dumps(
                {
                    "_id": f"c{number}",
                    "text": CAPTIONS[number % 4] + f" {number}",
                    "image_id": f"p{number}",
                }
            )
        )
    (root / "images.jsonl").write_text("\n".join(images) + "\n")
    (root / "captions.jsonl").write_text("\n".join(captions) + "\n")
    report = evaluate(
        [root], ["bm25", f"dense:{clip}"], cache_dir=tmp_path / "c", show_progress=False
    )
    assert report.result("captions-mini", "t2i", "bm25").skipped
    ours = report.result("captions-mini", "t2i", f"dense:{clip}")
    dataset = load_eval_dataset(root)
    task = next(t for t in dataset.tasks if t.name == "t2i")
    embedder = Embedder(clip)
    image_ids = [d for d in dataset.corpus if d.startswith("image:")]
    image_vectors = embedder.encode(
        [{"image": dataset.corpus[d].image} for d in image_ids]
    ).embeddings
    query_vectors = embedder.encode(list(task.queries.values())).embeddings
    run = {
        q: {d: float(s) for d, s in zip(image_ids, row, strict=True)}
        for q, row in zip(task.queries, query_vectors @ image_vectors.T, strict=True)
    }
    expected = evaluate_run(task.qrels, run, ["recall@5", "mrr@10"]).mean
    assert ours.metrics["recall@5"] == expected["recall@5"]
    assert ours.metrics["mrr@10"] == expected["mrr@10"]

    # image -> text: each query is an image, searched through the same collection
    image_to_text = report.result("captions-mini", "i2t", f"dense:{clip}")
    assert not image_to_text.skipped
    task = next(t for t in dataset.tasks if t.name == "i2t")
    caption_ids = [d for d in dataset.corpus if d.startswith("caption:")]
    caption_vectors = embedder.encode(
        [dataset.corpus[d].text for d in caption_ids], task="retrieval.passage"
    ).embeddings
    image_queries = embedder.encode(
        [{"image": task.query_images[q]} for q in task.queries], task="retrieval.query"
    ).embeddings
    run = {
        q: {d: float(s) for d, s in zip(caption_ids, row, strict=True)}
        for q, row in zip(task.queries, image_queries @ caption_vectors.T, strict=True)
    }
    expected = evaluate_run(task.qrels, run, ["recall@5", "mrr@10"]).mean
    assert image_to_text.metrics["recall@5"] == pytest.approx(expected["recall@5"])
    assert image_to_text.metrics["mrr@10"] == pytest.approx(expected["mrr@10"])


def test_composed_image_retrieval_layout(tmp_path: Path) -> None:
    """CIRCO's shape: a reference image and a modification text -> the target images. The
    run equals the BGE-VL-architecture model's own composed-query vectors searched exactly
    over its candidate vectors."""
    from omniretrieve.eval.metrics import evaluate_run
    from tests.builders.tiny_vlm_embedders import build_tiny_llava_next

    model = build_tiny_llava_next(tmp_path / "bge-vl", architecture="LLaVANextForEmbedding")
    root = tmp_path / "cir-mini"
    (root / "images").mkdir(parents=True)
    (root / "qrels").mkdir()
    corpus = []
    for number, color in enumerate(COLORS):
        (root / "images" / f"t{number}.png").write_bytes(png_bytes(color, (64, 56)))
        corpus.append(json.dumps({"_id": f"t{number}", "image": f"images/t{number}.png"}))
    (root / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    queries = [
        {"_id": "q0", "image": "images/t0.png", "text": "make it green"},
        {"_id": "q1", "image": "images/t2.png", "text": "make it yellow"},
    ]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("q0\tt1\t1\nq1\tt3\t1\n")
    dataset = load_eval_dataset(root)
    assert dataset.kind == "composed" and dataset.metrics == ("map@5", "recall@10")
    report = evaluate(
        [root], ["bm25", f"dense:{model}"], cache_dir=tmp_path / "c", show_progress=False
    )
    assert "composed" in report.result("cir-mini", "test", "bm25").skipped
    ours = report.result("cir-mini", "test", f"dense:{model}")
    embedder = Embedder(model)
    targets = embedder.encode(
        [{"image": str(root / "images" / f"t{n}.png")} for n in range(len(COLORS))]
    ).embeddings
    composed = embedder.encode(
        [{"image": str(root / q["image"]), "text": q["text"]} for q in queries],
        task="retrieval.query",
    ).embeddings
    run = {
        q["_id"]: {f"t{n}": float(s) for n, s in enumerate(row)}
        for q, row in zip(queries, composed @ targets.T, strict=True)
    }
    expected = evaluate_run(dataset.tasks[0].qrels, run, ["map@5", "recall@10", "mrr@10"])
    for metric in ("map@5", "recall@10", "mrr@10"):
        assert ours.metrics[metric] == pytest.approx(expected.mean[metric]), metric


def test_page_images_reranked_by_m0_in_eval(tmp_path: Path) -> None:
    """``dense:<CLIP>+rerank:<m0>`` on a page-image set: the reranker reads the page images
    (no OCR, no text), and the run is its own scores of every candidate page."""
    from omniretrieve.eval.metrics import evaluate_run

    clip = build_tiny_clip(tmp_path / "clip")
    m0 = build_tiny_m0(tmp_path / "m0")
    root = tmp_path / "pages-mini"
    (root / "pages").mkdir(parents=True)
    (root / "qrels").mkdir()
    corpus = []
    for number, color in enumerate(COLORS):
        (root / "pages" / f"p{number}.png").write_bytes(png_bytes(color, (64, 56)))
        corpus.append(json.dumps({"_id": f"p{number}", "image": f"pages/p{number}.png"}))
    (root / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    queries = {"q1": "a red page", "q2": "a blue page"}
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    )
    (root / "qrels" / "test.tsv").write_text("q1\tp0\t1\nq2\tp2\t1\n")
    pipeline = f"dense:{clip}+rerank:{m0}"
    report = evaluate([root], [pipeline], cache_dir=tmp_path / "c", show_progress=False)
    ours = report.result("pages-mini", "test", pipeline)
    assert not ours.skipped
    reranker = Reranker(m0)
    pages = [{"image": str(root / "pages" / f"p{n}.png")} for n in range(len(COLORS))]
    run = {}
    for query_id, text in queries.items():
        response = reranker.rerank(text, pages, return_documents=False)
        run[query_id] = {f"p{r.index}": r.relevance_score for r in response.results}
    expected = evaluate_run({"q1": {"p0": 1}, "q2": {"p2": 1}}, run, ["ndcg@5", "mrr@10"])
    assert ours.metrics["ndcg@5"] == pytest.approx(expected.mean["ndcg@5"])
    assert ours.per_query["mrr@10"] == pytest.approx(expected.per_query["mrr@10"])
