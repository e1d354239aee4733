"""`strom topics`: create, list, describe, alter and delete topics through the Kafka admin API."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from confluent_kafka import (
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

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
    parse_pairs,
    setup_logging,
    stdout_console,
    table,
    unsupported,
)

app = typer.Typer(help="Create, list, describe, alter and delete topics.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="The topic.", show_default=False)]
Configs = Annotated[
    list[str] | None,
    typer.Option(
        "--config", "-c", help="A topic setting k=v, e.g. retention.ms=60000 (repeatable)."
    ),
]


def _admin(bootstrap: str, properties: list[str] | None) -> AdminClient:
    setup_logging()
    admin = AdminClient(client_config(bootstrap, properties))
    cluster_metadata(admin, bootstrap)
    return admin


def _describe_topics(admin: AdminClient, names: list[str]) -> dict[str, Any]:
    """TopicDescription per name; exits cleanly if one does not exist."""
    if not names:
        return {}
    futures = admin.describe_topics(TopicCollection(names), request_timeout=REQUEST_TIMEOUT)
    out = {}
    for name, future in futures.items():
        try:
            out[name] = future.result()
        except KafkaException as e:
            if e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                fail(f"topic {name!r} does not exist")
            fail(f"cannot describe topic {name!r}: {describe_error(e)}")
    return out


@app.command()
def create(
    name: Name,
    partitions: Annotated[
        int, typer.Option("--partitions", "-p", help="Partition count (-1: broker default).")
    ] = -1,
    replication_factor: Annotated[
        int,
        typer.Option("--replication-factor", "-r", help="Replicas per partition (-1: default)."),
    ] = -1,
    config: Configs = None,
    if_not_exists: Annotated[
        bool, typer.Option("--if-not-exists", help="Succeed if the topic already exists.")
    ] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """Create a topic."""
    configs = parse_pairs(config, "--config")
    admin = _admin(bootstrap, properties)
    topic = NewTopic(name, partitions, replication_factor, config=configs)
    future = admin.create_topics([topic], request_timeout=REQUEST_TIMEOUT)[name]
    try:
        future.result()
    except KafkaException as e:
        if if_not_exists and e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            typer.echo(f"topic {name} already exists")
            return
        fail(f"cannot create topic {name!r}: {describe_error(e)}")
    typer.echo(f"created topic {name}")


@app.command("list")
def list_topics(
    internal: Annotated[
        bool, typer.Option("--internal", help="Include internal topics (__consumer_offsets...).")
    ] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """List topics: name, partition count, replication factor and whether it is internal."""
    admin = _admin(bootstrap, properties)
    names = sorted(cluster_metadata(admin, bootstrap).topics)
    descriptions = _describe_topics(admin, names)
    t = table("topic", "partitions", "replication", "internal", right=("partitions", "replication"))
    for name in names:
        d = descriptions[name]
        if d.is_internal and not internal:
            continue
        rf = max((len(p.replicas) for p in d.partitions), default=0)
        t.add_row(name, str(len(d.partitions)), str(rf), "yes" if d.is_internal else "no")
    stdout_console().print(t)


def _watermarks(admin: AdminClient, name: str, count: int) -> dict[int, tuple[int, int]]:
    """(low, high) watermark per partition, via ListOffsets."""
    found: dict[int, list[int]] = {p: [-1, -1] for p in range(count)}
    for i, spec in enumerate((OffsetSpec.earliest(), OffsetSpec.latest())):
        request = {TopicPartition(name, p): spec for p in range(count)}
        futures = admin.list_offsets(
            request,
            isolation_level=IsolationLevel.READ_UNCOMMITTED,
            request_timeout=REQUEST_TIMEOUT,
        )
        for tp, future in futures.items():
            with kafka_errors(f"cannot read offsets of {name}-{tp.partition}"):
                found[tp.partition][i] = future.result().offset
    return {p: (lo, hi) for p, (lo, hi) in found.items()}


def _configs(admin: AdminClient, name: str) -> dict[str, ConfigEntry] | None:
    """All config entries of a topic, or None when the broker cannot describe configs."""
    resource = ConfigResource(ResourceType.TOPIC, name)
    future = admin.describe_configs([resource], request_timeout=REQUEST_TIMEOUT)[resource]
    try:
        return future.result()
    except KafkaException as e:
        if unsupported(e):
            return None
        fail(f"cannot describe configs of {name!r}: {describe_error(e)}")


def _ids(nodes: list[Any]) -> str:
    return ",".join(str(n.id) for n in nodes)


@app.command()
def describe(
    name: Name,
    all_configs: Annotated[
        bool, typer.Option("--all-configs", help="Show every setting, not only overrides.")
    ] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """Show a topic's partitions (leader, replicas, ISR, watermarks) and overridden settings."""
    admin = _admin(bootstrap, properties)
    d = _describe_topics(admin, [name])[name]
    console = stdout_console()
    rf = max((len(p.replicas) for p in d.partitions), default=0)
    topic_id = str(d.topic_id) if d.topic_id is not None else "-"
    console.print(
        f"topic {d.name}  id {topic_id}  partitions {len(d.partitions)}"
        f"  replication {rf}  internal {'yes' if d.is_internal else 'no'}"
    )
    marks = _watermarks(admin, name, len(d.partitions))
    t = table("partition", "leader", "replicas", "isr", "low", "high", right=("low", "high"))
    for p in sorted(d.partitions, key=lambda p: p.id):
        leader = str(p.leader.id) if p.leader is not None else "none"
        lo, hi = marks.get(p.id, (-1, -1))
        t.add_row(str(p.id), leader, _ids(p.replicas), _ids(p.isr), str(lo), str(hi))
    console.print(t)
    entries = _configs(admin, name)
    console.print()
    if entries is None:
        typer.echo(
            "strom: configs not shown: the broker does not support DescribeConfigs", err=True
        )
        return
    shown = [
        e
        for e in sorted(entries.values(), key=lambda e: e.name)
        if all_configs or ConfigSource(e.source) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    ]
    if not shown:
        console.print("configs: no overrides")
        return
    c = table("config", "value", "source")
    for e in shown:
        value = "(sensitive)" if e.is_sensitive else ("" if e.value is None else e.value)
        c.add_row(e.name, value, ConfigSource(e.source).name.lower())
    console.print(c)


