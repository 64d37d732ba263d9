"""What each stage of a search makes of a query's image, said in the response.

Stages that read images (CLIP, BGE-VL, m0) read it. Stages that read text only (BM25, a text
embedder, a text reranker) read the text OCR finds in the image, joined to the query's text,
as ``/v1/embeddings`` does for images sent to text models; where OCR finds nothing or no OCR
engine is installed, they read the query's text alone, and the note says so. Nothing is
dropped silently: every stage that could not read the image is named."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from omniretrieve.index.queries import SearchQuery
from omniretrieve.inputs import decode_image_bytes


@dataclass(frozen=True)
class ReadQuery:
    query: SearchQuery
    notes: dict[str, str] = field(default_factory=dict)
    """Stage (``sparse``, ``dense:<model>``, ``rerank``) -> what it made of the image."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query_notes": self.notes}
        if self.query.ocr_text:
            out["query_ocr_text"] = self.query.ocr_text
        return out


def read_query_image(
    query: SearchQuery,
    stages: Mapping[str, bool],
    ocr: Callable[[bytes], str] | None,
) -> ReadQuery:
    """``stages``: each stage of this search and whether it reads images. ``ocr`` reads an
    image's text (None: no OCR engine)."""
    if query.image is None or query.ocr_text:
        return ReadQuery(query)
    text_only = [stage for stage, reads_images in stages.items() if not reads_images]
    if not text_only:
        return ReadQuery(query)
    found = ""
    if ocr is not None:
        found = ocr(decode_image_bytes(query.image.source, field="query.image")).strip()
    if found:
        note = f"reads text only: read the query image's OCR text ({len(found)} characters)"
    else:
        why = "OCR found no text in it" if ocr is not None else "no OCR engine is installed"
        rest = "read the query's text alone" if query.has_text else "sat out"
        note = f"reads text only and could not read the query image ({why}): {rest}"
    notes = dict.fromkeys(text_only, note)
    return ReadQuery(replace(query, ocr_text=found), notes)
