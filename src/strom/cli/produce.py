"""`strom produce`: send each line of stdin or a file as one record."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from confluent_kafka import KafkaError, Message, Producer

from strom.cli.common import (
    DEFAULT_BOOTSTRAP,
    Bootstrap,
    Properties,
    client_config,
    cluster_metadata,
    describe_error,
    fail,
    parse_pairs,
    progress,
    setup_logging,
    summary,
)


class Acks(StrEnum):
    """--acks choices."""

    all = "all"
    one = "1"
    zero = "0"


class Codec(StrEnum):
    """--compression choices."""

    none = "none"
    gzip = "gzip"
    snappy = "snappy"
    lz4 = "lz4"
    zstd = "zstd"


@dataclass
class Deliveries:
    """Counts what the broker acknowledged and keeps the first few failures."""

    ok: int = 0
    bytes: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.ok += 1
            self.bytes += len(msg.key() or b"") + len(msg.value() or b"")
        else:
            self.failed += 1
            text = describe_error(err)
            self.errors[text] = self.errors.get(text, 0) + 1


def split_line(line: bytes, separator: bytes | None) -> tuple[bytes | None, bytes]:
    """(key, value) of one input line; the key is None without a separator in the line."""
    if separator is None:
        return None, line
    key, sep, value = line.partition(separator)
    return (key, value) if sep else (None, line)


def strip_eol(line: bytes) -> bytes:
    """`line` without its line ending (\\n or \\r\\n)."""
    if line.endswith(b"\n"):
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line


def _send(producer: Producer, topic: str, key: bytes | None, value: bytes, **kw: object) -> None:
    while True:
        try:
            producer.produce(topic, value, key, **kw)
            return
        except BufferError:  # the local queue is full: let deliveries drain it
            producer.poll(0.05)


def produce(
    topic: Annotated[str, typer.Argument(help="The topic to write to.", show_default=False)],
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read lines from this file ('-' or none: stdin)."),
    ] = None,
    key_separator: Annotated[
        str | None,
        typer.Option(
            "--key-separator",
            "-K",
            help="Split each line at the first SEP into key and value (no SEP: null key).",
        ),
    ] = None,
    partition: Annotated[
        int | None, typer.Option("--partition", "-p", help="Write every record to this partition.")
    ] = None,
    acks: Annotated[Acks, typer.Option("--acks", help="Acknowledgements to wait for.")] = Acks.all,
    compression: Annotated[
        Codec, typer.Option("--compression", "-z", help="Batch compression.")
    ] = Codec.none,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="A header k=v added to every record (repeatable)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr.")] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """Write each line as one record, then print a summary; exit 1 if any record failed."""
    setup_logging()
    if file is not None and str(file) == "-":
        file = None
    interactive = file is None and sys.stdin.isatty()
    headers = [(k, v.encode()) for k, v in parse_pairs(header, "--header").items()]
    separator = key_separator.encode() if key_separator else None
    config = client_config(
        bootstrap,
        properties,
        acks=acks.value,
        **{"compression.type": compression.value, "linger.ms": 5, "message.timeout.ms": 30000},
    )
    producer = Producer(config)
    meta = cluster_metadata(producer, bootstrap, topic).topics.get(topic)
    if meta is None or meta.error is not None:
        reason = describe_error(meta.error) if meta is not None else "not in metadata"
        fail(f"cannot produce to {topic!r}: {reason}")
    if partition is not None and partition not in meta.partitions:
        fail(f"topic {topic!r} has no partition {partition} (it has {len(meta.partitions)})")
    extra: dict[str, object] = {"headers": headers} if headers else {}
    if partition is not None:
        extra["partition"] = partition
    try:
        source = open(file, "rb") if file is not None else sys.stdin.buffer  # noqa: SIM115
    except OSError as e:
        fail(f"cannot read {file}: {e.strerror}")
    if interactive and not quiet:
        typer.echo(f"strom: one record per line to {topic}; end with Ctrl-D", err=True)
    done = Deliveries()
    sent = read = 0
    start = time.monotonic()
    size = file.stat().st_size if file is not None and file.is_file() else None
    show = sys.stderr.isatty() and not quiet and not interactive
    with source, progress(show, bar=size is not None) as bar:
        task = bar.add_task("producing", total=size) if bar else None
        try:
            for line in source:
                key, value = split_line(strip_eol(line), separator)
                _send(producer, topic, key, value, on_delivery=done, **extra)
                sent += 1
                read += len(line)
                if sent % 1000 == 0 or interactive:  # serve delivery reports
                    producer.poll(0)
                    if bar:
                        status = f"sent {sent}, acknowledged {done.ok}"
                        bar.update(task, description=status, completed=read)
        except KeyboardInterrupt:
            typer.echo("strom: interrupted; waiting for records already sent", err=True)
        while producer.flush(0.5) > 0:
            if bar:
                bar.update(task, description=f"sent {sent}, acknowledged {done.ok}")
    elapsed = time.monotonic() - start
    if not quiet:
        typer.echo(summary("produced", done.ok, done.bytes, elapsed), err=True)
    if done.failed:
        for text, count in done.errors.items():
            typer.echo(f"strom: error: {count} record(s) failed: {text}", err=True)
        raise typer.Exit(1)
