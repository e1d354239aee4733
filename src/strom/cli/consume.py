"""`strom consume`: print a topic's records, from a chosen position, in a chosen format."""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from datetime import datetime
from typing import Annotated, Any

import typer
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from strom.cli.common import (
    CONNECT_TIMEOUT,
    DEFAULT_BOOTSTRAP,
    Bootstrap,
    Formatter,
    Properties,
    client_config,
    cluster_metadata,
    describe_error,
    fail,
    kafka_errors,
    make_formatter,
    progress,
    setup_logging,
    summary,
)

log = logging.getLogger(__name__)
#: With --group and still no partitions after this many seconds, say so.
GROUP_WARN_AFTER = 5.0


def parse_timestamp(text: str) -> int:
    """Milliseconds since the epoch, or ISO 8601 (no zone means local time) -> ms."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected milliseconds or ISO 8601, got {text!r}", param_hint="--timestamp"
        ) from None
    return int(moment.astimezone().timestamp() * 1000)


def start_offsets(
    consumer: Consumer,
    topic: str,
    partitions: list[int],
    position: str,
    value: int | None,
) -> list[TopicPartition]:
    """Where to start reading each partition: beginning, end, an offset or a timestamp."""
    if position == "beginning":
        return [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
    if position == "end":
        return [TopicPartition(topic, p, OFFSET_END) for p in partitions]
    assert value is not None
    if position == "timestamp":
        wanted = [TopicPartition(topic, p, value) for p in partitions]
        with kafka_errors("cannot look up offsets by timestamp"):
            found = consumer.offsets_for_times(wanted, timeout=CONNECT_TIMEOUT)
        # No record at or after the timestamp: the broker answers -1, i.e. the end.
        return [TopicPartition(topic, tp.partition, tp.offset) for tp in found]
    if value >= 0:
        return [TopicPartition(topic, p, value) for p in partitions]
    out = []
    for p in partitions:  # negative: that many records before the end
        with kafka_errors(f"cannot read offsets of {topic}-{p}"):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=CONNECT_TIMEOUT
            )
        out.append(TopicPartition(topic, p, max(low, high + value)))
    return out


def _position(
    from_beginning: bool, from_end: bool, offset: int | None, timestamp: str | None
) -> tuple[str, int | None]:
    chosen = [
        ("beginning", None) if from_beginning else None,
        ("end", None) if from_end else None,
        ("offset", offset) if offset is not None else None,
        ("timestamp", parse_timestamp(timestamp)) if timestamp is not None else None,
    ]
    given = [c for c in chosen if c is not None]
    if len(given) > 1:
        fail("choose one of --from-beginning, --from-end, --offset and --timestamp", 2)
    return given[0] if given else ("default", None)


def _check_error(msg: Message) -> None:
    err: KafkaError = msg.error()
    if err.code() == KafkaError._PARTITION_EOF:
        return
    if err.fatal() or err.code() in (
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
    ):
        fail(f"cannot consume: {describe_error(err)}")
    log.warning("warning: %s", describe_error(err))


def consume(
    topic: Annotated[str, typer.Argument(help="The topic to read.", show_default=False)],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record.")
    ] = False,
    from_end: Annotated[
        bool, typer.Option("--from-end", help="Only new records (the default without --group).")
    ] = False,
    offset: Annotated[
        int | None,
        typer.Option("--offset", "-o", help="Start at this offset; negative: N before the end."),
    ] = None,
    timestamp: Annotated[
        str | None,
        typer.Option(
            "--timestamp",
            help="Start at the first record at/after this time: epoch ms or ISO 8601.",
        ),
    ] = None,
    partition: Annotated[
        int | None, typer.Option("--partition", "-p", help="Read only this partition.")
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            "-g",
            help="Join this consumer group and commit offsets (needs a broker with group"
            " support); without it partitions are assigned directly and nothing is committed.",
        ),
    ] = None,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", "-n", help="Stop after N records.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", "-t", help="Stop after S seconds without a record."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-F",
            help="text, json, or a template with %t topic %p partition %o offset %k key"
            " %v value %T timestamp %h headers (\\t \\n understood; a newline is added).",
        ),
    ] = "text",
    key_separator: Annotated[
        str | None,
        typer.Option("--key-separator", "-K", help="With --format text: print key SEP value."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr.")] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """Print records of a topic to stdout, one per line; a summary goes to stderr."""
    setup_logging()
    formatter = make_formatter(fmt, key_separator)
    position, value = _position(from_beginning, from_end, offset, timestamp)
    if group is not None and partition is not None:
        fail("--partition cannot be combined with --group", 2)
    reset = "earliest" if position in ("beginning", "offset", "timestamp") else "latest"
    settings: dict[str, Any] = {
        "group.id": group or f"strom-cli-{uuid.uuid4()}",
        "enable.auto.commit": group is not None,
        "auto.offset.reset": reset,
    }
    consumer = Consumer(client_config(bootstrap, properties, **settings))
    try:
        _assign(consumer, bootstrap, topic, partition, group, position, value)
        _loop(consumer, formatter, max_messages, timeout, quiet, group is not None)
    finally:
        consumer.close()


def _assign(
    consumer: Consumer,
    bootstrap: str,
    topic: str,
    partition: int | None,
    group: str | None,
    position: str,
    value: int | None,
) -> None:
    meta = cluster_metadata(consumer, bootstrap, topic).topics.get(topic)
    if meta is None or (meta.error and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        fail(f"topic {topic!r} does not exist")
    if meta.error is not None:
        fail(f"cannot consume {topic!r}: {describe_error(meta.error)}")
    partitions = sorted(meta.partitions)
    if partition is not None:
        if partition not in meta.partitions:
            fail(f"topic {topic!r} has no partition {partition} (it has {len(partitions)})")
        partitions = [partition]
    if group is None:
        start = "end" if position == "default" else position
        consumer.assign(start_offsets(consumer, topic, partitions, start, value))
    elif position in ("offset", "timestamp"):

        def on_assign(c: Consumer, assigned: list[TopicPartition]) -> None:
            parts = [tp.partition for tp in assigned]
            c.assign(start_offsets(c, topic, parts, position, value))

        consumer.subscribe([topic], on_assign=on_assign)
    else:
        consumer.subscribe([topic])


def _loop(
    consumer: Consumer,
    formatter: Formatter,
    max_messages: int | None,
    timeout: float | None,
    quiet: bool,
    grouped: bool,
) -> None:
    out = sys.stdout.buffer
    interactive = sys.stdout.isatty()
    count = size = 0
    start = last = time.monotonic()
    show = sys.stderr.isatty() and not interactive and not quiet
    try:
        with progress(show) as bar:
            task = bar.add_task("consuming", total=None) if bar else None
            while max_messages is None or count < max_messages:
                wait = (
                    0.5
                    if timeout is None
                    else min(0.5, max(0.0, last + timeout - time.monotonic()))
                )
                batch = consumer.consume(
                    min(500, max_messages - count) if max_messages else 500, wait
                )
                now = time.monotonic()
                for msg in batch:
                    if msg.error():
                        _check_error(msg)
                        continue
                    out.write(formatter(msg))
                    count += 1
                    size += len(msg.key() or b"") + len(msg.value() or b"")
                    last = now
                if interactive or not batch:
                    out.flush()
                if bar:
                    bar.update(task, description=f"consumed {count}")
                if timeout is not None and now - last >= timeout:
                    break
                if grouped and now - start > GROUP_WARN_AFTER and not consumer.assignment():
                    log.warning(
                        "warning: no partitions assigned yet; does the broker support groups?"
                    )
                    grouped = False
            out.flush()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly
        _silence_stdout()
    except KafkaException as e:
        fail(f"cannot consume: {describe_error(e)}")
    if not quiet:
        typer.echo(summary("consumed", count, size, time.monotonic() - start), err=True)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
