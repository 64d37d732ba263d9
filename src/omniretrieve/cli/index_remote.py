"""``omniretrieve index NAME --from PATH --server URL``: the files (or a corpus's documents)
sent to a running server, which converts, embeds and stores them with its loaded models (the
same ingest as a local index; ids are the files' paths relative to the folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from omniretrieve.cli.remote import RemoteServer
from omniretrieve.runtime.progress import progress_bar


def index_on_server(
    url: str,
    api_key: str | None,
    name: str,
    source: Path,
    kind: str,
    documents: list[Any],
    skipped: list[dict[str, Any]],
    settings: dict[str, Any],
    follow_symlinks: bool,
) -> dict[str, Any]:
    """Create the collection on the server if it lacks it, send the folder's files, the one
    file or the corpus's documents, and report like a local index."""
    with RemoteServer(url, api_key) as remote:
        remote.ensure_collection(name, settings)
        if kind == "jsonl":
            with progress_bar(len(documents), f"sending to {remote.url}") as advance:
                report: dict[str, Any] = remote.upsert(name, documents, advance)
            report["skipped"] = list(skipped)
        else:
            files = _files(source, kind, follow_symlinks, skipped)
            total = sum(path.stat().st_size for _, path in files)
            with progress_bar(total, f"sending to {remote.url}", unit="B") as advance:
                report = remote.upload(name, files, advance)
            report["skipped"] = skipped + report["skipped"]
            if kind == "folder":
                typer.echo(
                    "note: with --server, documents of files no longer in the folder are kept "
                    f"(DELETE {remote.url}/v1/collections/{name}/documents/ID removes one)",
                    err=True,
                )
        count = remote.count(name)
    return {"collection": name, "server": remote.url, "documents": count, "removed": 0, **report}


def _files(
    source: Path, kind: str, follow_symlinks: bool, skipped: list[dict[str, Any]]
) -> list[tuple[str, Path]]:
    from omniretrieve.ingest.file_documents import wanted
    from omniretrieve.ingest.files import SkippedFile, folder_files

    if kind == "file":
        return [(source.name, source)]
    walked: list[SkippedFile] = []
    found = folder_files(
        source, lambda p: wanted(p.name), skipped=walked, follow_symlinks=follow_symlinks
    )
    files = [(path.relative_to(source).as_posix(), path) for path in found]
    skipped += [{"path": s.path, "error": s.error} for s in walked]
    return files
