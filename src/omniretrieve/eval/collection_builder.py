"""The collection an evaluation searches: one per (dataset, models, passage mode, store, OCR,
image embedding), kept in the cache folder and resumed if a build was interrupted."""

from __future__ import annotations

import hashlib
from pathlib import Path

from omniretrieve.eval.context import EvalModels
from omniretrieve.eval.datasets import EvalDataset
from omniretrieve.index.collection import Collection
from omniretrieve.index.settings import CollectionSettings

COLLECTION_FORMAT = "eval-2"
"""Bump when the way eval builds its collections changes, so old ones are not re-used."""


def _vectors_identity(model_id: str, models: EvalModels) -> str:
    """What the stored vectors of ``model_id`` depend on: its weights and its precision (a
    collection built in bf16 is not searched with float32 queries), read without loading the
    model where it is cached."""
    embedder = models.embedders.get(model_id)
    if embedder is None:
        return model_id
    cache_key = getattr(embedder, "cache_key", None)
    if callable(cache_key):
        return f"{model_id}@{cache_key()}"
    return f"{model_id}@{getattr(embedder, 'fingerprint', 'unknown')}"


def dataset_collection(
    dataset: EvalDataset,
    embedders: tuple[str, ...],
    cache_dir: Path,
    models: EvalModels,
    show_progress: bool,
    ocr: bool = False,
    images: bool = False,
) -> Collection:
    """The dataset's collection in the cache, created or completed as needed (an interrupted
    build resumes: upsert skips documents already stored with the same content). With
    ``images``, documents keep their images and the (image-capable) embedders embed them; with
    ``ocr``, the pages' OCR text is indexed as text and the images are left out."""
    passages, store = models.passages, models.vector_store
    parts = [COLLECTION_FORMAT, dataset.checksum, passages]
    parts += [_vectors_identity(model_id, models) for model_id in embedders]
    if store != "faiss":
        parts.append(f"store={store}")
    if models.sparse != "local":
        parts.append(f"sparse={models.sparse}")
    if models.storage != "folder":
        parts.append(f"storage={models.storage}")
    reader = None
    if ocr:
        reader = models.ocr.get()
        parts.append(f"ocr={reader.engine.name}-{reader.engine.version}")
        parts.append("text-only")  # OCR collections once embedded the pages too: not re-used
    if images:
        parts.append("images=native")
    identity = "\n".join(parts)
    name = f"{dataset.name}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"
    root = cache_dir / "eval-collections"
    settings = CollectionSettings(
        embedders=embedders,
        passages=passages,
        vector_store=store,
        sparse=models.sparse,
        storage=models.storage,
        ocr_images=False,  # ocr+ pipelines read pages below; image models embed the pixels
        fusion="zscore",  # a pipeline's weights are equal unless the run fits them
    ).validate()
    if (root / name / "collection.json").is_file():
        opened = Collection.open(
            name, root=root, embedders=models.embedders, rerankers=models.rerankers
        )
        if (opened.settings.language, opened.settings.fusion) != (
            settings.language,
            settings.fusion,
        ):  # search-time settings: not part of the collection's name
            opened.update_settings(language=settings.language, fusion=settings.fusion)
    else:
        opened = Collection.create(
            name,
            root=root,
            settings=settings,
            embedders=models.embedders,
            rerankers=models.rerankers,
        )
    present = [d for d in dataset.corpus.values() if not d.empty]
    texts = [d.full_text for d in present]
    if reader is not None and len(opened) < len(present):
        pages = [Path(d.image).read_bytes() if d.image else b"" for d in present]
        read = reader.read_many(
            [i for i in pages if i], show_progress=show_progress, description="OCR"
        )
        found = iter(read)
        texts = [
            f"{text}\n{next(found)}".strip() if page else text
            for text, page in zip(texts, pages, strict=True)
        ]
    documents = [
        {"id": d.doc_id, "text": text, "metadata": d.metadata}
        | ({"image": d.image} if images and d.image else {})
        for d, text in zip(present, texts, strict=True)
        if text.strip() or (images and d.image)
    ]
    if len(opened) < len(documents):
        opened.upsert(documents, show_progress=show_progress)
        opened.flush()
    return opened
