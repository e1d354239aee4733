"""KIP-848 consumer groups: epochs, server-side assignment, revoke-before-assign."""

from __future__ import annotations

from strom.coordinator.group.consumer import ConsumerGroupState, MemberState
from strom.coordinator.group.consumer_ops import ConsumerHeartbeat
from strom.protocol.errors import ErrorCode

from .conftest import TOPICS

ORDERS = TOPICS["orders"][0]
AUDIT = TOPICS["audit"][0]


def hb(c, member, epoch, owned=None, topics=None, group="cg", **kw):  # noqa: ANN001, ANN202
    if epoch == 0:
        topics = topics or ["orders"]
        owned = {} if owned is None else owned
        kw.setdefault("rebalance_timeout_ms", 30_000)
    return c.consumer_group_heartbeat(
        ConsumerHeartbeat(group, member, epoch, subscribed_topic_names=topics, owned=owned, **kw)
    ).result


def parts(assignment) -> set:  # noqa: ANN001
    return {(t, p) for t, ps in (assignment or {}).items() for p in ps}


def test_first_member_gets_everything(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    r = hb(c, "a", 0)
    assert r.error == ErrorCode.NONE and r.member_epoch == 1
    assert parts(r.assignment) == {(ORDERS, p) for p in range(6)}
    assert r.heartbeat_interval_ms == harness.config.consumer_heartbeat_interval_ms
    group = c.groups["cg"]
    assert group.state() == ConsumerGroupState.STABLE and group.epoch == 1
    # Nothing changed: no assignment in the answer.
    again = hb(c, "a", 1)
    assert again.member_epoch == 1 and again.assignment is None


def test_v0_members_get_an_id_from_the_coordinator(harness) -> None:  # noqa: ANN001
    r = hb(harness.coordinator, "", 0)
    assert r.error == ErrorCode.NONE and r.member_id
    v1 = hb(harness.coordinator, "", 0, api_version=1)
    assert v1.error == ErrorCode.INVALID_REQUEST


def test_partitions_are_revoked_before_they_move(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    hb(c, "a", 0)
    b = hb(c, "b", 0)
    # b joined (epoch 2) but every partition b should get is still a's.
    assert b.member_epoch == 2 and parts(b.assignment) == set()
    assert c.groups["cg"].members["b"].state == MemberState.UNRELEASED_PARTITIONS
    # a is told to give up three partitions; it stays at epoch 1 until it does.
    a2 = hb(c, "a", 1)
    kept = parts(a2.assignment)
    assert a2.member_epoch == 1 and len(kept) == 3
    assert c.groups["cg"].members["a"].state == MemberState.UNREVOKED_PARTITIONS
    # Still reporting the old partitions: nothing moves.
    assert hb(c, "a", 1, owned={ORDERS: set(range(6))}).member_epoch == 1
    assert parts(hb(c, "b", 2).assignment) == set()
    # a acknowledges: it moves to epoch 2, and b gets the released partitions.
    owned = {ORDERS: {p for _, p in kept}}
    a3 = hb(c, "a", 1, owned=owned)
    assert a3.member_epoch == 2 and parts(a3.assignment) == kept
    b2 = hb(c, "b", 2, owned={})
    assert parts(b2.assignment) == {(ORDERS, p) for p in range(6)} - kept
    assert c.groups["cg"].state() == ConsumerGroupState.STABLE
    # Every partition has exactly one owner.
    assert sorted(p for _, p in c.groups["cg"].owners) == list(range(6))


def test_leave_and_session_timeout_hand_partitions_over(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    hb(c, "a", 0)
    hb(c, "b", 0)
    a = hb(c, "a", 1)
    hb(c, "a", 1, owned={ORDERS: {p for _, p in parts(a.assignment)}})
    b = hb(c, "b", 2, owned={})
    assert len(parts(b.assignment)) == 3
    left = hb(c, "a", -1)
    assert left.member_epoch == -1
    b2 = hb(c, "b", 2, owned={ORDERS: {p for _, p in parts(b.assignment)}})
    assert b2.member_epoch == 3 and len(parts(b2.assignment)) == 6
    # A third member that stops heartbeating is fenced after the session timeout.
    hb(c, "c", 0)
    harness.timer.advance(harness.config.consumer_session_timeout_ms - 1)
    assert "c" in c.groups["cg"].members
    assert hb(c, "b", c.groups["cg"].members["b"].member_epoch).error == ErrorCode.NONE
    harness.timer.advance(1)
    assert "c" not in c.groups["cg"].members
    assert "b" in c.groups["cg"].members


def test_epoch_fencing(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    hb(c, "a", 0)
    assert hb(c, "a", 5).error == ErrorCode.FENCED_MEMBER_EPOCH
    assert hb(c, "zz", 1).error == ErrorCode.UNKNOWN_MEMBER_ID
    assert hb(c, "a", 0, rebalance_timeout_ms=-1).error == ErrorCode.INVALID_REQUEST
    assert hb(c, "a", 1, server_assignor="sticky").error == ErrorCode.UNSUPPORTED_ASSIGNOR
    assert hb(c, "a", -3).error == ErrorCode.INVALID_REQUEST
    hb(c, "b", 0)  # epoch 2
    b = c.groups["cg"].members["b"]
    assert b.member_epoch == 2
    # a revokes half of its partitions and moves to epoch 2 ...
    revoking = hb(c, "a", 1)
    kept = {p for _, p in parts(revoking.assignment)}
    assert hb(c, "a", 1, owned={ORDERS: kept}).member_epoch == 2
    # ... but the answer was lost: coming back with the previous epoch is fine.
    back = hb(c, "a", 1, owned={ORDERS: kept})
    assert back.error == ErrorCode.NONE and back.member_epoch == 2
    # Not with partitions it does not have, nor with an older epoch.
    assert hb(c, "a", 1, owned={ORDERS: set(range(6))}).error == ErrorCode.FENCED_MEMBER_EPOCH


def test_static_member_leaves_and_comes_back_without_a_rebalance(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    hb(c, "a", 0, instance_id="i-a")
    hb(c, "b", 0, instance_id="i-b")
    a = hb(c, "a", 1)
    hb(c, "a", 1, owned={ORDERS: {p for _, p in parts(a.assignment)}})
    b = hb(c, "b", 2, owned={})
    epoch = c.groups["cg"].epoch
    assert hb(c, "b", -2, instance_id="i-b").member_epoch == -2
    assert hb(c, "b2", 0, instance_id="i-a").error == ErrorCode.UNRELEASED_INSTANCE_ID
    back = hb(c, "b2", 0, instance_id="i-b")
    assert back.error == ErrorCode.NONE and parts(back.assignment) == parts(b.assignment)
    assert c.groups["cg"].epoch == epoch and "b" not in c.groups["cg"].members
    # Gone for longer than the session timeout: removed.
    hb(c, "b2", back.member_epoch)
    hb(c, "a", c.groups["cg"].members["a"].member_epoch, instance_id=None)
    assert hb(c, "a", -2, instance_id="i-a").member_epoch == -2
    harness.timer.advance(harness.config.consumer_session_timeout_ms)
    assert "a" not in c.groups["cg"].members


def test_range_assignor_and_subscription_changes(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    r = hb(c, "a", 0, topics=["orders", "audit"], server_assignor="range")
    assert parts(r.assignment) == {(ORDERS, p) for p in range(6)} | {(AUDIT, 0), (AUDIT, 1)}
    # b subscribes to audit only: range gives b the upper half of audit.
    hb(c, "b", 0, topics=["audit"], server_assignor="range")
    a = hb(c, "a", 1)
    assert c.groups["cg"].target["b"] == {AUDIT: {1}}
    assert parts(a.assignment) == {(ORDERS, p) for p in range(6)} | {(AUDIT, 0)}
    # a changes its subscription: the group epoch moves on.
    epoch = c.groups["cg"].epoch
    hb(c, "a", 1, owned={ORDERS: set(range(6)), AUDIT: {0}}, topics=["orders"])
    assert c.groups["cg"].epoch == epoch + 1


def test_consumer_group_offsets_and_describe(harness) -> None:  # noqa: ANN001
    from strom.coordinator.group import OffsetToCommit

    c = harness.coordinator
    r = hb(c, "a", 0)
    commit = [("orders", [OffsetToCommit(0, 42)])]
    ok = c.commit_offsets("cg", r.member_epoch, "a", None, commit, api_version=9).result
    assert ok == [("orders", [(0, ErrorCode.NONE)])]
    stale = c.commit_offsets("cg", r.member_epoch - 1, "a", None, commit, api_version=9).result
    assert stale[0][1][0][1] == ErrorCode.STALE_MEMBER_EPOCH
    fenced = c.commit_offsets("cg", r.member_epoch + 1, "a", None, commit, api_version=9).result
    assert fenced[0][1][0][1] == ErrorCode.FENCED_MEMBER_EPOCH
    old = c.commit_offsets("cg", r.member_epoch, "a", None, commit, api_version=8).result
    assert old[0][1][0][1] == ErrorCode.UNSUPPORTED_VERSION
    assert c.fetch_offsets("cg", [("orders", [0])], "a", r.member_epoch)[0] == ErrorCode.NONE
    assert c.fetch_offsets("cg", [("orders", [0])], "a", 99)[0] == ErrorCode.STALE_MEMBER_EPOCH
    [d] = c.consumer_group_describe(["cg"])
    assert d["state"] == "Stable" and d["assignor"] == "uniform"
    assert d["members"][0]["assignment"][0][1] == "orders"
    [missing] = c.consumer_group_describe(["nope"])
    assert missing["error"] == ErrorCode.GROUP_ID_NOT_FOUND
    assert [(g.group_id, g.type, g.protocol_type) for g in c.list_groups()[1]] == [
        ("cg", "consumer", "consumer")
    ]
    [classic_view] = c.describe_groups(["cg"])
    assert classic_view.protocol_type == "consumer" and len(classic_view.members) == 1
    # A classic join to a live consumer group is refused; once empty it converts.
    from .helpers import join

    assert join(c, "cg").result.error == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    hb(c, "a", -1)
    assert join(c, "cg").result.error == ErrorCode.MEMBER_ID_REQUIRED
    assert c.groups["cg"].kind == "classic"
    assert c.fetch_offsets("cg", [("orders", [0])])[1][0][1][0].offset == 42


def test_regex_subscription(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    r = hb(c, "a", 0, topics=[], subscribed_topic_regex="or.*|cl.*", api_version=1)
    assert {t for t, _ in parts(r.assignment)} == {ORDERS, TOPICS["clicks"][0]}
    bad = hb(c, "b", 0, topics=[], subscribed_topic_regex="(", api_version=1)
    assert bad.error == ErrorCode.INVALID_REQUEST
