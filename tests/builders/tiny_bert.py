"""A tiny random BERT sentence encoder saved in the sentence-transformers layout."""

from __future__ import annotations

import json
import string
from pathlib import Path

WORDS = (
    "the a of and to in is cat cats dog dogs eat fish bone bones market stock fell rose "
    "query passage search code image page aspirin heart attack tower paris"
).split()


def bert_tokenizer():
    """A WordPiece tokenizer over a small fixed vocabulary (words of the tests, letters)."""
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *string.ascii_lowercase]
    vocab += [f"##{c}" for c in string.ascii_lowercase] + list(string.digits + ".,?!")
    return BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)


def build_tiny_bert(
    target: Path,
    *,
    pooling: str = "mean",
    normalize: bool = True,
    max_seq_length: int = 16,
    architectures: tuple[str, ...] = ("BertModel",),
    prompts: dict[str, str] | None = None,
    seed: int = 0,
) -> Path:
    """Write config.json, model.safetensors, tokenizer files and ST modules to ``target``."""
    import torch
    from transformers import BertConfig, BertModel

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = bert_tokenizer()
    vocab = tokenizer.get_vocab()
    tokenizer.save_pretrained(target)

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        architectures=list(architectures),
    )
    BertModel(config).eval().save_pretrained(target)
    config_path = target / "config.json"
    saved = json.loads(config_path.read_text())
    saved["architectures"] = list(architectures)
    config_path.write_text(json.dumps(saved, indent=2))

    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    (target / "modules.json").write_text(json.dumps(modules, indent=2))
    (target / "1_Pooling").mkdir(exist_ok=True)
    (target / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 32,
                "pooling_mode_cls_token": pooling == "cls",
                "pooling_mode_mean_tokens": pooling == "mean",
                "pooling_mode_max_tokens": pooling == "max",
                "pooling_mode_lasttoken": pooling == "last",
            }
        )
    )
    (target / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False})
    )
    if prompts is not None:
        (target / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    return target


def write_qwen2_config(target: Path) -> Path:
    """A config-only directory of a decoder (no family for it yet): must not pass as BERT."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(
        json.dumps(
            {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 32}
        )
    )
    return target
