"""The ``omniretrieve`` command line: embed, rerank, models, index, search, eval, serve, demo.

Results are JSON (or JSON lines with ``--jsonl``) on stdout; progress bars and notes go to
stderr; a problem is one ``error: ...`` line on stderr and a non-zero exit (2 for bad input,
1 for anything else), never a traceback.
"""

from __future__ import annotations

from omniretrieve.cli import (  # noqa: F401 (each module registers its commands)
    collection_commands,
    eval_command,
    finetune_command,
    index_command,
    model_commands,
    serve_command,
)
from omniretrieve.cli.app import app, tidy_help

tidy_help(app)


def main() -> None:
    app()


__all__ = ["app", "main"]
