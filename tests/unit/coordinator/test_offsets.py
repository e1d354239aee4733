"""OffsetCommit / OffsetFetch / OffsetDelete validation, and their errors."""

from __future__ import annotations

from strom.coordinator.group import OffsetToCommit
from strom.protocol.errors import ErrorCode

from .helpers import join, join_new, sync


def _commit(c, group, offsets, generation=-1, member="", instance=None, version=8):  # noqa: ANN001, ANN202
    topics: dict[str, list] = {}
    for topic, partition, offset in offsets:
        topics.setdefault(topic, []).append(OffsetToCommit(partition, offset, 0, "meta"))
    results = c.commit_offsets(group, generation, member, instance, topics.items(), version).result
    return {(t, p): code for t, parts in results for p, code in parts}


def _stable(h, group="g", instance=None, session_ms=10_000):  # noqa: ANN001, ANN202
    c = h.coordinator
    if instance is None:
        member, d = join_new(c, group, session_ms=session_ms)
    else:
        d = join(c, group, instance_id=instance, session_ms=session_ms)
    h.timer.advance(0)
    member = d.result.member_id
    gen = d.result.generation
    sync(c, group, gen, member, [(member, b"x")])
    return member, gen


def test_simple_commit_and_fetch(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    codes = _commit(c, "simple", [("orders", 0, 5), ("orders", 1, 7), ("audit", 0, 1)])
    assert set(codes.values()) == {ErrorCode.NONE}
    error, found = c.fetch_offsets("simple", [("orders", [0, 1, 2])])
    assert error == ErrorCode.NONE
    [(topic, parts)] = found
    assert [(p.partition, p.offset, p.metadata) for p in parts] == [
        (0, 5, "meta"),
        (1, 7, "meta"),
        (2, -1, ""),
    ]
    error, every = c.fetch_offsets("simple", None)
    assert {t: [p.offset for p in ps] for t, ps in every} == {"audit": [1], "orders": [5, 7]}
    assert c.fetch_offsets("nobody", [("orders", [0])])[1][0][1][0].offset == -1


def test_commit_errors(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    codes = _commit(c, "g", [("nope", 0, 1), ("orders", 99, 1), ("orders", 0, 1)])
    assert codes == {
        ("nope", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ("orders", 99): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ("orders", 0): ErrorCode.NONE,
    }
    big = c.commit_offsets(
        "g", -1, "", None, [("orders", [OffsetToCommit(0, 1, -1, "x" * 5000)])]
    ).result
    assert big[0][1][0][1] == ErrorCode.OFFSET_METADATA_TOO_LARGE
    empty_id = _commit(c, "", [("orders", 0, 1)])
    assert set(empty_id.values()) == {ErrorCode.INVALID_GROUP_ID}


def test_member_commits_are_checked(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    member, gen = _stable(harness)
    ok = _commit(c, "g", [("orders", 0, 10)], gen, member)
    assert ok == {("orders", 0): ErrorCode.NONE}
    stale = _commit(c, "g", [("orders", 0, 11)], gen - 1, member)
    assert stale == {("orders", 0): ErrorCode.ILLEGAL_GENERATION}
    unknown = _commit(c, "g", [("orders", 0, 11)], gen, "stranger")
    assert unknown == {("orders", 0): ErrorCode.UNKNOWN_MEMBER_ID}
    # Without member and generation a non-empty group refuses the commit.
    anonymous = _commit(c, "g", [("orders", 0, 11)])
    assert anonymous == {("orders", 0): ErrorCode.UNKNOWN_MEMBER_ID}
    assert c.fetch_offsets("g", [("orders", [0])])[1][0][1][0].offset == 10
    # A group that does not exist: v9 says so, older versions ILLEGAL_GENERATION.
    assert _commit(c, "none", [("orders", 0, 1)], 3, "m", version=9) == {
        ("orders", 0): ErrorCode.GROUP_ID_NOT_FOUND
    }
    assert _commit(c, "none2", [("orders", 0, 1)], 3, "m", version=8) == {
        ("orders", 0): ErrorCode.ILLEGAL_GENERATION
    }


def test_fenced_static_member_commit(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    old, gen = _stable(harness, instance="i-1")
    new = join(c, "g", instance_id="i-1").result.member_id
    assert _commit(c, "g", [("orders", 0, 1)], gen, old, "i-1") == {
        ("orders", 0): ErrorCode.FENCED_INSTANCE_ID
    }
    assert _commit(c, "g", [("orders", 0, 1)], gen, new, "i-1") == {("orders", 0): ErrorCode.NONE}


def test_commit_during_rebalance(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    a, da = join_new(c, "g")
    b, db = join_new(c, "g")
    harness.timer.advance(0)
    gen = da.result.generation
    assert _commit(c, "g", [("orders", 0, 1)], gen, a) == {
        ("orders", 0): ErrorCode.REBALANCE_IN_PROGRESS
    }


def test_delete_offsets_and_groups(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    member, gen = _stable(harness)  # subscribed to "orders"
    _commit(c, "g", [("orders", 0, 1), ("audit", 0, 2)], gen, member)
    error, results = c.delete_offsets("g", [("orders", [0]), ("audit", [0])]).result
    assert error == ErrorCode.NONE
    assert results == [
        ("orders", [(0, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC)]),
        ("audit", [(0, ErrorCode.NONE)]),
    ]
    assert c.fetch_offsets("g", [("audit", [0])])[1][0][1][0].offset == -1
    assert c.delete_offsets("missing", [("audit", [0])]).result[0] == ErrorCode.GROUP_ID_NOT_FOUND
    assert c.delete_groups(["g", "missing"]).result == [
        ("g", ErrorCode.NON_EMPTY_GROUP),
        ("missing", ErrorCode.GROUP_ID_NOT_FOUND),
    ]
    c.leave_group("g", [(member, None)])
    assert c.delete_groups(["g"]).result == [("g", ErrorCode.NONE)]
    assert "g" not in c.groups
    assert c.fetch_offsets("g", None)[1] == []
    # ... and it stays deleted after a restart.
    c = harness.restart()
    assert "g" not in c.groups and c.fetch_offsets("g", None)[1] == []


def test_offsets_expire_once_the_group_is_empty(make_harness) -> None:  # noqa: ANN001
    h = make_harness(offsets_retention_ms=60_000)
    c = h.coordinator
    member, gen = _stable(h, session_ms=120_000)
    _commit(c, "g", [("orders", 0, 1), ("audit", 1, 2)], gen, member)
    _commit(c, "simple", [("orders", 0, 3)])
    h.timer.advance(30_000)
    c.heartbeat("g", gen, member, None)
    h.timer.advance(40_000)
    c.heartbeat("g", gen, member, None)
    # 70 s after the commits: the simple group's offset expires; the live group subscribes to
    # "orders" (kept) but not to "audit" (expired).
    assert c.expire_offsets() == 2
    assert "simple" not in c.groups
    assert c.fetch_offsets("g", [("orders", [0])])[1][0][1][0].offset == 1
    c.leave_group("g", [(member, None)])
    h.timer.advance(59_000)
    assert c.expire_offsets() == 0
    h.timer.advance(1_000)
    assert c.expire_offsets() == 1  # a minute after the group became empty
    assert "g" not in c.groups
    c = h.restart()
    assert c.groups == {} and c.offsets.count() == 0


def test_offsets_of_deleted_topics_go(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    member, gen = _stable(harness, session_ms=120_000)
    _commit(c, "g", [("orders", 0, 1), ("clicks", 3, 2)], gen, member)
    del harness.topics.topics["clicks"]
    assert c.expire_offsets() == 1
    assert [t for t, _ in c.fetch_offsets("g", None)[1]] == ["orders"]
