"""`strom groups list|describe|reset-offsets|delete` as processes against a real `strom serve`."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition

from tests.conftest import StromProcess

from .test_cli import cli, ok, one_line_error, tables
from .util import create_topic

BROKER = {"group.initial.rebalance.delay.ms": "0"}


def _produce(bootstrap: str, topic: str, per_partition: int, partitions: int) -> float:
    """Records with timestamps one second apart per round; returns the middle round's time."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    base = int(time.time() * 1000) - per_partition * 1000
    for i in range(per_partition):
        for part in range(partitions):
            p.produce(topic, b"v", partition=part, timestamp=base + i * 1000)
    assert p.flush(15) == 0
    return base + (per_partition // 2) * 1000


def _consumer(bootstrap: str, group: str, topic: str) -> Consumer:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "cli-test-consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([topic])
    return c


def test_groups_list_describe_reset_delete(strom_factory) -> None:  # noqa: ANN001
    strom: StromProcess = strom_factory(config=BROKER)
    b = strom.bootstrap
    create_topic(b, "cli-grp", 2)
    middle = _produce(b, "cli-grp", 10, 2)
    c = _consumer(b, "cli-group", "cli-grp")
    try:
        got = 0
        deadline = time.monotonic() + 30
        while got < 12 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got += 1
        # Commit 6 on each partition: a lag of 4 each.
        c.commit(offsets=[TopicPartition("cli-grp", p, 6) for p in (0, 1)], asynchronous=False)

        listed = tables(ok(b, "groups", "list"))[0]
        assert ["cli-group", "classic", "Stable"] in listed
        out = ok(b, "groups", "describe", "cli-group")
        assert "state Stable" in out and "assignor range" in out and "members 1" in out
        members, offsets = tables(out)
        assert members[0][2] == "cli-test-consumer" and members[0][-1] == "2"
        rows = {(r[0], r[1]): r[2:] for r in offsets}
        assert rows[("cli-grp", "0")][:3] == ["6", "10", "4"]
        assert rows[("cli-grp", "1")][:3] == ["6", "10", "4"]
        assert rows[("cli-grp", "0")][4] == "cli-test-consumer"
        # Offsets of a group with members cannot be reset.
        one_line_error(
            cli(b, "groups", "reset-offsets", "cli-group", "--all-topics", "--to-earliest"),
            "is Stable",
        )
        one_line_error(
            cli(b, "groups", "delete", "cli-group", "--yes"), "cannot delete group", "active"
        )
    finally:
        c.close()

    def committed() -> dict[str, str]:
        offs = tables(ok(b, "groups", "describe", "cli-group"))[-1]
        return {r[1]: r[2] for r in offs}

    # A dry run shows the plan and changes nothing.
    plan = tables(ok(b, "groups", "reset-offsets", "cli-group", "--all-topics", "--to-earliest"))
    assert [r[2:] for r in plan[0]] == [["6", "0"], ["6", "0"]]
    assert committed() == {"0": "6", "1": "6"}
    out = ok(
        b,
        "groups",
        "reset-offsets",
        "cli-group",
        "-t",
        "cli-grp:1",
        "--shift-by",
        "-2",
        "--execute",
    )
    assert "reset 1 partitions" in out
    assert committed() == {"0": "6", "1": "4"}
    ok(b, "groups", "reset-offsets", "cli-group", "-t", "cli-grp", "--to-offset", "99", "--execute")
    assert committed() == {"0": "10", "1": "10"}  # kept within the log
    ok(
        b,
        "groups",
        "reset-offsets",
        "cli-group",
        "-t",
        "cli-grp",
        "--to-datetime",
        str(middle),
        "--execute",
    )
    assert committed() == {"0": "5", "1": "5"}
    ok(b, "groups", "reset-offsets", "cli-group", "--all-topics", "--to-latest", "--execute")
    assert committed() == {"0": "10", "1": "10"}
    one_line_error(
        cli(b, "groups", "reset-offsets", "cli-group", "--all-topics"), "exactly one", code=2
    )

    # A consumer of the group now starts where the reset put it.
    _produce(b, "cli-grp", 1, 2)
    c = _consumer(b, "cli-group", "cli-grp")
    try:
        first = None
        deadline = time.monotonic() + 30
        while first is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                first = m.offset()
        assert first == 10
    finally:
        c.close()

    one_line_error(cli(b, "groups", "delete", "cli-group"), "--yes", code=2)
    assert "deleted group cli-group" in ok(b, "groups", "delete", "cli-group", "--yes")
    assert all(r[0] != "cli-group" for r in (tables(ok(b, "groups", "list")) or [[]])[0])
    one_line_error(cli(b, "groups", "describe", "cli-group"), "does not exist")
