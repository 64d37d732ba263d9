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
    assert len(lines) == 5  # one per step at this interval (the last one is not said twice)
    assert lines[0].startswith("indexing: 2/10 (20%), ")
    assert "rate unknown" in lines[0]  # no rate from a few microseconds of work
    assert lines[-1].startswith("indexing: 10/10 (100%)") and "0 s left" in lines[-1]
    quiet = io.StringIO()
    with plain_progress(10, "indexing", quiet, every_s=3600) as advance:
        advance(10)
    assert len(quiet.getvalue().splitlines()) == 1  # the end is always reported


def test_progress_measures_work_in_its_unit_with_an_honest_rate() -> None:
    """Indexing counts characters (5 large files are not 0/5 for a minute, then a burst);
    the rate waits for a second of work instead of dividing by microseconds."""
    import io
    import time

    from omniretrieve.runtime.progress import amount, plain_progress

    assert amount(950, "chars") == "950 chars"
    assert amount(12_345, "chars") == "12.3k chars"
    assert amount(4_500_000, "B") == "4.5 MB"
    assert amount(7, None) == "7"
    stream = io.StringIO()
    with plain_progress(3_000_000, "indexing", stream, every_s=3600, unit="chars") as advance:
        advance(1_000_000)
        time.sleep(1.05)
        advance(500_000)
    (line,) = stream.getvalue().splitlines()
    assert line.startswith("indexing: 1.5M chars/3.0M chars (50%), ")
    rate = float(line.split(", ")[1].split("M chars/s")[0])
    assert 0.5 < rate < 1.5  # 1.5M chars in a second and a bit
