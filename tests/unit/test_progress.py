"""Progress reporting on stderr."""

from __future__ import annotations


def test_progress_without_a_terminal_is_plain_lines() -> None:
    """stderr that is not a terminal (nohup, CI, a log file) gets a plain line at a steady
    interval and one at the end, with the count, share, rate and time left."""
    import io

    from omniretrieve.runtime.progress import plain_progress

    stream = io.StringIO()
    with plain_progress(10, "indexing", stream, every_s=0.0) as advance:
        for _ in range(5):
            advance(2)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6  # one per step at this interval, then the last
    assert lines[0].startswith("indexing: 2/10 (20%), ") and "/s" in lines[0]
    assert lines[-1].startswith("indexing: 10/10 (100%)") and "0 s left" in lines[-1]
    quiet = io.StringIO()
    with plain_progress(10, "indexing", quiet, every_s=3600) as advance:
        advance(10)
    assert len(quiet.getvalue().splitlines()) == 1  # the end is always reported
