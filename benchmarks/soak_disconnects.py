"""Soak with clients that leave: big embedding requests whose clients disconnect after a
moment, mixed with one-text requests; the server's RSS over time and the one-text latency.

    python benchmarks/soak_disconnects.py [--seconds 120] [--leavers 8] [--inputs 2048]

Starts `omniretrieve serve` (bundled MiniLM only) on 127.0.0.1. Every round, --leavers clients
each send --inputs SciFact passages and close their connection after --leave-after seconds,
while one client sends one-text requests back to back. Without dropping the work of clients
that left, each round queues --leavers x --inputs texts the model then embeds for nobody, and a
one-text request waits behind them. Prints RSS (start, max, end), the one-text p50/p99, the
queue depth after each round, and the Retry-After seen on any 429.
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

from tests.integration.server_helpers import free_port, wait_ready  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def passages(count: int) -> list[str]:
    corpus = ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
    texts = []
    with open(corpus, encoding="utf-8") as handle:
        for line in handle:
            texts.append(json.loads(line)["text"][:600])
            if len(texts) == count:
                break
    return texts


async def leaver(base: str, texts: list[str], after: float) -> None:
    async with httpx.AsyncClient(timeout=after) as client:
        try:
            await client.post(f"{base}/v1/embeddings", json={"input": texts})
        except httpx.TimeoutException:
            pass  # the client gives up and closes its connection


async def one_text_loop(base: str, until: float, latencies: list[float], retry: list[str]) -> None:
    async with httpx.AsyncClient(timeout=300) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            response = await client.post(f"{base}/v1/embeddings", json={"input": "one text"})
            if response.status_code == 429:
                retry.append(response.headers.get("retry-after", ""))
                await asyncio.sleep(0.2)
                continue
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


async def soak(base: str, pid: int, args: argparse.Namespace) -> None:
    texts = passages(args.inputs)
    latencies: list[float] = []
    retry: list[str] = []
    rss = [rss_mb(pid)]
    depths = []
    until = time.monotonic() + args.seconds
    probe = asyncio.create_task(one_text_loop(base, until, latencies, retry))
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() < until:
            await asyncio.gather(
                *(leaver(base, texts, args.leave_after) for _ in range(args.leavers))
            )
            await asyncio.sleep(1.0)
            metrics = (await client.get(f"{base}/metrics")).text
            depth = [
                line.split()[-1]
                for line in metrics.splitlines()
                if line.startswith("omniretrieve_queue_depth") and "MiniLM" in line
            ]
            depths.append(depth[0] if depth else "?")
            rss.append(rss_mb(pid))
    await probe
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
    print(f"rounds: {len(depths)}, each {args.leavers} clients x {args.inputs} texts, leaving "
          f"after {args.leave_after} s")  # fmt: skip
    print(f"RSS MB: start {rss[0]:.0f}, max {max(rss):.0f}, end {rss[-1]:.0f}")
    print(f"queue depth 1 s after each round: {', '.join(depths)}")
    print(
        f"one-text requests: {len(latencies)}, p50 {statistics.median(ordered) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )
    print(f"429 answers: {len(retry)} (Retry-After values: {sorted(set(retry))})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--leavers", type=int, default=8)
    parser.add_argument("--inputs", type=int, default=2048)
    parser.add_argument("--leave-after", type=float, default=2.0)
    args = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-m", "omniretrieve.cli", "serve", "--no-bundled", "-m",
               "all-MiniLM-L6-v2", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, server)
        asyncio.run(soak(base, server.pid, args))
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
