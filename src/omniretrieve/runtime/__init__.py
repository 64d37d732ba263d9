"""Execution helpers shared by every model family: batching, caches, backends."""
