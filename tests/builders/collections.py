"""Documents the collection tests share (ids with slashes and Unicode, metadata to filter)."""

from __future__ import annotations

DOCS = [
    {"id": "cats", "text": "Cats eat fish and mice.", "metadata": {"lang": "en", "year": 2020}},
    {
        "id": "stocks",
        "text": "The stock market fell on Monday.",
        "metadata": {"lang": "en", "year": 2021},
    },
    {
        "id": "paris",
        "text": "Paris is the capital of France.",
        "metadata": {"lang": "fr", "year": 2022},
    },
    {
        "id": "dogs/bones ünïcode",
        "text": "Dogs chew bones.",
        "metadata": {"lang": "de", "year": 2020},
    },
]
