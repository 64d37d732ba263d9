"""One search from the command line: a cold CLI that loads the models vs ``--server`` asking a
warm ``omniretrieve serve``.

    python benchmarks/cli_search_latency.py [--documents 1000] [--repeats 5]

Indexes the first --documents SciFact documents (MiniLM, hybrid) into a temporary root with
the CLI, starts ``omniretrieve serve --collections-root`` on it, then times, as a user sees
them (wall clock of the whole command, each a fresh process):

- ``omniretrieve search c QUERY --root ROOT`` (loads MiniLM and the collection every call);
- ``omniretrieve search c QUERY --server URL`` (the server's models and collection are warm);
- the same query as one HTTP request from a warm client (what the server itself takes).

and prints the medians and the ratios, plus whether both searches returned the same hits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = (
    Path(os.environ.get("OMNIRETRIEVE_DATASETS", ROOT.parent / "shared" / "datasets")) / "scifact"
)
CLI = [sys.executable, "-m", "omniretrieve.cli"]


def run(args: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    queries = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open()][:50]
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        corpus = base / "corpus.jsonl"
        with (SCIFACT / "corpus.jsonl").open() as source, corpus.open("w") as target:
            for _, line in zip(range(args.documents), source, strict=False):
                target.write(line)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMNIRETRIEVE_DATA": str(base / "data")}
        root = base / "collections"
        subprocess.run(
            [*CLI, "index", "c", "--from", str(corpus), "--root", str(root)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), "--collections-root", str(root), "--no-bundled",
             "-m", "all-MiniLM-L6-v2", "-m", "omniretrieve-hybrid-reranker"],
            env=env, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stderr is not None
            for line in server.stderr:
                if line.startswith("ready: "):
                    break
            client = httpx.Client(timeout=60)
            client.post(f"{url}/v1/collections/c/search", json={"query": "warm up"})
            cold, remote, http = [], [], []
            same = 0
            for query in queries[: args.repeats]:
                seconds, local_hits = run(["search", "c", query, "--root", str(root)], env)
                cold.append(seconds)
                seconds, remote_hits = run(["search", "c", query, "--server", url], env)
                remote.append(seconds)
                same += [h["doc_id"] for h in local_hits["hits"]] == [
                    h["doc_id"] for h in remote_hits["hits"]
                ]
                started = time.perf_counter()
                client.post(
                    f"{url}/v1/collections/c/search", json={"query": query}
                ).raise_for_status()
                http.append(time.perf_counter() - started)
        finally:
            server.terminate()
            server.wait(60)
    cold_s, remote_s, http_s = (statistics.median(x) for x in (cold, remote, http))
    print(f"SciFact, {args.documents} documents, MiniLM hybrid, {args.repeats} queries (medians)")
    print(f"  cold CLI (loads the models)   {cold_s * 1000:8.0f} ms")
    remote_ratio = cold_s / remote_s
    print(
        f"  CLI --server (warm server)    {remote_s * 1000:8.0f} ms   {remote_ratio:5.1f}x faster"
    )
    print(
        f"  one HTTP request, warm client {http_s * 1000:8.0f} ms   {cold_s / http_s:5.1f}x faster"
    )
    print(f"  same hits: {same}/{args.repeats}")


if __name__ == "__main__":
    main()
