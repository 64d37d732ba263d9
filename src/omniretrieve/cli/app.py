"""The typer application and its sub-command groups (commands register themselves)."""

from __future__ import annotations

import logging

import typer

from omniretrieve import __version__

app = typer.Typer(
    name="omniretrieve",
    help="Self-hosted embeddings, reranking, search and retrieval evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List local models or pull one from the hub.", no_args_is_help=False)
app.add_typer(models_app, name="models")
collections_app = typer.Typer(
    help="List, show, tune, repair or drop collections.", no_args_is_help=False
)
app.add_typer(collections_app, name="collections")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"omniretrieve {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """omniretrieve: embeddings, reranking and retrieval evaluation, offline by default."""
    # pymilvus logs each failed call with a traceback before raising; the CLI says the
    # error it becomes in one line (a damaged Milvus store: which collection, what to do).
    # Filters: pymilvus resets its loggers' levels (not their filters) when it is imported.
    for name in ("pymilvus.decorators", "pymilvus.client.iterator.query_iterator"):
        logging.getLogger(name).addFilter(lambda record: False)
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)  # a manifest it fell back from
    logging.getLogger("grpc").setLevel(logging.CRITICAL)  # Lite's in-process server, likewise
