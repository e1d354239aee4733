"""`strom serve`: run a single-node broker until SIGINT or SIGTERM (argparse: no typer here)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from strom.broker.broker import Broker
from strom.broker.config import BrokerConfig, read_properties_file
from strom.protocol.errors import KafkaError

SWITCH_INTERVAL_S = 0.001


def parse_hostport(text: str, default_port: int = 9092) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    try:
        return host.strip("[]") or "0.0.0.0", int(port)
    except ValueError:
        raise ValueError(f"expected HOST:PORT, got {text!r}") from None


def listener_address(listeners: str | None) -> str | None:
    """HOST:PORT of the first entry of a Kafka listeners setting (`PLAINTEXT://host:port,...`)."""
    if not listeners:
        return None
    first = listeners.split(",")[0].strip()
    return first.split("://", 1)[-1] or None


def start_registry(listen: str, bootstrap: str) -> subprocess.Popen | None:
    """The schema registry, in a process of its own (its HTTP work and imports never take the
    broker's interpreter); it exits when this process does."""
    if listen == "off":
        return None
    args = [sys.executable, "-m", "strom.cli.main", "registry", "--bootstrap", bootstrap]
    args += ["--listen", listen, "--exit-with", str(os.getpid())]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL)


def stop_registry(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def run_broker(
    broker: Broker, ready: asyncio.Event | None = None, registry_listen: str = "off"
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await broker.start()
    # what start-up made lives as long as the broker: out of the collector's way, then
    # collection on again (strom.cli.main turned it off before the imports)
    gc.freeze()
    gc.enable()
    host, port = broker.advertised or (broker.host, broker.bound_port)
    print(
        f"strom: broker {broker.node_id} listening on {broker.host}:{broker.bound_port}"
        f" (advertised {host}:{port}), data in {broker.data_dir}",
        file=sys.stderr,
    )
    registry = start_registry(registry_listen, f"{host}:{port}")
    if registry is not None:
        print(f"strom: schema registry at http://{registry_listen}", file=sys.stderr)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        print("strom: shutting down", file=sys.stderr)
        # the broker keeps serving while the registry stops: it leaves its group on the way
        await asyncio.to_thread(stop_registry, registry)
        await broker.stop()


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="strom serve", description="Start a single-node broker (no ZooKeeper needed)."
    )
    ap.add_argument("--data-dir", type=Path, default=Path("./strom-data"), help="Where logs live.")
    ap.add_argument(
        "--listen",
        help="HOST:PORT to listen on (default: `listeners`, or 127.0.0.1:9092).",
    )
    ap.add_argument(
        "--advertised",
        help="HOST:PORT clients are told to use (default: `advertised.listeners`, or --listen).",
    )
    ap.add_argument("--config", type=Path, help="A properties file with Kafka broker settings.")
    ap.add_argument(
        "--registry-listen",
        default="127.0.0.1:8081",
        help="HOST:PORT of the schema registry (default 127.0.0.1:8081), or `off`.",
    )
    ap.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="DEBUG, INFO, WARNING or ERROR.",
    )
    return ap


def _fail(message: str, code: int) -> int:
    print(f"strom: {message}", file=sys.stderr)
    return code


def main(argv: list[str]) -> int:
    """`strom serve [options]`: run until SIGINT or SIGTERM; the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        props = read_properties_file(str(args.config)) if args.config else {}
        cfg = BrokerConfig.from_props(props)
        listen = args.listen or listener_address(cfg.given.get("listeners")) or "127.0.0.1:9092"
        advertised = args.advertised or listener_address(cfg.given.get("advertised.listeners"))
        host, port = parse_hostport(listen)
        adv = parse_hostport(advertised) if advertised else None
        if args.registry_listen != "off":
            parse_hostport(args.registry_listen, 8081)
    except (OSError, KafkaError, ValueError) as e:
        return _fail(f"bad configuration: {e}", 2)
    try:
        broker = Broker(cfg, str(args.data_dir), host, port, adv)
    except KafkaError as e:
        return _fail(f"cannot open {args.data_dir}: {e}", 1)
    # Disk work (compaction, recovery) runs in worker threads; a short GIL switch interval
    # lets the event loop take the interpreter back within ~1 ms instead of 5 ms each time it
    # wakes, so connections stay responsive while a thread grinds through a log.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        asyncio.run(run_broker(broker, registry_listen=args.registry_listen))
    except OSError as e:  # the address is taken, or not ours to bind
        broker.logs.close()
        return _fail(f"cannot listen on {host}:{port}: {e.strerror or e}", 1)
    return 0
