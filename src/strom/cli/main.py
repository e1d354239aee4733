"""Entry point of the `strom` command: sub-commands are registered here.

`strom serve` is dispatched before anything else is imported: the broker needs neither typer,
rich nor confluent-kafka, and its start-up time is what a user waits for.
"""

from __future__ import annotations

import gc
import sys


def _app():  # noqa: ANN202 - a typer.Typer, built only for the client commands
    import typer

    from strom import __version__
    from strom.cli.consume import consume
    from strom.cli.groups import app as groups_app
    from strom.cli.produce import produce
    from strom.cli.registry import registry
    from strom.cli.schemas import app as schemas_app
    from strom.cli.topics import app as topics_app
    from strom.cli.transactions import app as transactions_app

    app = typer.Typer(
        help="Strom: a Kafka-compatible event streaming platform.", no_args_is_help=True
    )

    @app.command()
    def version() -> None:
        """Print Strom's version."""
        typer.echo(__version__)

    @app.command("serve", add_help_option=False)
    def serve_command() -> None:
        """Start a single-node broker (no ZooKeeper needed); see `strom serve --help`."""

    app.add_typer(topics_app, name="topics")
    app.add_typer(groups_app, name="groups")
    app.add_typer(transactions_app, name="transactions")
    app.add_typer(schemas_app, name="schemas")
    app.command()(produce)
    app.command()(consume)
    app.command()(registry)
    return app


def main(argv: list[str] | None = None) -> int | None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        # Start-up makes many objects that live as long as the broker: no collection passes
        # over them while importing (serve's run_broker freezes them and turns it back on).
        gc.disable()
        from strom.cli.serve import main as serve_main

        return serve_main(args[1:])
    return _app()(args=args, prog_name="strom")


if __name__ == "__main__":
    sys.exit(main())
