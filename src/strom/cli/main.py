"""Entry point of the `strom` command: sub-commands are registered here."""

from __future__ import annotations

import typer

from strom import __version__

app = typer.Typer(help="Strom: a Kafka-compatible event streaming platform.", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print Strom's version."""
    typer.echo(__version__)


@app.command()
def serve() -> None:
    """Start a single-node broker (arrives with the single-node broker issue)."""
    typer.echo("strom serve: the broker is not built yet (see issue 4)", err=True)
    raise typer.Exit(code=2)


def main() -> None:
    app()
