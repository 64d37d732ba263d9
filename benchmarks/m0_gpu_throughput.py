"""jina-reranker-m0's architecture at its real size (Qwen2-VL-2B + score head, random weights)
on a GPU in bf16: pairs per second for 1k-token text documents, and for page images.

    python benchmarks/m0_gpu_throughput.py [--device cuda] [--pairs 256] [--doc-tokens 1000]

The checkpoint is written to a temporary folder in the real layout (config.json with
``JinaVLForRanking``, model.safetensors, tokenizer, image processor) and loaded through
``Reranker(folder, device=..., dtype="bfloat16")``, the path a user's real checkpoint takes.
The weights are random, so only speed and memory mean anything. The tokenizer is a small
byte-level BPE trained here (the real one cannot be downloaded); documents are made of its
tokens until each is ``--doc-tokens`` long.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

# Qwen2-VL-2B-Instruct's published configuration (the backbone of jina-reranker-m0)
TEXT = {
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
    "vocab_size": 151936,
    "tie_word_embeddings": False,
}
VISION = {
    "depth": 32,
    "embed_dim": 1280,
    "hidden_size": 1536,
    "num_heads": 16,
    "mlp_ratio": 4,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
}


def build(folder: Path) -> None:
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLImageProcessor

    from omniretrieve.models.vlm_reranker import MAX_PIXELS, MIN_PIXELS, ranking_model_class
    from tests.builders.tiny_m0 import VISION_TOKENS
    from tests.builders.tiny_qwen2 import train_tokenizer

    tokenizer = train_tokenizer(VISION_TOKENS, vocab_size=4000)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS).save_pretrained(folder)
    start, pad, end, video = tokenizer.convert_tokens_to_ids(VISION_TOKENS)
    config = Qwen2VLConfig(
        text_config=TEXT,
        vision_config=VISION,
        vision_start_token_id=start,
        image_token_id=pad,
        vision_end_token_id=end,
        video_token_id=video,
        tie_word_embeddings=False,
        architectures=["JinaVLForRanking"],
    )
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = ranking_model_class()(config).to(torch.bfloat16).eval()
    parameters = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    del model
    (folder / "parameters.json").write_text(json.dumps({"parameters": parameters}))


def documents(tokenizer, count: int, tokens: int) -> list[str]:
    import random

    rng = random.Random(0)
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 2] or ["data"]
    made = []
    for _ in range(count):
        text = " ".join(rng.choice(words) for _ in range(tokens))
        ids = tokenizer(text)["input_ids"][:tokens]
        made.append(tokenizer.decode(ids))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--doc-tokens", type=int, default=1000)
    parser.add_argument("--budgets", default="4096,16384,65536")
    parser.add_argument("--images", type=int, default=32)
    args = parser.parse_args()
    import torch
    from PIL import Image

    from omniretrieve import Reranker

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "jina-reranker-m0-random"
        folder.mkdir()
        started = time.perf_counter()
        build(folder)
        parameters = json.loads((folder / "parameters.json").read_text())["parameters"]
        print(f"built {parameters / 1e9:.2f}B parameters in {time.perf_counter() - started:.0f} s")
        rows = []
        for budget in [int(b) for b in args.budgets.split(",")]:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            reranker = Reranker(
                folder,
                device=args.device,
                dtype="bfloat16",
                token_budget=budget,
                max_batch_size=256,
            )
            tokenizer = reranker.model.tokenizer
            texts = documents(tokenizer, args.pairs, args.doc_tokens)
            query = "small language model data extraction"
            reranker.rerank(query, texts[:8], return_documents=False)  # warm-up
            torch.cuda.synchronize()
            started = time.perf_counter()
            response = reranker.rerank(query, texts, return_documents=False)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            tokens = response.total_tokens
            rows.append(
                {
                    "kind": "text",
                    "token_budget": budget,
                    "pairs": len(texts),
                    "tokens_per_pair": tokens / len(texts),
                    "pairs_per_s": len(texts) / seconds,
                    "tokens_per_s": tokens / seconds,
                    "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
                }
            )
            print(json.dumps(rows[-1]))
            del reranker
        # text -> page image: a 1700x2200 page (about 768 visual tokens after resizing)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        reranker = Reranker(
            folder, device=args.device, dtype="bfloat16", token_budget=65536, max_batch_size=256
        )
        import base64
        import io

        pages = []
        for i in range(args.images):
            buffer = io.BytesIO()
            Image.new("RGB", (1700, 2200), (255 - i, 250, 245)).save(buffer, format="PNG")
            pages.append({"image": base64.b64encode(buffer.getvalue()).decode()})
        reranker.rerank("tax rates 2021", pages[:2], return_documents=False)
        torch.cuda.synchronize()
        started = time.perf_counter()
        response = reranker.rerank("tax rates 2021", pages, return_documents=False)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        rows.append(
            {
                "kind": "page image",
                "pairs": len(pages),
                "tokens_per_pair": response.total_tokens / len(pages),
                "pairs_per_s": len(pages) / seconds,
                "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
            }
        )
        print(json.dumps(rows[-1]))
        print(
            json.dumps(
                {
                    "device": torch.cuda.get_device_name(0),
                    "torch": torch.__version__,
                    "parameters": parameters,
                    "rows": rows,
                }
            )
        )


if __name__ == "__main__":
    main()
