"""`strom groups`: list, describe, reset the offsets of and delete consumer groups."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from strom.cli.common import (
    DEFAULT_BOOTSTRAP,
    REQUEST_TIMEOUT,
    Bootstrap,
    Properties,
    client_config,
    cluster_metadata,
    describe_error,
    fail,
    kafka_errors,
    setup_logging,
    stdout_console,
    table,
)

app = typer.Typer(
    help="List, describe, reset the offsets of and delete consumer groups.", no_args_is_help=True
)

Group = Annotated[str, typer.Argument(help="The consumer group.", show_default=False)]

# What describe shows for a state, Kafka's names.
STATE_NAMES = {
    ConsumerGroupState.UNKNOWN: "Unknown",
    ConsumerGroupState.PREPARING_REBALANCING: "PreparingRebalance",
    ConsumerGroupState.COMPLETING_REBALANCING: "CompletingRebalance",
    ConsumerGroupState.STABLE: "Stable",
    ConsumerGroupState.DEAD: "Dead",
    ConsumerGroupState.EMPTY: "Empty",
}
INACTIVE = {ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD}


def _admin(bootstrap: str, properties: list[str] | None) -> AdminClient:
    setup_logging()
    admin = AdminClient(client_config(bootstrap, properties))
    cluster_metadata(admin, bootstrap)
    return admin


def _state(state: Any) -> str:
    if isinstance(state, ConsumerGroupState):
        return STATE_NAMES.get(state, state.name.title())
    return str(state or "Unknown")


def _type(kind: Any) -> str:
    name = getattr(kind, "name", None) or str(kind or "")
    return name.lower() if name and name.upper() != "UNKNOWN" else "-"


def _describe(admin: AdminClient, group: str) -> Any:
    future = admin.describe_consumer_groups([group], request_timeout=REQUEST_TIMEOUT)[group]
    with kafka_errors(f"cannot describe group {group!r}"):
        return future.result()


def _committed(admin: AdminClient, group: str) -> dict[tuple[str, int], int]:
    request = [ConsumerGroupTopicPartitions(group)]
    future = admin.list_consumer_group_offsets(request, request_timeout=REQUEST_TIMEOUT)[group]
    with kafka_errors(f"cannot read the committed offsets of {group!r}"):
        result = future.result()
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in result.topic_partitions or []
        if tp.error is None and tp.offset >= 0
    }


def _offsets(
    admin: AdminClient, partitions: list[tuple[str, int]], spec: Any
) -> dict[tuple[str, int], int]:
    """ListOffsets for each partition (earliest, latest or a timestamp); -1 where none."""
    if not partitions:
        return {}
    request = {TopicPartition(t, p): spec for t, p in partitions}
    futures = admin.list_offsets(request, request_timeout=REQUEST_TIMEOUT)
    out = {}
    for tp, future in futures.items():
        with kafka_errors(f"cannot read offsets of {tp.topic}-{tp.partition}"):
            out[(tp.topic, tp.partition)] = future.result().offset
    return out


@app.command("list")
def list_groups(
    state: Annotated[
        list[str] | None,
        typer.Option("--state", "-s", help="Only groups in this state, e.g. Stable (repeatable)."),
    ] = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """List consumer groups: name, type (classic or consumer) and state."""
    admin = _admin(bootstrap, properties)
    future = admin.list_consumer_groups(request_timeout=REQUEST_TIMEOUT)
    with kafka_errors("cannot list groups"):
        result = future.result()
    for err in result.errors or []:
        typer.echo(f"strom: warning: {describe_error(err)}", err=True)
    wanted = {s.lower() for s in state or []}
    t = table("group", "type", "state")
    for g in sorted(result.valid or [], key=lambda g: g.group_id):
        name = _state(g.state)
        if wanted and name.lower() not in wanted:
            continue
        t.add_row(g.group_id, _type(getattr(g, "type", None)), name)
    stdout_console().print(t)


@app.command()
def describe(
    group: Group,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """Show a group's members and assignments, and per partition the committed offset, the log
    end offset and the lag."""
    admin = _admin(bootstrap, properties)
    d = _describe(admin, group)
    committed = _committed(admin, group)
    if d.state == ConsumerGroupState.DEAD and not committed:
        fail(f"group {group!r} does not exist")
    owner: dict[tuple[str, int], Any] = {}
    for m in d.members:
        for tp in m.assignment.topic_partitions or []:
            owner[(tp.topic, tp.partition)] = m
    partitions = sorted(set(committed) | set(owner))
    ends = _offsets(admin, partitions, OffsetSpec.latest())
    console = stdout_console()
    coordinator = f"{d.coordinator.id} ({d.coordinator.host}:{d.coordinator.port})"
    console.print(
        f"group {group}  type {_type(getattr(d, 'type', None))}  state {_state(d.state)}"
        f"  assignor {d.partition_assignor or '-'}  coordinator {coordinator}"
        f"  members {len(d.members)}"
    )
    if d.members:
        mt = table("member", "instance", "client", "host", "partitions", right=("partitions",))
        for m in sorted(d.members, key=lambda m: m.member_id):
            count = len(m.assignment.topic_partitions or [])
            mt.add_row(m.member_id, m.group_instance_id or "-", m.client_id, m.host, str(count))
        console.print(mt)
    if not partitions:
        console.print("no committed offsets and no assigned partitions")
        return
    pt = table(
        "topic",
        "partition",
        "committed",
        "log-end",
        "lag",
        "member",
        "client",
        right=("partition", "committed", "log-end", "lag"),
    )
    for topic, partition in partitions:
        c = committed.get((topic, partition))
        end = ends.get((topic, partition), -1)
        lag = "-" if c is None or end < 0 else str(max(end - c, 0))
        m = owner.get((topic, partition))
        pt.add_row(
            topic,
            str(partition),
            "-" if c is None else str(c),
            "-" if end < 0 else str(end),
            lag,
            m.member_id if m else "-",
            m.client_id if m else "-",
        )
    console.print(pt)


def _parse_topic(spec: str) -> tuple[str, list[int] | None]:
    """TOPIC or TOPIC:P,P,...: a topic and, optionally, some of its partitions."""
    name, sep, parts = spec.partition(":")
    if not sep:
        return name, None
    try:
        return name, sorted({int(p) for p in parts.split(",") if p.strip()})
    except ValueError:
        raise typer.BadParameter(
            f"expected TOPIC[:P,P...], got {spec!r}", param_hint="--topic"
        ) from None


def _parse_time(text: str) -> int:
    """Milliseconds since the epoch, or an ISO-8601 date-time (local time unless it has an
    offset)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise typer.BadParameter(
            f"expected epoch milliseconds or an ISO-8601 date-time, got {text!r}",
            param_hint="--to-datetime",
        ) from None


