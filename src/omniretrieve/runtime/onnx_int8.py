"""The int8 CPU path of BERT-like encoders: the transformers model exported to ONNX once,
quantised dynamically to int8 (per output channel: per-tensor scales lose too much on MiniLM,
mean cosine 0.937 to float32 against 0.995), cached by the model's fingerprint and run by
onnxruntime. Imported only when ``dtype="int8"`` is asked for."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from omniretrieve.errors import ModelUnavailableError

FORMAT = 1
"""Bump when the export or the quantisation settings change, so old artefacts are not used."""


def int8_artefact(load_float_model: Callable[[], Any], fingerprint: str, cache_root: Path) -> Path:
    """The quantised ONNX file of a float32 transformers encoder (``load_float_model`` loads it,
    called only when the file is not built yet), kept under ``cache_root`` by the weights'
    ``fingerprint``; written to a temporary name and renamed, so an interrupted build leaves
    nothing half-written."""
    target = cache_root / "models" / "onnx-int8" / f"{fingerprint}-v{FORMAT}.onnx"
    if target.is_file():
        return target
    model = load_float_model()
    try:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise ModelUnavailableError(f"dtype int8 needs onnx and onnxruntime ({exc})") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as staging:
        exported = Path(staging) / "model.onnx"
        quantised = Path(staging) / "model.int8.onnx"
        example = torch.ones((1, 8), dtype=torch.long)
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _hidden_states_module(model),
                (example, example),
                str(exported),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "last_hidden_state": {0: "batch", 1: "tokens"},
                },
                opset_version=17,
                dynamo=False,
            )
            quantize_dynamic(
                str(exported), str(quantised), weight_type=QuantType.QInt8, per_channel=True
            )
        os.replace(quantised, target)
    return target


def _hidden_states_module(model: Any) -> Any:
    """``model(input_ids, attention_mask)``'s last hidden state as a module with positional
    inputs (what the exporter traces)."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]

    return HiddenStates()


class OnnxEncoder:
    """Called like a transformers encoder (``input_ids``, ``attention_mask`` tensors), it runs
    the int8 graph and returns an object with ``last_hidden_state``."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, *, input_ids: Any, attention_mask: Any) -> SimpleNamespace:
        import torch

        (hidden,) = self.session.run(
            None,
            {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()},
        )
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden))
