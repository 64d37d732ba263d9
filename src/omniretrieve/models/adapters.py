"""LoRA adapters (peft's directory layout) merged into a loaded model's weights.

``finetune`` writes an adapter for the decoder and VLM families; any peft LoRA adapter trained
elsewhere on a checkpoint omniretrieve serves loads the same way. The adapter is merged into
the weights once at load, so serving it costs what serving its base costs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omniretrieve.errors import UnsupportedModelError


def merge_adapter(loaded: Any, adapter: Path) -> None:
    """Merge ``adapter`` into ``loaded.model`` (the family's torch module), in place."""
    try:
        from peft import PeftModel
    except ImportError as exc:  # the train extra
        raise UnsupportedModelError(
            f"{adapter} is a LoRA adapter: loading it needs peft "
            "(pip install 'omniretrieve[train]')"
        ) from exc
    module = getattr(loaded, "model", None)
    if module is None:
        raise UnsupportedModelError(f"{adapter}: its base model's family takes no adapter")
    dtype = next(module.parameters()).dtype
    merged = PeftModel.from_pretrained(module, str(adapter)).merge_and_unload()
    loaded.model = merged.to(dtype).eval()
