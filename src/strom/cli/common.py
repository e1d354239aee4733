"""Shared pieces of the client commands: options, client settings, errors and formatting."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, NoReturn

import typer
from confluent_kafka import KafkaError, KafkaException, Message
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

log = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
#: How long to wait for the first metadata answer before calling the cluster unreachable.
CONNECT_TIMEOUT = 10.0
#: How long an admin request may take.
REQUEST_TIMEOUT = 30.0

Bootstrap = Annotated[
    str,
    typer.Option(
        "--bootstrap",
        "-b",
        envvar="STROM_BOOTSTRAP",
        help="HOST:PORT[,HOST:PORT...] of any broker of the cluster.",
        show_default=True,
    ),
]
Properties = Annotated[
    list[str] | None,
    typer.Option(
        "--property",
        "-X",
        help="A librdkafka client setting k=v, e.g. -X security.protocol=SSL (repeatable).",
    ),
]

#: Turns one record into the bytes printed for it.
Formatter = Callable[[Message], bytes]
FIELDS = "tpokvTh"
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "0": "\0"}

_CONNECTIVITY_ERRORS = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._RESOLVE,
}


def setup_logging() -> None:
    """Send warnings from the client commands to stderr, one line each."""
    logging.basicConfig(level=logging.WARNING, format="strom: %(message)s", stream=sys.stderr)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `strom: error: message` to stderr and exit with `code`."""
    typer.echo(f"strom: error: {message}", err=True)
    raise typer.Exit(code)


def parse_pairs(items: list[str] | None, option: str) -> dict[str, str]:
    """Parse repeated k=v options into a dict, rejecting items without '='."""
    pairs: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        pairs[key] = value
    return pairs


class ClientErrors:
    """The clients' error_cb: logs what the cluster reports, remembers if no broker answers."""

    def __init__(self) -> None:
        self.unreachable: KafkaError | None = None

    def __call__(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE):
            self.unreachable = err
        elif err.code() not in _CONNECTIVITY_ERRORS:
            log.warning("warning: %s", describe_error(err))


#: One per process: a command talks to one cluster, so any client's news is everyone's.
CLIENT_ERRORS = ClientErrors()


