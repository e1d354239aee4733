"""The log is the database: what a restart loads is what was there before."""

from __future__ import annotations

from strom.coordinator.group import OffsetToCommit
from strom.coordinator.group.classic import ClassicState
from strom.coordinator.group.consumer_ops import ConsumerHeartbeat
from strom.protocol.errors import ErrorCode

from .conftest import TOPICS
from .helpers import join, join_new, sync


def _classic_snapshot(c) -> dict:  # noqa: ANN001
    out = {}
    for gid, g in c.groups.items():
        if g.kind != "classic":
            continue
        out[gid] = (
            g.state,
            g.generation,
            g.protocol_type,
            g.protocol_name,
            g.leader_id,
            {
                m.member_id: (m.instance_id, m.assignment, m.session_timeout_ms)
                for m in g.members.values()
            },
        )
    return out


def _consumer_snapshot(c) -> dict:  # noqa: ANN001
    out = {}
    for gid, g in c.groups.items():
        if g.kind != "consumer":
            continue
        out[gid] = (
            g.epoch,
            g.assignment_epoch,
            dict(g.subscription_metadata),
            {mid: (m.metadata_key(), m.assignment_key()) for mid, m in g.members.items()},
            {mid: sorted((t, sorted(ps)) for t, ps in a.items()) for mid, a in g.target.items()},
            dict(g.owners),
        )
    return out


def test_restart_restores_groups_offsets_and_members(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    a, da = join_new(c, "g")
    b = join(c, "g", instance_id="static-b")
    harness.timer.advance(0)
    gen = da.result.generation
    leader = da.result.leader
    members = [a, b.result.member_id]
    sync(c, "g", gen, leader, [(m, m.encode()) for m in members])
    commits = [("orders", [OffsetToCommit(p, 100 + p, 2, f"m{p}") for p in range(6)])]
    assert all(
        code == 0
        for _, parts in c.commit_offsets("g", gen, a, None, commits).result
        for _, code in parts
    )
    c.commit_offsets("simple", -1, "", None, [("audit", [OffsetToCommit(1, 9)])])
    hb = c.consumer_group_heartbeat(
        ConsumerHeartbeat(
            "cg", "m-1", 0, rebalance_timeout_ms=30_000, subscribed_topic_names=["orders"], owned={}
        )
    ).result
    assert hb.error == ErrorCode.NONE
    before_classic = _classic_snapshot(c)
    before_consumer = _consumer_snapshot(c)
    before_offsets = {g: dict(c.offsets.of_group(g)) for g in c.offsets.groups()}

    c = harness.restart()
    assert _classic_snapshot(c) == before_classic
    assert _consumer_snapshot(c) == before_consumer
    assert {g: dict(c.offsets.of_group(g)) for g in c.offsets.groups()} == before_offsets
    assert c.groups["g"].state == ClassicState.STABLE
    # Members carry on with their generation, as clients do after a broker restart.
    assert c.heartbeat("g", gen, a, None) == ErrorCode.NONE
    assert c.heartbeat("g", gen, members[1], "static-b") == ErrorCode.NONE
    error, found = c.fetch_offsets("g", [("orders", list(range(6)))])
    assert [(p.offset, p.leader_epoch, p.metadata) for p in found[0][1]] == [
        (100 + p, 2, f"m{p}") for p in range(6)
    ]
    hb2 = c.consumer_group_heartbeat(ConsumerHeartbeat("cg", "m-1", hb.member_epoch)).result
    assert hb2.error == ErrorCode.NONE and hb2.member_epoch == hb.member_epoch
    # Members that do not come back within their session timeout are removed.
    harness.timer.advance(10_000)
    assert c.groups["g"].state == ClassicState.PREPARING_REBALANCE or not c.groups["g"].members


def test_empty_group_generation_survives_restart(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    a, d = join_new(c, "g")
    harness.timer.advance(0)
    sync(c, "g", d.result.generation, a, [(a, b"x")])
    c.leave_group("g", [(a, None)])
    gen = c.groups["g"].generation
    c = harness.restart()
    g = c.groups["g"]
    assert g.state == ClassicState.EMPTY and g.generation == gen and not g.members
    # The next join starts the next generation.
    b, d2 = join_new(c, "g")
    harness.timer.advance(0)
    assert d2.result.generation == gen + 1


def test_loading_skips_records_it_cannot_read(harness) -> None:  # noqa: ANN001
    from strom.protocol.records import build_batch

    c = harness.coordinator
    c.commit_offsets("g", -1, "", None, [("orders", [OffsetToCommit(0, 5)])])
    p = c.partition_for("g")
    harness.log_of(p).append(
        bytearray(build_batch([(b"\x00\x63junk", b"\x00\x00"), (b"\x00", None)])),
    )
    c = harness.restart()
    assert c.fetch_offsets("g", [("orders", [0])])[1][0][1][0].offset == 5
    assert TOPICS  # the fixture's topics are what commits are checked against


def test_requests_wait_for_loading(harness) -> None:  # noqa: ANN001
    import asyncio

    from strom.coordinator.group import GroupCoordinator
    from strom.coordinator.writer import LogWriter

    from .helpers import join

    c = harness.coordinator
    for i in range(40):
        c.commit_offsets(f"g{i}", -1, "", None, [("orders", [OffsetToCommit(0, i)])])
    harness.restart()
    fresh = GroupCoordinator(
        harness.config, LogWriter(harness.log_of), harness.topics, harness.timer
    )
    assert fresh.check_available("g1") == ErrorCode.COORDINATOR_NOT_AVAILABLE

    async def scenario() -> None:
        for p in range(fresh.num_partitions):  # this broker leads every partition
            fresh.become_leader(p, 0)
        waiting = [
            g
            for g in (f"g{i}" for i in range(40))
            if not fresh.runtime.active(fresh.partition_for(g))
        ]
        assert waiting, "loading finished in one step"
        g = waiting[-1]
        assert fresh.check_available(g) == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        assert join(fresh, g).result.error == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        assert fresh.fetch_offsets(g, None)[0] == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        assert fresh.list_groups()[0] == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        for _ in range(500):
            if fresh.fully_loaded:
                break
            await asyncio.sleep(0.01)
        assert fresh.check_available(g) == ErrorCode.NONE
        assert fresh.fetch_offsets(g, None)[1][0][1][0].offset == int(g[1:])
        fresh.shutdown()

    asyncio.run(scenario())
