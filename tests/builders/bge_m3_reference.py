"""A reference for BGE-M3's outputs and scores, written from FlagEmbedding's ``BGEM3FlagModel``
(its ``encode``, ``_process_token_weights``, ``_process_colbert_vecs``,
``compute_lexical_matching_score`` and ``colbert_score``), one text at a time, for the tiny
checkpoint of :mod:`tests.builders.tiny_bge_m3` (hidden size 32)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch


def flag_reference(path: Path, text: str) -> tuple[np.ndarray, dict[int, float], np.ndarray]:
    """BGEM3FlagModel.encode for one text: (dense, lexical weights, colbert vectors)."""
    from transformers import AutoTokenizer, XLMRobertaModel

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = XLMRobertaModel.from_pretrained(path, add_pooling_layer=False).eval()
    sparse_linear = torch.nn.Linear(32, 1)
    sparse_linear.load_state_dict(torch.load(path / "sparse_linear.pt"))
    colbert_linear = torch.nn.Linear(32, 32)
    colbert_linear.load_state_dict(torch.load(path / "colbert_linear.pt"))
    inputs = tokenizer([text], padding=True, truncation=True, return_tensors="pt", max_length=8192)
    with torch.no_grad():
        last_hidden_state = model(**inputs, return_dict=True).last_hidden_state
        dense_vecs = torch.nn.functional.normalize(last_hidden_state[:, 0], dim=-1)
        token_weights = torch.relu(sparse_linear(last_hidden_state)).squeeze(-1)
        colbert_vecs = colbert_linear(last_hidden_state[:, 1:])
        colbert_vecs = colbert_vecs * inputs["attention_mask"][:, 1:][:, :, None].float()
        colbert_vecs = torch.nn.functional.normalize(colbert_vecs, dim=-1)
    unused_tokens = {
        tokenizer.cls_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        tokenizer.unk_token_id,
    }
    result: dict[int, float] = defaultdict(int)
    for w, idx in zip(token_weights[0].tolist(), inputs["input_ids"][0].tolist(), strict=True):
        if idx not in unused_tokens and w > 0 and w > result[idx]:
            result[idx] = w
    tokens_num = int(inputs["attention_mask"][0].sum())
    return dense_vecs[0].numpy(), dict(result), colbert_vecs[0][: tokens_num - 1].numpy()


def flag_lexical(query: dict[int, float], document: dict[int, float]) -> float:
    return sum(weight * document[token] for token, weight in query.items() if token in document)


def flag_colbert(query: np.ndarray, document: np.ndarray) -> float:
    q_reps, p_reps = torch.from_numpy(query), torch.from_numpy(document)
    token_scores = torch.einsum("in,jn->ij", q_reps, p_reps)
    scores, _ = token_scores.max(-1)
    return float(torch.sum(scores) / q_reps.size(0))
