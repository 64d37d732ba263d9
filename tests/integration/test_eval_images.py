"""Image sets through ``evaluate`` with image-capable models (tiny random CLIP and m0
checkpoints): Winoground's scores equal its rules applied to the models' own similarities,
text-to-image retrieval equals exact search over the model's vectors, and text-only pipelines
(and image queries) say why they did not run."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path

import numpy as np

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
    assert "image queries" in report.result("captions-mini", "i2t", f"dense:{clip}").skipped
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
