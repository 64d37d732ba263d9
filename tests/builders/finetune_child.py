"""A fine-tuning run in a child process that dies (``os._exit``, as a kill would leave it)
right after its first checkpoint is written, when asked to (crash tests)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from transformers import TrainerCallback

from omniretrieve.training.data_sources import from_beir
from omniretrieve.training.finetune import finetune
from omniretrieve.training.mining import MiningSettings
from omniretrieve.training.settings import TrainSettings


class DieAfterFirstSave(TrainerCallback):  # type: ignore[misc]
    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        sys.stdout.write(f"saved checkpoint-{state.global_step}\n")
        sys.stdout.flush()
        os._exit(9)


def main() -> None:
    base, dataset, out, crash = sys.argv[1:5]
    settings = TrainSettings(
        epochs=2, batch_size=4, learning_rate=1e-3, precision="fp32", keep_rejected=True
    )
    finetune(
        Path(base),
        from_beir(Path(dataset), "train"),
        Path(out),
        mining=MiningSettings(method="bm25"),
        settings=settings,
        callbacks=(DieAfterFirstSave(),) if crash == "crash" else (),
    )


if __name__ == "__main__":
    main()