def client_config(bootstrap: str, properties: list[str] | None, **extra: Any) -> dict[str, Any]:
    """librdkafka settings for a client of `bootstrap`; -X properties win over defaults."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": "strom-cli",
        # librdkafka's own log lines would bury our one-line errors; -X log_level=7 brings them back.
        "log_level": 0,
        "error_cb": CLIENT_ERRORS,
    }
    config.update(extra)
    config.update(parse_pairs(properties, "--property"))
    return config


def describe_error(err: KafkaError | KafkaException | BaseException) -> str:
    """One readable line for a Kafka error: `NAME: message`."""
    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        err = err.args[0]
    if isinstance(err, KafkaError):
        text = err.str()
        name = err.name()
        return text if name.startswith("_") or name in text else f"{name}: {text}"
    return str(err) or type(err).__name__


def connect_error(bootstrap: str, err: KafkaException) -> str:
    """The message for a cluster that did not answer, or a plain description of `err`."""
    kerr = err.args[0] if err.args and isinstance(err.args[0], KafkaError) else None
    if kerr is not None and kerr.code() in _CONNECTIVITY_ERRORS:
        return f"cannot reach a Kafka broker at {bootstrap} ({kerr.str()})"
    return describe_error(err)


def cluster_metadata(client: Any, bootstrap: str, topic: str | None = None) -> Any:
    """Metadata from `client` (all topics, or just `topic`), exiting cleanly if unreachable."""
    args = () if topic is None else (topic,)
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:  # short tries, so that "every broker refused" ends the wait early
        try:
            return client.list_topics(*args, timeout=0.5)
        except KafkaException as e:
            client.poll(0)  # serves error_cb
            down = CLIENT_ERRORS.unreachable
            if down is not None:
                fail(f"cannot reach a Kafka broker at {bootstrap} ({down.str()})")
            if time.monotonic() >= deadline or e.args[0].code() not in _CONNECTIVITY_ERRORS:
                fail(connect_error(bootstrap, e))


@contextlib.contextmanager
def kafka_errors(what: str) -> Iterator[None]:
    """Turn a KafkaException inside the block into `strom: error: what: ...` and exit 1."""
    try:
        yield
    except KafkaException as e:
        fail(f"{what}: {describe_error(e)}")


def unsupported(err: KafkaException | KafkaError) -> bool:
    """Whether the broker lacks the API the client needed."""
    kerr = err.args[0] if isinstance(err, KafkaException) else err
    return isinstance(kerr, KafkaError) and kerr.code() == KafkaError._UNSUPPORTED_FEATURE


def stdout_console() -> Console:
    """A console for tables on stdout; never wraps them when stdout is a pipe or file."""
    tty = sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=False, width=None if tty else 10_000)


def stderr_console() -> Console:
    """A console on stderr for progress displays."""
    return Console(stderr=True, highlight=False)


def table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    """A plain table with a header row; columns named in `right` are right-aligned."""
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in columns:
        t.add_column(name, justify="right" if name in right else "left", no_wrap=True)
    return t


def progress(enabled: bool, bar: bool = False) -> Progress | contextlib.nullcontext:
    """A transient progress display on stderr (with a bar for known totals), or a no-op."""
    if not enabled:
        return contextlib.nullcontext()
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if bar:
        columns += [BarColumn(), TaskProgressColumn()]
    return Progress(*columns, TimeElapsedColumn(), console=stderr_console(), transient=True)


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def summary(verb: str, count: int, size: int, seconds: float) -> str:
    """'produced 1000 records (12.3 KiB) in 0.21 s: 4762 records/s, 58.6 KiB/s'."""
    seconds = max(seconds, 1e-6)
    return (
        f"{verb} {count} record{'s' if count != 1 else ''} ({human_bytes(size)}) in {seconds:.2f} s:"
        f" {count / seconds:.0f} records/s, {human_bytes(size / seconds)}/s"
    )


def _headers(msg: Message) -> bytes:
    pairs = msg.headers() or []
    return b",".join(k.encode() + b"=" + (v or b"") for k, v in pairs)


def _field(code: str) -> Callable[[Message], bytes]:
    return {
        "t": lambda m: m.topic().encode(),
        "p": lambda m: str(m.partition()).encode(),
        "o": lambda m: str(m.offset()).encode(),
        "k": lambda m: m.key() or b"",
        "v": lambda m: m.value() or b"",
        "T": lambda m: str(m.timestamp()[1]).encode(),
        "h": _headers,
    }[code]


def compile_template(template: str) -> Formatter:
    """A formatter for %t %p %o %k %v %T %h (and %%, \\t \\n \\\\); ends each record with \\n."""
    parts: list[bytes | Callable[[Message], bytes]] = []
    text: list[str] = []
    i = 0
    while i < len(template):
        c = template[i]
        nxt = template[i + 1] if i + 1 < len(template) else ""
        if c == "%" and nxt and nxt in FIELDS:
            if text:
                parts.append("".join(text).encode())
                text = []
            parts.append(_field(nxt))
            i += 2
        elif c == "%" and nxt == "%":
            text.append("%")
            i += 2
        elif c == "\\" and nxt and nxt in ESCAPES:
            text.append(ESCAPES[nxt])
            i += 2
        elif c == "%":
            raise typer.BadParameter(
                f"unknown field %{nxt} (use %t %p %o %k %v %T %h or %%)", param_hint="--format"
            )
        else:
            text.append(c)
            i += 1
    if not "".join(text).endswith("\n"):
        text.append("\n")
    parts.append("".join(text).encode())
    return lambda m: b"".join(p if isinstance(p, bytes) else p(m) for p in parts)


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()


def json_line(msg: Message) -> bytes:
    """One JSON object per record; bytes that are not UTF-8 appear as 'base64:...'."""
    record = {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": msg.timestamp()[1],
        "key": _text(msg.key()),
        "value": _text(msg.value()),
        "headers": [[k, _text(v)] for k, v in msg.headers() or []],
    }
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


def make_formatter(fmt: str, key_separator: str | None) -> Formatter:
    """The formatter for --format: text, json, or a template."""
    if fmt == "json":
        return json_line
    if fmt == "text":
        if key_separator is None:
            return compile_template("%v")
        return compile_template("%k" + key_separator.replace("%", "%%") + "%v")
    return compile_template(fmt)
