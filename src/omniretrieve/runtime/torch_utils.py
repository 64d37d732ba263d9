"""Small torch helpers shared by the transformer families (imported only when a model loads)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omniretrieve.errors import InputError, UnsupportedModelError


def torch_dtype(name: str, device: str) -> Any:
    """The torch dtype for a dtype name; ``auto`` is float32 on CPU and float16 on GPU."""
    import torch

    if name == "auto":
        return torch.float32 if device == "cpu" else torch.float16
    mapping = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in mapping:
        raise InputError(f"dtype must be one of auto, {', '.join(mapping)}; got {name!r}")
    return mapping[name]


def check_device(device: str) -> str:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was asked for, but torch sees no CUDA device")
    return device


@contextmanager
def quiet_weight_loading() -> Iterator[None]:
    """Hide transformers' per-tensor "Loading weights" bar (local loads are quick) and its
    load report (the families check what is missing themselves; a language-model head that an
    embedder does not use is expected to be left over)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_pretrained(
    model_class: Any,
    path: Any,
    device: str,
    dtype: str,
    *,
    require_all: bool = False,
    **kwargs: Any,
) -> Any:
    """A transformers model from a checkpoint folder, on ``device`` in ``dtype``, in eval mode
    with gradients off, never running the checkpoint's own code. Tensors the model has and the
    checkpoint lacks are refused with ``require_all`` (a head the family depends on), else
    logged."""

    device = check_device(device)
    with quiet_weight_loading():
        model, loading = model_class.from_pretrained(
            path,
            dtype=torch_dtype(dtype, device),
            trust_remote_code=False,
            output_loading_info=True,
            **kwargs,
        )
    # the pooler head of BERT-like models is built by AutoModel but no embedder reads it
    missing = sorted(k for k in loading["missing_keys"] if not k.startswith("pooler."))
    if missing:
        listed = f"{', '.join(missing[:4])}{'...' if len(missing) > 4 else ''}"
        if require_all:
            raise UnsupportedModelError(f"{path}: tensors missing from the checkpoint ({listed})")
        logging.getLogger("omniretrieve.models").warning(
            "%s: tensors missing from the checkpoint, left at their initial values: %s",
            path,
            listed,
        )
    model.to(device).eval()
    return model
