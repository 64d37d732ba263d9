"""Damage a collection's files between runs: every case must be a clear error (or the
documented fallback), leave every file as it was, and, once the damaged file is restored, give
back everything acknowledged.

    python benchmarks/fault_test.py [--documents 300] [--model all-MiniLM-L6-v2]
        [--only folder,tuning,milvus]

Three groups of cases:

- ``folder``: the files of a folder collection (below);
- ``tuning``: ``tuning.json`` damaged in 47 ways (``tests/builders/tuning_damage.py``): the
  documented fallback is a warning naming the file and equal fusion weights; the collection
  opens (writer and reader), answers hybrid searches with and without the reranker exactly
  as with no fit, the CLI searches without a traceback, and the file stays for inspection;
- ``milvus``: the Milvus data of a collection whose documents Milvus alone holds, lost or
  damaged in 17 ways (``tests/builders/milvus_damage.py``), plus a damaged document row:
  every open is refused with a CollectionFormatError (the CLI: exit 1, one line), nothing is
  written or recreated, and once the damage is undone every acknowledged document is back.

A collection of SciFact documents is built with the real embedder: a snapshot (flushed) plus
acknowledged writes still in the WAL. Each case copies it, damages one file (cut, emptied,
bit-flipped, removed, or a WAL line / setting with a bad value), then tries to open it for
writing, open it read-only, and search it with the CLI (a separate process). Each attempt must
fail with a CollectionFormatError (the CLI: exit 1 and one line naming the file, no traceback),
and no file may change. Then the damaged file is restored and every acknowledged document must
be there with its text, and search must answer. Prints a Markdown table; exits 1 on a failure.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from omniretrieve import Embedder  # noqa: E402
from omniretrieve.index.collection import Collection  # noqa: E402
from omniretrieve.index.documents import iter_jsonl_documents  # noqa: E402
from omniretrieve.index.store import CollectionFormatError  # noqa: E402
from tests.builders.files import fingerprint  # noqa: E402

NAME = "faults"


def snapshot(directory: Path) -> Path:
    return directory / (directory / "CURRENT").read_text().strip()


def cut_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x10
    path.write_bytes(bytes(data))


def wal_line(directory: Path, record: object) -> None:
    with open(directory / "wal.jsonl", "a", encoding="utf-8") as wal:
        wal.write(json.dumps(record) + "\n")


def wal_vectors(shape: list[int], b64: str, spans: int = 1) -> dict:
    entry = {"spans": [[0, 1]] * spans, "vectors": {"shape": shape, "b64": b64}}
    return {
        "op": "upsert",
        "documents": [{"document": {"id": "x", "text": "x"}, "vectors": {"dense-x": entry}}],
    }


def setting(key: str, value: object) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        path = directory / "collection.json"
        data = json.loads(path.read_text())
        data[key] = value
        path.write_text(json.dumps(data))

    return damage


def npy(directory: Path) -> Path:
    return next(snapshot(directory).glob("*.npy"))


# name -> (the file it damages, relative to the collection; the damage)
CASES: dict[str, tuple[Callable[[Path], Path], Callable[[Path], None]]] = {
    "documents.jsonl cut in half": (
        lambda d: snapshot(d) / "documents.jsonl",
        lambda d: cut_half(snapshot(d) / "documents.jsonl"),
    ),
    "documents.jsonl emptied": (
        lambda d: snapshot(d) / "documents.jsonl",
        lambda d: (snapshot(d) / "documents.jsonl").write_bytes(b""),
    ),
    "documents.jsonl bit flipped": (
        lambda d: snapshot(d) / "documents.jsonl",
        lambda d: flip(snapshot(d) / "documents.jsonl"),
    ),
    "passages.json cut in half": (
        lambda d: snapshot(d) / "passages.json",
        lambda d: cut_half(snapshot(d) / "passages.json"),
    ),
    "passages.json bit flipped": (
        lambda d: snapshot(d) / "passages.json",
        lambda d: flip(snapshot(d) / "passages.json", 0.3),
    ),
    "vectors .npy cut in half": (npy, lambda d: cut_half(npy(d))),
    "vectors .npy bit flipped": (npy, lambda d: flip(npy(d), 0.9)),
    "vectors .npy removed": (npy, lambda d: npy(d).unlink()),
    "manifest.json removed": (
        lambda d: snapshot(d) / "manifest.json",
        lambda d: (snapshot(d) / "manifest.json").unlink(),
    ),
    "manifest.json bit flipped": (
        lambda d: snapshot(d) / "manifest.json",
        lambda d: flip(snapshot(d) / "manifest.json", 0.2),
    ),
    "CURRENT emptied": (lambda d: d / "CURRENT", lambda d: (d / "CURRENT").write_text("")),
    "CURRENT names a missing snapshot": (
        lambda d: d / "CURRENT",
        lambda d: (d / "CURRENT").write_text("snap-99"),
    ),
    "WAL: garbage line before the others": (
        lambda d: d / "wal.jsonl",
        lambda d: (d / "wal.jsonl").write_bytes(b"#garbage\n" + (d / "wal.jsonl").read_bytes()),
    ),
    "WAL: document without id": (
        lambda d: d / "wal.jsonl",
        lambda d: wal_line(d, {"op": "upsert", "documents": [{"document": {"text": "t"}}]}),
    ),
    "WAL: vectors not base64": (
        lambda d: d / "wal.jsonl",
        lambda d: wal_line(d, wal_vectors([1, 4], "not base64!")),
    ),
    "WAL: vectors of the wrong shape": (
        lambda d: d / "wal.jsonl",
        lambda d: wal_line(d, wal_vectors([2, 4], base64.b64encode(bytes(16)).decode())),
    ),
    "WAL: spans and vectors disagree": (
        lambda d: d / "wal.jsonl",
        lambda d: wal_line(d, wal_vectors([1, 4], base64.b64encode(bytes(16)).decode(), 2)),
    ),
    "WAL: delete without a list": (
        lambda d: d / "wal.jsonl",
        lambda d: wal_line(d, {"op": "delete", "ids": "4983"}),
    ),
    "WAL: unknown operation": (
        lambda d: d / "wal.jsonl",
        lambda d: wal_line(d, {"op": "truncate"}),
    ),
    "settings: embedders not a list": (
        lambda d: d / "collection.json",
        setting("embedders", 5),
    ),
    "settings: rerank_candidates a string": (
        lambda d: d / "collection.json",
        setting("rerank_candidates", "many"),
    ),
    "settings: unknown language": (
        lambda d: d / "collection.json",
        setting("language", "klingon"),
    ),
    "settings: fusion_weights of strings": (
        lambda d: d / "collection.json",
        setting("fusion_weights", ["a", "b"]),
    ),
    "settings: future format version": (
        lambda d: d / "collection.json",
        setting("format_version", 99),
    ),
    "settings: collection.json cut in half": (
        lambda d: d / "collection.json",
        lambda d: cut_half(d / "collection.json"),
    ),
}


def cli_search(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omniretrieve.cli", "search", NAME, "cell biology", "--root",
         str(root)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )  # fmt: skip


def build(root: Path, model: str, embedder: Embedder, limit: int) -> dict[str, str]:
    corpus = ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
    documents = []
    for number, record in enumerate(iter_jsonl_documents(corpus)):
        if number >= limit:
            break
        documents.append(
            {"id": str(record["_id"]), "title": record.get("title", ""), "text": record["text"]}
        )
    with Collection.create(NAME, root=root, embedders={model: embedder}) as collection:
        collection.upsert(documents[: limit * 2 // 3])
        collection.flush()  # a snapshot ...
        collection.upsert(documents[limit * 2 // 3 :])  # ... and acknowledged writes in the WAL
        collection.delete([documents[0]["id"]])
        return {d: collection.get(d).text for d in collection.document_ids()}


def run_case(
    name: str, pristine: Path, work: Path, model: str, embedder: Embedder, texts: dict[str, str]
) -> dict[str, object]:
    target, damage = CASES[name]
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pristine, work / NAME)
    directory = work / NAME
    damaged_file = target(directory)
    relative = damaged_file.relative_to(directory)
    damage(directory)
    before = fingerprint(directory)
    errors = []
    for read_only in (False, True):
        try:
            Collection.open(NAME, root=work, embedders={model: embedder}, read_only=read_only)
            errors.append("opened!")
        except CollectionFormatError as exc:
            errors.append(exc.message)
    cli = cli_search(work)
    clear = (
        all(relative.name in e or "collection.json" in e for e in errors)
        and cli.returncode == 1
        and "Traceback" not in cli.stderr
        and cli.stderr.startswith("error: ")
    )
    unchanged = fingerprint(directory) == before
    shutil.copy2(pristine / relative, damaged_file) if (pristine / relative).exists() else None
    if name.startswith("WAL:") and name != "WAL: garbage line before the others":
        shutil.copy2(pristine / "wal.jsonl", directory / "wal.jsonl")
    with Collection.open(NAME, root=work, embedders={model: embedder}) as restored:
        present = {d: restored.get(d).text for d in restored.document_ids()}
        searched = bool(restored.search("cell biology", top_k=3))
    intact = present == texts and searched
    return {
        "case": name,
        "file": str(relative),
        "error": errors[0]
        .split(";")[0]
        .replace(f"{directory}/", "")
        .replace(str(directory), "")[:90],
        "cli exit": cli.returncode,
        "clear": clear,
        "unchanged": unchanged,
        "restored": intact,
    }


def searches(collection: Collection) -> list[list[tuple[str, float]]]:
    answers = []
    for rerank in (False, True):
        hits = collection.search("cell biology", top_k=5, mode="hybrid", rerank=rerank)
        json.dumps([h.to_json() for h in hits], allow_nan=False)
        answers.append([(h.doc_id, round(h.score, 6)) for h in hits])
    return answers


def run_tuning_cases(base: Path, model: str, embedder: Embedder, limit: int) -> list[dict]:
    """``tuning.json`` damaged: a warning, equal weights, the file kept (the fallback)."""
    from omniretrieve.models.registry import DEFAULT_RERANKER
    from tests.builders.tuning_damage import TUNING_DAMAGES, valid_tuning

    pristine = base / "tuning-pristine"
    texts = build(pristine, model, embedder, limit)
    (pristine / NAME / "tuning.json").unlink(missing_ok=True)  # the fit the upserts made
    models = {"embedders": {model: embedder}}
    with Collection.open(NAME, root=pristine, **models) as collection:
        equal = searches(collection)  # equal weights: what every damaged fit falls back to
        collection.save_tuning(valid_tuning(model, DEFAULT_RERANKER))
        assert searches(collection) != equal, "the fit must change the answers"
    rows = []
    for name, damage in TUNING_DAMAGES.items():
        work = base / "tuning-work"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(pristine, work)
        path = work / NAME / "tuning.json"
        path.write_bytes(damage(path.read_bytes()))
        before = fingerprint(work / NAME)
        answered, warned = [], []
        for read_only in (False, True):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    with Collection.open(NAME, root=work, read_only=read_only, **models) as c:
                        answered.append(c.tuning() is None and searches(c) == equal)
                        answered[-1] &= {d: c.get(d).text for d in c.document_ids()} == texts
                except Exception as exc:  # anything raised fails the case
                    answered.append(False)
                    print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            warned.append(any(str(path) in str(w.message) for w in caught))
        cli = cli_search(work)
        row = {
            "case": f"tuning: {name}",
            "file": "tuning.json",
            "error": "warning, equal weights" if all(warned) else "no warning",
            "cli exit": cli.returncode,
            "clear": all(warned) and cli.returncode == 0 and "Traceback" not in cli.stderr,
            "unchanged": fingerprint(work / NAME) == before,
            "restored": all(answered),
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def build_held(root: Path, model: str, embedder: Embedder, limit: int) -> dict[str, str]:
    """A collection whose documents Milvus alone holds, written in two sessions (a copy of
    its Milvus data between them is kept as ``older-milvus.db``)."""
    from omniretrieve.index.collection import CollectionSettings

    corpus = ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
    documents = [
        {"id": str(r["_id"]), "title": r.get("title", ""), "text": r["text"]}
        for _, r in zip(range(limit), iter_jsonl_documents(corpus), strict=False)
    ]
    settings = CollectionSettings(
        embedders=(model,), vector_store="milvus", sparse="milvus", storage="milvus"
    )
    models = {"embedders": {model: embedder}}
    with Collection.create(NAME, root=root, settings=settings, **models) as collection:
        collection.upsert(documents[: limit * 2 // 3])
    shutil.copytree(root / NAME / "milvus.db", root / "older-milvus.db")
    with Collection.open(NAME, root=root, **models) as collection:
        collection.upsert(documents[limit * 2 // 3 :])
        collection.delete([documents[0]["id"]])
        return {d: collection.get(d).text for d in collection.document_ids()}


def run_milvus_cases(base: Path, model: str, embedder: Embedder, limit: int) -> list[dict]:
    from tests.builders.milvus_damage import MILVUS_DAMAGES, READ_DAMAGES

    pristine = base / "held-pristine"
    texts = build_held(pristine, model, embedder, limit)
    models = {"embedders": {model: embedder}}
    kept = ("collection.json", "held.json", "wal.jsonl")
    rows = []
    for name, damage in {**MILVUS_DAMAGES, **READ_DAMAGES}.items():
        work = base / "held-work"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(pristine, work)
        folder = work / NAME
        damage(folder)
        before = {n: (folder / n).read_bytes() if (folder / n).exists() else None for n in kept}
        had_db = (folder / "milvus.db").exists()
        errors = []
        for read_only in (False, True):
            try:
                with Collection.open(NAME, root=work, read_only=read_only, **models) as c:
                    for doc_id in c.document_ids():  # a damaged row shows when it is read
                        c.get(doc_id)
                errors.append("opened!")
            except CollectionFormatError as exc:
                errors.append(exc.message)
            except Exception as exc:
                errors.append(f"raw {type(exc).__name__}: {exc}")
        cli = cli_search(work)
        in_cli = name in READ_DAMAGES or (cli.returncode == 1 and cli.stderr.startswith("error: "))
        after = {n: (folder / n).read_bytes() if (folder / n).exists() else None for n in kept}
        unchanged = after == before and (folder / "milvus.db").exists() == had_db
        shutil.rmtree(folder)
        shutil.copytree(pristine / NAME, folder)
        with Collection.open(NAME, root=work, **models) as restored:
            present = {d: restored.get(d).text for d in restored.document_ids()}
            searched = bool(restored.search("cell biology", top_k=3))
        row = {
            "case": f"milvus: {name}",
            "file": "milvus.db / held.json / collection.json",
            "error": errors[0].replace(str(folder), "")[:90],
            "cli exit": cli.returncode,
            "clear": all(not e.startswith(("opened!", "raw ")) for e in errors)
            and in_cli
            and "Traceback" not in cli.stderr,
            "unchanged": unchanged,
            "restored": present == texts and searched,
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--only", default="folder,tuning,milvus")
    args = parser.parse_args()
    groups = set(args.only.split(","))
    embedder = Embedder(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        texts = build(base / "pristine", args.model, embedder, args.documents)
        for name in CASES if "folder" in groups else []:
            row = run_case(
                name, base / "pristine" / NAME, base / "work", args.model, embedder, texts
            )
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if "tuning" in groups:
            rows += run_tuning_cases(base, args.model, embedder, args.documents)
        if "milvus" in groups:
            rows += run_milvus_cases(base, args.model, embedder, args.documents)
    print(f"{len(texts)} acknowledged documents (snapshot + WAL), {len(rows)} cases\n")
    print("| case | file | error (end of its first sentence) | CLI exit | clear | unchanged "
          "| restored |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['case']} | {row['file']} | {row['error']} | {row['cli exit']} | "
            f"{'yes' if row['clear'] else 'NO'} | {'yes' if row['unchanged'] else 'NO'} | "
            f"{'yes' if row['restored'] else 'NO'} |"
        )
    failed = [r for r in rows if not (r["clear"] and r["unchanged"] and r["restored"])]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} cases passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
