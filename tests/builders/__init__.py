"""Tiny random checkpoints in real on-disk layouts, loaded through the users' code path."""
