"""Entry point of the `strom` command: sub-commands are registered here."""

from __future__ import annotations

import typer

from strom import __version__
from strom.cli.consume import consume
from strom.cli.groups import app as groups_app
from strom.cli.produce import produce
from strom.cli.topics import app as topics_app

app = typer.Typer(help="Strom: a Kafka-compatible event streaming platform.", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print Strom's version."""
    typer.echo(__version__)


@app.command(
    "serve",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def serve_command(ctx: typer.Context) -> None:
    """Start a single-node broker (no ZooKeeper needed); see `strom serve --help`."""
    # Imported here so the client commands do not pay for loading the broker (~0.6 s).
    from strom.cli.serve import serve

    inner = typer.Typer(add_completion=False)
    inner.command()(serve)
    inner(args=ctx.args, prog_name="strom serve")


app.add_typer(topics_app, name="topics")
app.add_typer(groups_app, name="groups")
app.command()(produce)
app.command()(consume)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
