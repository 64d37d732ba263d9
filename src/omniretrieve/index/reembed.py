"""Moving a collection to another embedder (a fine-tuned one): ``collections reembed``.

The new model's passage vectors are built beside the old field while the collection is held
for writing, then the switch happens in three crash-safe steps:

1. a snapshot holding both fields is written and made current (the old settings still name
   the old model: a crash here leaves the collection as it was, the new field unused);
2. the settings are replaced atomically, naming the new model in the old one's place: from
   this write on, searches use the new vectors (the self-tuned fusion, fitted with the old
   model, is dropped with it: ``collections tune`` fits it again);
3. a snapshot without the old field is written.

A crash between 2 and 3 leaves the old field unused; opening for writing drops any field the
settings do not name, so the next write's compaction removes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from omniretrieve.errors import InputError
from omniretrieve.index.field_outputs import model_outputs
from omniretrieve.index.settings import FIELD_OUTPUTS, field_name, settings_json
from omniretrieve.runtime.progress import progress_bar

BATCH = 256
"""Documents embedded at once."""


@dataclass(frozen=True)
class ReembedReport:
    collection: str
    replaced: str
    embedder: str
    documents: int
    passages: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reembed(
    collection: Any,
    embedder: str,
    *,
    replacing: str | None = None,
    show_progress: bool = False,
) -> ReembedReport:
    """Replace ``replacing`` (default: the collection's only embedder) by ``embedder``."""
    collection._check_writable()
    settings = collection.settings
    if settings.storage != "folder" or settings.vector_store != "faiss":
        raise InputError(
            "reembed moves collections whose documents and vectors live in their folder "
            "(storage folder, vector store faiss); index a Milvus-backed collection into a "
            "new collection with the new embedder",
            field="embedder",
        )
    old = _replaced(settings.embedders, replacing)
    if embedder in settings.embedders or field_name(embedder) in map(
        field_name, settings.embedders
    ):
        raise InputError(f"the collection already embeds with {embedder!r}", field="embedder")
    started = time.perf_counter()
    model = collection.embedder(embedder)  # loads it: a wrong model fails before any write
    if model_outputs(model) != ("dense",):
        raise InputError(
            f"{embedder!r} gives {', '.join(model_outputs(model))} fields; reembed moves a "
            "collection to a single-vector model (index into a new collection for this one)",
            field="embedder",
        )
    state = collection.state()
    documents = list(state.documents.values())
    built: dict[str, tuple[list[tuple[int, int]], Any]] = {}
    with progress_bar(
        sum(len(d.text) for d in documents),
        f"re-embedding {collection.name} ({model.model_id})",
        enabled=show_progress,
        unit="chars",
    ) as advance:
        for start in range(0, len(documents), BATCH):
            batch = documents[start : start + BATCH]
            built.update(collection.passage_fields(embedder, batch)[field_name(embedder)])
            advance(sum(len(d.text) for d in batch))
    store = collection._store
    state.passages[field_name(embedder)] = built
    store.compact(state)  # 1: both fields; the settings still name the old model
    switched = replace(
        settings, embedders=tuple(embedder if m == old else m for m in settings.embedders)
    ).validate()
    store.write_settings(settings_json(switched))  # 2: the switch
    collection.settings = switched
    store.tuning_path.unlink(missing_ok=True)
    collection._tuning = None
    for output in FIELD_OUTPUTS:  # the old model's fields, those it had
        state.passages.pop(field_name(old, output), None)
    store.compact(state)  # 3: the old field goes
    collection.close()
    return ReembedReport(
        collection.name,
        old,
        embedder,
        len(documents),
        sum(len(spans) for spans, _ in built.values()),
        round(time.perf_counter() - started, 2),
    )


def _replaced(embedders: tuple[str, ...], replacing: str | None) -> str:
    if replacing is None:
        if len(embedders) != 1:
            raise InputError(
                f"the collection embeds with {', '.join(embedders)}: name the one to replace "
                "(--replace MODEL)",
                field="replace",
            )
        return embedders[0]
    if replacing not in embedders:
        raise InputError(
            f"the collection does not embed with {replacing!r} (it does with "
            f"{', '.join(embedders)})",
            field="replace",
        )
    return replacing


def drop_unnamed_fields(state: Any, embedders: tuple[str, ...]) -> None:
    """Forget vector fields the settings no longer name (a reembed that crashed after its
    switch): the next compaction leaves them out."""
    named = {field_name(m, o) for m in embedders for o in FIELD_OUTPUTS}
    prefixes = tuple(f"{o}-" for o in FIELD_OUTPUTS)
    for stale in [f for f in state.passages if f.startswith(prefixes) and f not in named]:
        del state.passages[stale]
