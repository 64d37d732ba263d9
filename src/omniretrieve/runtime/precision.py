"""Which numeric precision a model runs in, and what ``dtype="auto"`` means on this machine.

The precisions, measured on MiniLM over SciFact passages (2 threads, AMD EPYC with AVX-512
BF16 and VNNI; ``benchmarks/dtype_speed.py``): ``bfloat16`` through torch (oneDNN's native bf16
matrix products) is the fastest and keeps mean cosine 0.99995 to float32; ``int8`` (onnxruntime,
dynamic per-channel quantisation) is slower than bf16 and further from float32. So ``auto`` is
``bfloat16`` for the families that allow it when the CPU has native bf16 instructions, float32
otherwise; ``float16`` on a GPU. float32 stays available and exact.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""CPU flags (``/proc/cpuinfo``) under which oneDNN runs bf16 products natively; without them
bf16 is emulated and slower than float32."""


CPU_BF16_ENV = "OMNIRETRIEVE_CPU_BF16"
"""``0``: treat the CPU as having no native bf16 (``auto`` is float32 everywhere: the same
numbers on every machine, as the test suite runs); ``1``: as having it; unset: read the
CPU's flags."""


@cache
def native_bfloat16() -> bool:
    """Whether this machine's CPU computes bf16 matrix products natively (or
    ``$OMNIRETRIEVE_CPU_BF16`` says what to assume)."""
    forced = os.environ.get(CPU_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(NATIVE_BF16_FLAGS & set(line.split(":", 1)[-1].split()))
    return False


def resolve_dtype(requested: str, device: str, *, fast_cpu: bool = False) -> str:
    """The precision a model actually runs in for ``requested`` on ``device``.

    ``auto`` is float16 on a GPU; on a CPU it is bfloat16 when ``fast_cpu`` (the family's
    recorded quality check allows it) and the CPU has native bf16, else float32."""
    if requested != "auto":
        return requested
    if device != "cpu":
        return "float16"
    return "bfloat16" if fast_cpu and native_bfloat16() else "float32"
