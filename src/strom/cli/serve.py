"""`strom serve`: run a single-node broker until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import typer

from strom.broker.broker import Broker
from strom.broker.config import BrokerConfig, read_properties_file
from strom.protocol.errors import KafkaError


def parse_hostport(text: str, default_port: int = 9092) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    try:
        return host.strip("[]") or "0.0.0.0", int(port)
    except ValueError:
        raise typer.BadParameter(f"expected HOST:PORT, got {text!r}") from None


def listener_address(listeners: str | None) -> str | None:
    """HOST:PORT of the first entry of a Kafka listeners setting (`PLAINTEXT://host:port,...`)."""
    if not listeners:
        return None
    first = listeners.split(",")[0].strip()
    return first.split("://", 1)[-1] or None


async def run_broker(broker: Broker, ready: asyncio.Event | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await broker.start()
    host, port = broker.advertised or (broker.host, broker.bound_port)
    typer.echo(
        f"strom: broker {broker.node_id} listening on {broker.host}:{broker.bound_port}"
        f" (advertised {host}:{port}), data in {broker.data_dir}",
        err=True,
    )
    if ready is not None:
        ready.set()
    await stop.wait()
    typer.echo("strom: shutting down", err=True)
    await broker.stop()


def serve(
    data_dir: Path = typer.Option(Path("./strom-data"), "--data-dir", help="Where logs live."),
    listen: str | None = typer.Option(
        None, "--listen", help="HOST:PORT to listen on (default: `listeners`, or 127.0.0.1:9092)."
    ),
    advertised: str | None = typer.Option(
        None,
        "--advertised",
        help="HOST:PORT clients are told to use (default: `advertised.listeners`, or --listen).",
    ),
    config: Path | None = typer.Option(
        None, "--config", help="A properties file with Kafka broker settings."
    ),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Start a single-node broker (no ZooKeeper needed)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        props = read_properties_file(str(config)) if config else {}
        cfg = BrokerConfig.from_props(props)
    except (OSError, KafkaError) as e:
        typer.echo(f"strom: bad configuration: {e}", err=True)
        raise typer.Exit(2) from None
    listen = listen or listener_address(cfg.given.get("listeners")) or "127.0.0.1:9092"
    advertised = advertised or listener_address(cfg.given.get("advertised.listeners"))
    host, port = parse_hostport(listen)
    adv = parse_hostport(advertised) if advertised else None
    try:
        broker = Broker(cfg, str(data_dir), host, port, adv)
    except KafkaError as e:
        typer.echo(f"strom: cannot open {data_dir}: {e}", err=True)
        raise typer.Exit(1) from None
    try:
        asyncio.run(run_broker(broker))
    except OSError as e:  # the address is taken, or not ours to bind
        typer.echo(f"strom: cannot listen on {host}:{port}: {e.strerror or e}", err=True)
        broker.logs.close()
        raise typer.Exit(1) from None
