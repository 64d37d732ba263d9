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
    help="List collections (with no command); show one, list or delete its documents, tune, "
    "repair or drop it.",
    no_args_is_help=False,
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


def unwrap(text: str) -> str:
    """A docstring as one line per paragraph, so that help wraps at the terminal's width
    instead of where the source was wrapped."""
    import inspect

    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def tidy_help(application: typer.Typer) -> None:
    """Every command's and group's help from its docstring, unwrapped (see :func:`unwrap`)."""
    for command in application.registered_commands:
        if command.help is None and command.callback is not None and command.callback.__doc__:
            command.help = unwrap(command.callback.__doc__)
    for group in application.registered_groups:
        info = group.typer_instance.info if group.typer_instance else None
        if info is not None and isinstance(info.help, str):
            info.help = unwrap(info.help)
        if group.typer_instance is not None:
            tidy_help(group.typer_instance)
    callback = application.registered_callback
    if callback is not None and callback.callback is not None and callback.callback.__doc__:
        if callback.help is None:
            callback.help = unwrap(callback.callback.__doc__)
