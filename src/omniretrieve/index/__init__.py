"""Retrieval indexes: BM25 (sparse), dense vectors and their fusion."""