@app.command("reset-offsets")
def reset_offsets(
    group: Group,
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="TOPIC or TOPIC:P,P,... to reset (repeatable)."),
    ] = None,
    all_topics: Annotated[
        bool, typer.Option("--all-topics", help="Every topic the group has offsets for.")
    ] = False,
    to_earliest: Annotated[bool, typer.Option("--to-earliest", help="The log start.")] = False,
    to_latest: Annotated[bool, typer.Option("--to-latest", help="The log end.")] = False,
    to_offset: Annotated[
        int | None, typer.Option("--to-offset", help="This offset (kept within the log).")
    ] = None,
    to_datetime: Annotated[
        str | None,
        typer.Option(
            "--to-datetime",
            help="The first offset at or after this time: epoch ms or ISO-8601.",
        ),
    ] = None,
    shift_by: Annotated[
        int | None,
        typer.Option("--shift-by", help="Move the committed offset by N (negative: back)."),
    ] = None,
    execute: Annotated[
        bool, typer.Option("--execute", help="Apply the reset (default: a dry run).")
    ] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """Set a group's committed offsets. Shows the plan and changes nothing unless --execute is
    given; the group must have no active members."""
    chosen = [
        name
        for name, on in (
            ("--to-earliest", to_earliest),
            ("--to-latest", to_latest),
            ("--to-offset", to_offset is not None),
            ("--to-datetime", to_datetime is not None),
            ("--shift-by", shift_by is not None),
        )
        if on
    ]
    if len(chosen) != 1:
        fail(
            "give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, "
            f"--shift-by{' (got ' + ', '.join(chosen) + ')' if chosen else ''}",
            2,
        )
    if bool(topic) == all_topics:
        fail("give --topic (repeatable) or --all-topics", 2)
    timestamp = _parse_time(to_datetime) if to_datetime is not None else None
    admin = _admin(bootstrap, properties)
    d = _describe(admin, group)
    if d.state not in INACTIVE:
        fail(
            f"group {group!r} is {_state(d.state)} with {len(d.members)} members: offsets can "
            "only be reset while it is inactive (stop its consumers first)"
        )
    committed = _committed(admin, group)
    partitions: list[tuple[str, int]] = []
    if all_topics:
        partitions = sorted(committed)
        if not partitions:
            fail(f"group {group!r} has no committed offsets (name the topics with --topic)")
    else:
        metadata = cluster_metadata(admin, bootstrap)
        for spec in topic or []:
            name, wanted = _parse_topic(spec)
            meta = metadata.topics.get(name)
            if meta is None or meta.error is not None:
                fail(f"topic {name!r} does not exist")
            existing = sorted(meta.partitions)
            for p in wanted if wanted is not None else existing:
                if p not in meta.partitions:
                    fail(f"topic {name!r} has no partition {p}")
                partitions.append((name, p))
    low = _offsets(admin, partitions, OffsetSpec.earliest())
    high = _offsets(admin, partitions, OffsetSpec.latest())
    at_time = (
        _offsets(admin, partitions, OffsetSpec.for_timestamp(timestamp))
        if timestamp is not None
        else {}
    )
    plan: list[tuple[str, int, int | None, int]] = []
    for tp in partitions:
        lo, hi = low[tp], high[tp]
        current = committed.get(tp)
        if to_earliest:
            new = lo
        elif to_latest:
            new = hi
        elif to_offset is not None:
            new = to_offset
        elif timestamp is not None:
            found = at_time.get(tp, -1)
            new = found if found >= 0 else hi
        else:
            assert shift_by is not None
            new = (current if current is not None else lo) + shift_by
        plan.append((tp[0], tp[1], current, min(max(new, lo), hi)))
    t = table("topic", "partition", "current", "new", right=("partition", "current", "new"))
    for name, p, current, new in plan:
        t.add_row(name, str(p), "-" if current is None else str(current), str(new))
    stdout_console().print(t)
    if not execute:
        typer.echo("\ndry run: nothing changed (add --execute to apply)")
        return
    request = [
        ConsumerGroupTopicPartitions(
            group, [TopicPartition(name, p, new) for name, p, _, new in plan]
        )
    ]
    future = admin.alter_consumer_group_offsets(request, request_timeout=REQUEST_TIMEOUT)[group]
    with kafka_errors(f"cannot reset the offsets of {group!r}"):
        result = future.result()
    failed = [tp for tp in result.topic_partitions or [] if tp.error is not None]
    if failed:
        fail(
            f"cannot reset {failed[0].topic}-{failed[0].partition} of {group!r}: "
            f"{describe_error(failed[0].error)}"
        )
    typer.echo(f"\nreset {len(plan)} partitions of group {group}")


@app.command()
def delete(
    groups: Annotated[list[str], typer.Argument(help="Groups to delete.", show_default=False)],
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Required: confirms the deletion (no prompt)."),
    ] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """Delete inactive groups and their committed offsets. Never prompts: refuses unless --yes
    is given."""
    if not yes:
        fail(
            f"refusing to delete {', '.join(groups)} without --yes (their committed offsets "
            "are deleted too)",
            2,
        )
    admin = _admin(bootstrap, properties)
    futures = admin.delete_consumer_groups(groups, request_timeout=REQUEST_TIMEOUT)
    failed = False
    for group in groups:
        try:
            futures[group].result()
            typer.echo(f"deleted group {group}")
        except KafkaException as e:
            code = e.args[0].code() if e.args and isinstance(e.args[0], KafkaError) else None
            why = describe_error(e)
            if code == KafkaError.NON_EMPTY_GROUP:
                why = "it has active members (stop its consumers first)"
            elif code == KafkaError.GROUP_ID_NOT_FOUND:
                why = "it does not exist"
            typer.echo(f"strom: error: cannot delete group {group!r}: {why}", err=True)
            failed = True
    if failed:
        raise typer.Exit(1)
