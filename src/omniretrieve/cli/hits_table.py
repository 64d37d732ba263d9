"""Search hits as people read them on a terminal: rank, score, id and the best passage with
the query's terms in bold (``search --format table``, the default on a terminal)."""

from __future__ import annotations

from typing import Any

SNIPPET_CHARS = 240
"""Text per hit asked of the search when the table is shown and --max-chars is not given."""


def snippet(hit: dict[str, Any]) -> Any:
    """The hit's text (already cut to its best passage) on one line, the query's terms in
    bold, an ellipsis where the document goes on."""
    import re

    from rich.text import Text

    raw = str(hit.get("text") or "")
    start = int(hit.get("text_start") or 0)
    spans = sorted(
        (begin - start, end - start)
        for begin, end in hit.get("highlights") or []
        if begin >= start and end - start <= len(raw)
    )
    text = Text("…" if start > 0 else "")
    cursor = 0
    for begin, end in spans:  # whitespace runs become one space; offsets stay right
        if begin < cursor:
            continue
        text.append(re.sub(r"\s+", " ", raw[cursor:begin]))
        text.append(re.sub(r"\s+", " ", raw[begin:end]), style="bold yellow")
        cursor = end
    text.append(re.sub(r"\s+", " ", raw[cursor:]))
    if start + len(raw) < int(hit.get("document_chars") or 0):
        text.append("…")
    if not raw.strip() and hit.get("has_image"):
        text = Text("(an image)", style="dim")
    return text


def hits_table(payload: dict[str, Any]) -> Any:
    from rich.table import Table

    hits = payload.get("hits", [])
    took = payload.get("took_ms")
    where = f" from {payload['server']}" if payload.get("server") else ""
    caption = f"{len(hits)} hit(s) in {took} ms{where}" if took is not None else None
    table = Table(caption=caption, show_lines=True, expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("id", overflow="fold", ratio=1)
    table.add_column("text", ratio=4)
    for rank, hit in enumerate(hits, 1):
        title = (hit.get("metadata") or {}).get("title")
        shown = (
            hit["doc_id"] if not title or title == hit["doc_id"] else f"{hit['doc_id']}\n{title}"
        )
        if hit.get("duplicates"):
            shown += f"\n+{len(hit['duplicates'])} similar"
        table.add_row(str(rank), f"{hit['score']:.3f}", shown, snippet(hit))
    return table


def print_hits(payload: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console()
    if not payload.get("hits"):
        console.print(f"no hits in {payload.get('collection')!r}", style="dim")
        return
    console.print(hits_table(payload))
