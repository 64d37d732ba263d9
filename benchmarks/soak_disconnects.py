"""The server soak with clients that leave mixed in: steady load, bursts of large embedding
requests whose clients disconnect, and a one-text probe; RSS over time and the probe's latency.

    python benchmarks/soak_disconnects.py [--seconds 300] [--burst-every 15] [--leavers 8]
        [--steady 8] [--inputs 2048] [--leave-after 2]

Starts `omniretrieve serve` (bundled MiniLM only) on 127.0.0.1 and, for --seconds after a
warm-up:
- the soak of benchmarks/server_load.py: --steady clients (8) sending 8 SciFact queries per
  request back to back;
- every --burst-every seconds, --leavers clients each send --inputs SciFact passages and close
  their connection after --leave-after seconds (the work of a client that left must be
  dropped, not embedded for nobody);
- one client sending a one-text request every 0.25 s (its latency is what a new user sees).
Prints RSS every 30 s (start, max, end), the steady clients' throughput, the probe's p50/p99,
and the queue depth sampled 3 s after each burst.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.builders.servers import free_port, wait_ready  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read_texts(name: str, field: str, count: int, cut: int) -> list[str]:
    texts = []
    with open(SCIFACT / name, encoding="utf-8") as handle:
        for line in handle:
            texts.append(json.loads(line)[field][:cut])
            if len(texts) == count:
                break
    return texts


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def steady(base: str, queries: list[str], until: float, done: list[int]) -> None:
    async with httpx.AsyncClient(timeout=300) as client:
        position = 0
        while time.monotonic() < until:
            batch = [queries[(position + i) % len(queries)] for i in range(8)]
            position += 8
            response = await client.post(f"{base}/v1/embeddings", json={"input": batch})
            done.append(response.status_code)


async def leaver(base: str, texts: list[str], after: float) -> None:
    async with httpx.AsyncClient(timeout=after) as client:
        try:
            await client.post(f"{base}/v1/embeddings", json={"input": texts})
        except httpx.TimeoutException:
            pass  # the client gives up and closes its connection


async def probe(base: str, until: float, latencies: list[float]) -> None:
    async with httpx.AsyncClient(timeout=300) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            response = await client.post(f"{base}/v1/embeddings", json={"input": "one text"})
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.25)


async def depth(base: str) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        metrics = (await client.get(f"{base}/metrics")).text
    found = [
        line.split()[-1]
        for line in metrics.splitlines()
        if line.startswith("omniretrieve_queue_depth") and "MiniLM" in line
    ]
    return found[0] if found else "?"


async def soak(base: str, pid: int, args: argparse.Namespace) -> None:
    queries = read_texts("queries.jsonl", "text", 300, 300)
    passages = read_texts("corpus.jsonl", "text", args.inputs, 600)
    warm = time.monotonic() + args.warmup
    await asyncio.gather(*(steady(base, queries, warm, []) for _ in range(max(args.steady, 1))))
    rss = [rss_mb(pid)]
    started = time.monotonic()
    until = started + args.seconds
    done: list[int] = []
    latencies: list[float] = []
    depths: list[str] = []
    background = [
        asyncio.create_task(steady(base, queries, until, done)) for _ in range(args.steady)
    ]
    background.append(asyncio.create_task(probe(base, until, latencies)))
    next_rss = started + 30
    while time.monotonic() < until - args.burst_every:
        await asyncio.gather(
            *(leaver(base, passages, args.leave_after) for _ in range(args.leavers))
        )
        await asyncio.sleep(3 - args.leave_after if args.leave_after < 3 else 0)
        depths.append(await depth(base))
        while time.monotonic() < min(until, started + args.burst_every * (len(depths) + 1)):
            if time.monotonic() >= next_rss:
                rss.append(rss_mb(pid))
                next_rss += 30
            await asyncio.sleep(0.5)
    await asyncio.gather(*background)
    rss.append(rss_mb(pid))
    elapsed = time.monotonic() - started
    print(
        f"{elapsed:.0f} s: {args.steady} steady clients (8 queries a request), a burst of "
        f"{args.leavers} x {args.inputs}-text requests leaving after {args.leave_after} s every "
        f"{args.burst_every} s ({len(depths)} bursts), a one-text probe every 0.25 s"
    )
    print(f"RSS MB every 30 s: {', '.join(f'{r:.0f}' for r in rss)}")
    ok = sum(1 for status in done if status == 200)
    print(f"steady requests: {ok} answered 200 ({ok / elapsed:.1f}/s), {len(done) - ok} other")
    print(f"queue depth 3 s after each burst: {', '.join(depths)}")
    print(
        f"one-text probe: {len(latencies)} requests, p50 {statistics.median(latencies) * 1000:.0f}"
        f" ms, p99 {p(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--warmup", type=float, default=20)
    parser.add_argument("--burst-every", type=float, default=15)
    parser.add_argument("--leavers", type=int, default=8)
    parser.add_argument("--inputs", type=int, default=2048)
    parser.add_argument("--leave-after", type=float, default=2.0)
    parser.add_argument("--steady", type=int, default=8)
    args = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-m", "omniretrieve.cli", "serve", "--no-bundled", "-m",
               "all-MiniLM-L6-v2", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, server)
        asyncio.run(soak(base, server.pid, args))
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
