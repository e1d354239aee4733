"""`strom registry`: run the schema registry alone, against any Kafka cluster."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Annotated

import typer

from strom.cli.common import Bootstrap, fail


def _exit_with(pid: int) -> None:
    """Stop (as SIGTERM would) once process `pid` is gone: `strom serve` starts the registry
    so, and a registry must not outlive its broker even when that one is killed."""

    def watch() -> None:
        while True:
            time.sleep(1)
            if os.getppid() != pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def registry(
    bootstrap: Bootstrap = "127.0.0.1:9092",
    listen: Annotated[
        str, typer.Option(help="HOST:PORT to serve the REST API on.")
    ] = "127.0.0.1:8081",
    topic: Annotated[str, typer.Option(help="The topic schemas are kept in.")] = "_schemas",
    advertised_url: Annotated[
        str | None,
        typer.Option(help="How other registry processes reach this one (default http://LISTEN)."),
    ] = None,
    group: Annotated[
        str, typer.Option(help="The consumer group whose member holding the topic is primary.")
    ] = "schema-registry",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    exit_with: Annotated[int, typer.Option(hidden=True)] = 0,
) -> None:
    """Serve the schema registry (Confluent's REST API), keeping schemas in a Kafka topic."""
    from strom.cli.serve import parse_hostport
    from strom.registry.errors import RegistryError
    from strom.registry.server import serve

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        host, port = parse_hostport(listen, 8081)
    except ValueError as e:
        fail(str(e), 2)
    if exit_with:
        _exit_with(exit_with)
    try:
        serve(bootstrap, host, port, topic, advertised_url, group)
    except RegistryError as e:
        fail(f"registry: {e.message}", 1)