@app.command()
def delete(
    names: Annotated[list[str], typer.Argument(help="Topics to delete.", show_default=False)],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Required: confirms the deletion (no prompt).")
    ] = False,
    if_exists: Annotated[
        bool, typer.Option("--if-exists", help="Succeed if a topic does not exist.")
    ] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """Delete topics and all their data. Never prompts: refuses unless --yes is given."""
    if not yes:
        fail(f"refusing to delete {', '.join(names)} without --yes (this deletes all data)", 2)
    admin = _admin(bootstrap, properties)
    futures = admin.delete_topics(names, request_timeout=REQUEST_TIMEOUT)
    failed = False
    for name in names:
        try:
            futures[name].result()
            typer.echo(f"deleted topic {name}")
        except KafkaException as e:
            if if_exists and e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                typer.echo(f"topic {name} does not exist")
                continue
            typer.echo(f"strom: error: cannot delete topic {name!r}: {describe_error(e)}", err=True)
            failed = True
    if failed:
        raise typer.Exit(1)


@app.command()
def alter(
    name: Name,
    partitions: Annotated[
        int | None, typer.Option("--partitions", "-p", help="Grow to this many partitions.")
    ] = None,
    config: Configs = None,
    delete_config: Annotated[
        list[str] | None,
        typer.Option(
            "--delete-config", help="Remove an override, back to the default (repeatable)."
        ),
    ] = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    properties: Properties = None,
) -> None:
    """Add partitions and/or set or remove topic settings (IncrementalAlterConfigs)."""
    sets = parse_pairs(config, "--config")
    deletes = list(delete_config or [])
    if partitions is None and not sets and not deletes:
        fail("nothing to alter: give --partitions, --config or --delete-config", 2)
    if both := sorted(set(sets) & set(deletes)):
        fail(f"both set and deleted: {', '.join(both)}", 2)
    admin = _admin(bootstrap, properties)
    current = len(_describe_topics(admin, [name])[name].partitions)
    if partitions is not None:
        if partitions <= current:
            fail(f"topic {name!r} has {current} partitions; --partitions must be more than that")
        request = [NewPartitions(name, partitions)]
        future = admin.create_partitions(request, request_timeout=REQUEST_TIMEOUT)[name]
        with kafka_errors(f"cannot add partitions to {name!r}"):
            future.result()
        typer.echo(f"topic {name}: {current} -> {partitions} partitions")
    if sets or deletes:
        entries = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in sets.items()
        ] + [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in deletes]
        resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
        futures = admin.incremental_alter_configs([resource], request_timeout=REQUEST_TIMEOUT)
        with kafka_errors(f"cannot alter configs of {name!r}"):
            futures[resource].result()
        changes = [f"{k}={v}" for k, v in sets.items()] + [f"-{k}" for k in deletes]
        typer.echo(f"topic {name}: {' '.join(changes)}")
