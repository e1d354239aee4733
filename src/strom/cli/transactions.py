"""`strom transactions`: list and describe the transactions of a cluster (as Kafka's
kafka-transactions.sh does), over the Kafka protocol itself: no client library offers
ListTransactions or DescribeTransactions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer

from strom.cli.common import (
    CONNECT_TIMEOUT,
    DEFAULT_BOOTSTRAP,
    Bootstrap,
    fail,
    stdout_console,
    table,
)
from strom.cli.wire import Connection, WireError
from strom.protocol.errors import ErrorCode
from strom.protocol.messages.describe_transactions import DescribeTransactionsRequest
from strom.protocol.messages.find_coordinator import FindCoordinatorRequest
from strom.protocol.messages.list_transactions import ListTransactionsRequest
from strom.protocol.messages.metadata import MetadataRequest

app = typer.Typer(help="List and describe transactions.", no_args_is_help=True)

TRANSACTION_KEY = 1


def _error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"


@contextmanager
def _bootstrap(bootstrap: str) -> Iterator[Connection]:
    """A connection to the first broker of the list that answers."""
    problems = []
    for address in bootstrap.split(","):
        try:
            conn = Connection(address.strip(), CONNECT_TIMEOUT)
        except WireError as e:
            problems.append(str(e))
            continue
        try:
            yield conn
        except WireError as e:
            fail(str(e))
        finally:
            conn.close()
        return
    fail("; ".join(problems) or "no bootstrap server given")


def _brokers(conn: Connection) -> dict[int, str]:
    metadata = conn.call(MetadataRequest(topics=[], allow_auto_topic_creation=False), 4)
    return {b.node_id: f"{b.host}:{b.port}" for b in metadata.brokers}  # type: ignore[attr-defined]


@app.command("list")
def list_transactions(
    state: Annotated[
        list[str] | None,
        typer.Option("--state", "-s", help="Only transactions in this state, e.g. Ongoing."),
    ] = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> None:
    """List the transactional ids every broker coordinates: producer id and state."""
    rows = []
    with _bootstrap(bootstrap) as conn:
        for node, address in sorted(_brokers(conn).items()):
            try:
                with Connection(address, CONNECT_TIMEOUT) as broker:
                    r = broker.call(ListTransactionsRequest(state_filters=list(state or [])), 0)
            except WireError as e:
                typer.echo(f"strom: warning: broker {node}: {e}", err=True)
                continue
            if r.error_code:  # type: ignore[attr-defined]
                typer.echo(
                    f"strom: warning: broker {node}: {_error_name(r.error_code)}",  # type: ignore[attr-defined]
                    err=True,
                )
            for t in r.transaction_states:  # type: ignore[attr-defined]
                rows.append(
                    (t.transactional_id, str(node), str(t.producer_id), t.transaction_state)
                )
    out = table("transactional id", "coordinator", "producer id", "state", right=("producer id",))
    for row in sorted(rows):
        out.add_row(*row)
    stdout_console().print(out)


@app.command()
def describe(
    transactional_id: Annotated[str, typer.Argument(help="The transactional id.")],
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> None:
    """The state of one transactional id: producer, epoch, timeout, and the partitions of its
    transaction."""
    with _bootstrap(bootstrap) as conn:
        found = conn.call(FindCoordinatorRequest(key=transactional_id, key_type=TRANSACTION_KEY), 3)
        if found.error_code:  # type: ignore[attr-defined]
            fail(f"no coordinator for {transactional_id}: {_error_name(found.error_code)}")  # type: ignore[attr-defined]
        address = f"{found.host}:{found.port}"  # type: ignore[attr-defined]
        with Connection(address, CONNECT_TIMEOUT) as coordinator:
            r = coordinator.call(
                DescribeTransactionsRequest(transactional_ids=[transactional_id]), 0
            )
    state = r.transaction_states[0]  # type: ignore[attr-defined]
    if state.error_code:
        fail(f"{transactional_id}: {_error_name(state.error_code)}")
    start = (
        datetime.fromtimestamp(state.transaction_start_time_ms / 1000).isoformat(timespec="seconds")
        if state.transaction_start_time_ms >= 0
        else "-"
    )
    duration = (
        f"{max(0, int(time.time() * 1000) - state.transaction_start_time_ms)} ms"
        if state.transaction_start_time_ms >= 0
        else "-"
    )
    partitions = ",".join(f"{t.topic}-{p}" for t in state.topics for p in t.partitions) or "-"
    out = table("field", "value")
    for name, value in (
        ("transactional id", transactional_id),
        ("coordinator", str(found.node_id)),  # type: ignore[attr-defined]
        ("state", state.transaction_state),
        ("producer id", str(state.producer_id)),
        ("producer epoch", str(state.producer_epoch)),
        ("timeout", f"{state.transaction_timeout_ms} ms"),
        ("started", start),
        ("duration", duration),
        ("partitions", partitions),
    ):
        out.add_row(name, value)
    stdout_console().print(out)
