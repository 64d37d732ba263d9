"""Pooling token states into one vector per row (torch tensors in, torch tensors out).

Every family that pools hidden states uses these: mean, CLS, max and last-token pooling over an
attention mask, and L2 normalisation. Torch is imported by the callers' load path, so these
functions take and return tensors without importing it at module level.
"""

from __future__ import annotations

from typing import Any

POOLING_MODES: tuple[str, ...] = ("mean", "cls", "max", "last")


def pool(hidden: Any, mask: Any, mode: str) -> Any:
    """``(batch, tokens, dim)`` states and a ``(batch, tokens)`` mask -> ``(batch, dim)``."""
    import torch

    if mode == "cls":
        return hidden[:, 0]
    if mode == "last":
        return last_token(hidden, mask)
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    if mode != "mean":
        raise ValueError(f"pooling mode must be one of {', '.join(POOLING_MODES)}; got {mode!r}")
    summed = (hidden * weights).sum(dim=1)
    return summed / weights.sum(dim=1).clamp(min=1e-9)


def last_token(hidden: Any, mask: Any) -> Any:
    """Each row's hidden state at its last real token (the last column when every row ends
    there, as with left padding)."""
    import torch

    if bool(mask[:, -1].all()):
        return hidden[:, -1]
    last = mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def normalized(vectors: Any) -> Any:
    """Rows scaled to unit L2 length, in float32."""
    import torch

    return torch.nn.functional.normalize(vectors.float(), dim=-1)
