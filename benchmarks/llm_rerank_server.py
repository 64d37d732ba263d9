"""A Qwen3-Reranker-0.6B-sized LLM yes/no reranker (Qwen3-0.6B's published configuration,
random weights) served by ``omniretrieve serve`` and loaded through /v1/rerank: pairs per
second and p50/p99 latency per request, with request merging on and off.

    python benchmarks/llm_rerank_server.py [--device cuda] [--requests 64] [--concurrency 8]
        [--documents 20] [--doc-tokens 400] [--size 0.6b|tiny]

The checkpoint is written to a temporary folder in the real layout (config.json with
``Qwen3ForCausalLM``, model.safetensors, a tokenizer with ``yes`` and ``no``, no
sentence-transformers files) and served with ``serve --model DIR``, the path a user's real
checkpoint takes; its weights are random, so only speed means anything. The tokenizer is a small
byte-level BPE trained here (the real one cannot be downloaded); the model keeps the real
vocabulary size, so its embedding and answer head cost what the real one's do.

Merging on: ``--max-batch-items 256 --batch-wait-ms 5`` (concurrent requests' pairs share model
batches); off: ``--max-batch-items 1 --batch-wait-ms 0`` (each request is its own model call).
``--size tiny`` runs the same journey on a 2-layer model, to check the script on a CPU.

vLLM is the peer a user would pick for this model on a GPU (``vllm serve
Qwen/Qwen3-Reranker-0.6B`` with the card's ``hf_overrides``); it is not on PyPI for these
machines' CPU and the lent GPU machine has no network to install it, so its row reads "not
run" unless ``import vllm`` works, in which case its offline ``LLM.score`` runs on the same
checkpoint and pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from benchmarks.server_load import free_port, run_level, start  # noqa: E402

# Qwen3-0.6B's published configuration (Qwen3-Reranker-0.6B's backbone)
QWEN3_06B = {
    "vocab_size": 151669,
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000,
    "tie_word_embeddings": True,
}
TINY = {**QWEN3_06B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}  # fmt: skip
MERGING = {
    "on": ["--max-batch-items", "256", "--batch-wait-ms", "5"],
    "off": ["--max-batch-items", "1", "--batch-wait-ms", "0"],
}


def build(folder: Path, size: dict, device: str) -> tuple[int, object]:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from tests.builders.tiny_qwen2 import train_tokenizer

    tokenizer = train_tokenizer(["<think>", "</think>"], vocab_size=4000)
    tokenizer.add_tokens(["yes", "no"])
    tokenizer.save_pretrained(folder)
    config = Qwen3Config(
        **size,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        architectures=["Qwen3ForCausalLM"],
    )
    with torch.device(device if device.startswith("cuda") else "cpu"):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16).eval()
    parameters = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    return parameters, tokenizer


def documents(tokenizer, count: int, tokens: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 2] or ["data"]
    made = []
    for _ in range(count):
        ids = tokenizer(" ".join(rng.choice(words) for _ in range(tokens)))["input_ids"][:tokens]
        made.append(tokenizer.decode(ids))
    return made


def serve_and_load(folder: Path, args: argparse.Namespace, payloads: list[dict]) -> list[dict]:
    rows = []
    for name, flags in MERGING.items():
        port = free_port()
        command = [
            sys.executable, "-m", "omniretrieve.cli", "serve", "--port", str(port),
            "--model", str(folder), "--no-bundled", "--device", args.device,
            "--dtype", "bfloat16", *flags,
        ]  # fmt: skip
        process = start(command, port)
        try:
            url = f"http://127.0.0.1:{port}/v1/rerank"
            asyncio.run(run_level(url, payloads[:2], 1, 2, 600))  # warm-up
            stats = asyncio.run(
                run_level(url, payloads, args.concurrency, args.requests, args.max_seconds)
            )
        finally:
            process.terminate()
            process.wait(60)
        stats["pairs_per_s"] = stats["rps"] * args.documents
        rows.append({"merging": name, "concurrency": args.concurrency, **stats})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def vllm_row(folder: Path, payloads: list[dict]) -> dict:
    try:
        from vllm import LLM  # type: ignore[import-not-found]
    except ImportError:
        return {"peer": "vLLM", "result": "not run: vllm is not installed here"}
    overrides = {
        "architectures": ["Qwen3ForSequenceClassification"],
        "classifier_from_token": ["no", "yes"],
        "is_original_qwen3_reranker": True,
    }
    llm = LLM(model=str(folder), task="score", dtype="bfloat16", hf_overrides=overrides)
    pairs = sum(len(p["documents"]) for p in payloads)
    started = time.perf_counter()
    for payload in payloads:
        llm.score(payload["query"], payload["documents"])
    seconds = time.perf_counter() - started
    return {"peer": "vLLM", "pairs_per_s": pairs / seconds, "note": "offline LLM.score, serial"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", choices=("0.6b", "tiny"), default="0.6b")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--doc-tokens", type=int, default=400)
    parser.add_argument("--max-seconds", type=float, default=240)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "qwen3-reranker-random"
        folder.mkdir()
        started = time.perf_counter()
        size = QWEN3_06B if args.size == "0.6b" else TINY
        parameters, tokenizer = build(folder, size, args.device)
        print(f"built {parameters / 1e9:.3f}B parameters in {time.perf_counter() - started:.0f} s")
        payloads = [
            {
                "model": str(folder),
                "query": f"which study measured outcome {i}",
                "documents": documents(tokenizer, args.documents, args.doc_tokens, seed=i),
                "return_documents": False,
            }
            for i in range(16)
        ]
        rows = serve_and_load(folder, args, payloads)
        on, off = (next(r for r in rows if r["merging"] == m) for m in ("on", "off"))
        print(f"merging on / off: {on['pairs_per_s'] / off['pairs_per_s']:.2f}x pairs/s")
        peer = vllm_row(folder, payloads)
        print(json.dumps(peer))
        print(json.dumps({"device": args.device, "parameters": parameters, "rows": rows}))


if __name__ == "__main__":
    main()
