"""A training run killed in the middle resumes from its last checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.builders.tiny_bert import build_tiny_bert
from tests.builders.training_data import tiny_beir

ROOT = Path(__file__).resolve().parents[2]


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.builders.finetune_child", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_killed_training_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    base = str(build_tiny_bert(tmp_path / "base", max_seq_length=32))
    dataset = str(tiny_beir(tmp_path / "data"))
    out = tmp_path / "tuned"
    crashed = _run(base, dataset, str(out), "crash")
    assert crashed.returncode == 9, crashed.stderr[-2000:]
    step = int(crashed.stdout.strip().rsplit("-", 1)[-1])
    assert (out / ".training" / f"checkpoint-{step}").is_dir()
    assert not (out / "model.safetensors").exists()  # nothing half-written in its place

    finished = _run(base, dataset, str(out), "finish")
    assert finished.returncode == 0, finished.stderr[-2000:]
    held = json.loads((out / "training.json").read_text())["held_out"]
    assert held["resumed_from"].endswith(f"checkpoint-{step}")
    steps = [e["step"] for e in held["log"] if "loss" in e]
    assert steps == sorted(set(steps))  # each step once: those before the crash not rerun
    assert held["steps"] > step and (out / "model.safetensors").is_file()
