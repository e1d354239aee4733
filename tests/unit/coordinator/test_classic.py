"""The classic group state machine, driven without sockets on a fake clock."""

from __future__ import annotations

from strom.coordinator.group.classic import ClassicState
from strom.protocol.errors import ErrorCode

from .helpers import join, join_new, subscription, sync


def _form(h, group: str = "g", n: int = 1, **kw):  # noqa: ANN001, ANN202
    """n members join (within the initial delay), the join completes, the leader syncs."""
    c = h.coordinator
    pending = [join_new(c, group, **kw) for _ in range(n)]
    h.timer.advance(h.config.initial_rebalance_delay_ms)
    results = {mid: d.result for mid, d in pending}
    assert all(r.error == ErrorCode.NONE for r in results.values()), results
    generation = next(iter(results.values())).generation
    leader = next(iter(results.values())).leader
    syncs = {
        mid: sync(
            c,
            group,
            generation,
            mid,
            [(m, m.encode()) for m in results] if mid == leader else None,
        )
        for mid in results
    }
    assert all(s.done and s.result.error == ErrorCode.NONE for s in syncs.values())
    assert c.groups[group].state == ClassicState.STABLE
    return list(results), generation, leader


def test_member_id_handshake_then_join_sync_stable(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    first = join(c, "g")
    assert first.result.error == ErrorCode.MEMBER_ID_REQUIRED
    member_id = first.result.member_id
    assert member_id.startswith("client-")
    assert c.groups["g"].pending_members == {member_id}
    d = join(c, "g", member_id=member_id)
    harness.timer.advance(0)
    r = d.result
    assert r.error == ErrorCode.NONE and r.generation == 1 and r.leader == member_id
    assert r.protocol_name == "range" and r.protocol_type == "consumer"
    assert [m[0] for m in r.members] == [member_id]
    s = sync(c, "g", 1, member_id, [(member_id, b"assigned")])
    assert s.result.error == ErrorCode.NONE and s.result.assignment == b"assigned"
    assert c.heartbeat("g", 1, member_id, None) == ErrorCode.NONE


def test_old_clients_join_without_the_handshake(harness) -> None:  # noqa: ANN001
    d = join(harness.coordinator, "g", version=3)
    harness.timer.advance(0)
    assert d.result.error == ErrorCode.NONE and d.result.generation == 1


def test_initial_delay_gathers_members_and_extends(make_harness) -> None:  # noqa: ANN001
    h = make_harness(initial_rebalance_delay_ms=3000)
    c = h.coordinator
    a, da = join_new(c, "g")
    h.timer.advance(2000)
    b, db = join_new(c, "g")
    h.timer.advance(1000)  # the first delay ends; a member arrived during it: wait again
    assert not da.done and not db.done
    h.timer.advance(3000)
    assert da.result.generation == db.result.generation == 1
    leader = da.result.leader
    assert leader == a
    assert {m[0] for m in da.result.members} == {a, b}
    assert db.result.members == []  # followers get no member list


def test_follower_waits_for_the_leaders_assignment(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    a, da = join_new(c, "g")
    b, db = join_new(c, "g")
    harness.timer.advance(0)
    gen = da.result.generation
    follower = sync(c, "g", gen, b)
    assert not follower.done
    assert c.groups["g"].state == ClassicState.COMPLETING_REBALANCE
    sync(c, "g", gen, a, [(a, b"A"), (b, b"B")])
    assert follower.result.assignment == b"B"
    # A commit while the group completes a rebalance is refused, after it is fine.
    assert c.groups["g"].state == ClassicState.STABLE


def test_leave_rebalances_the_rest(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    (a, b), gen, _ = _form(harness, n=2)
    error, results = c.leave_group("g", [(b, None)])
    assert error == ErrorCode.NONE and results == [(b, None, ErrorCode.NONE)]
    assert c.groups["g"].state == ClassicState.PREPARING_REBALANCE
    assert c.heartbeat("g", gen, a, None) == ErrorCode.REBALANCE_IN_PROGRESS
    rejoin = join(c, "g", member_id=a)
    assert rejoin.done  # everyone left has rejoined: no waiting for the timeout
    assert rejoin.result.generation == gen + 1 and rejoin.result.leader == a
    assert c.heartbeat("g", gen, b, None) == ErrorCode.UNKNOWN_MEMBER_ID


def test_session_timeout_removes_a_silent_member(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    (a, b), gen, _ = _form(harness, n=2, session_ms=6000)
    for _ in range(2):
        harness.timer.advance(2000)
        assert c.heartbeat("g", gen, a, None) == ErrorCode.NONE
    assert b in c.groups["g"].members
    harness.timer.advance(2000)
    # b never heartbeated: gone after 6 s, and a is told to rejoin.
    assert b not in c.groups["g"].members
    assert c.heartbeat("g", gen, a, None) == ErrorCode.REBALANCE_IN_PROGRESS


def test_rebalance_timeout_removes_members_that_do_not_rejoin(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    (a, b), gen, _ = _form(harness, n=2, session_ms=60_000, rebalance_ms=5000)
    d = join(c, "g", member_id=a, rebalance_ms=5000)  # the leader rejoins: a rebalance
    assert not d.done
    harness.timer.advance(4999)
    assert not d.done
    harness.timer.advance(1)
    assert d.result.error == ErrorCode.NONE and d.result.generation == gen + 1
    assert [m[0] for m in d.result.members] == [a]


def test_member_that_never_syncs_is_removed(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    a, da = join_new(c, "g", rebalance_ms=5000, session_ms=60_000)
    b, db = join_new(c, "g", rebalance_ms=5000, session_ms=60_000)
    harness.timer.advance(0)
    gen = da.result.generation
    sync(c, "g", gen, da.result.leader, [(a, b"A"), (b, b"B")])
    other = b if da.result.leader == a else a
    harness.timer.advance(5000)
    assert other not in c.groups["g"].members
    assert c.groups["g"].state == ClassicState.PREPARING_REBALANCE


def test_static_member_restart_keeps_its_place_without_rebalance(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    first = join(c, "g", instance_id="i-1")
    second = join(c, "g", instance_id="i-2")
    assert first.done is False and second.done is False  # static members skip the handshake
    harness.timer.advance(0)
    gen = first.result.generation
    old_a, old_b = first.result.member_id, second.result.member_id
    leader = first.result.leader
    sync(c, "g", gen, leader, [(old_a, b"A"), (old_b, b"B")])
    sync(c, "g", gen, old_b if leader == old_a else old_a)
    # i-2 restarts: a new member id, same instance id.
    again = join(c, "g", instance_id="i-2")
    r = again.result
    assert r.error == ErrorCode.NONE and r.generation == gen and r.member_id != old_b
    assert c.groups["g"].state == ClassicState.STABLE
    s = sync(c, "g", gen, r.member_id, instance_id="i-2")
    assert s.result.assignment == b"B"
    # The old id is fenced; the new one heartbeats; the other member never noticed.
    assert c.heartbeat("g", gen, old_b, "i-2") == ErrorCode.FENCED_INSTANCE_ID
    assert c.heartbeat("g", gen, r.member_id, "i-2") == ErrorCode.NONE
    assert c.heartbeat("g", gen, old_a, "i-1") == ErrorCode.NONE


def test_static_leader_rejoin_gets_members_and_skip_assignment(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    d = join(c, "g", instance_id="i-1")
    harness.timer.advance(0)
    gen, old = d.result.generation, d.result.member_id
    sync(c, "g", gen, old, [(old, b"A")])
    again = join(c, "g", instance_id="i-1").result
    assert again.leader == again.member_id and again.skip_assignment
    assert [m[0] for m in again.members] == [again.member_id]


def test_protocol_selection_lets_eager_and_cooperative_members_meet(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    coop = [("cooperative-sticky", subscription("orders")), ("range", subscription("orders"))]
    eager = [("range", subscription("orders"))]
    _, d1 = join_new(c, "mixed", protocols=coop)
    _, d2 = join_new(c, "mixed", protocols=eager)
    harness.timer.advance(0)
    assert d1.result.protocol_name == d2.result.protocol_name == "range"
    _, d3 = join_new(c, "coop", protocols=coop)
    _, d4 = join_new(c, "coop", protocols=coop)
    harness.timer.advance(0)
    assert d3.result.protocol_name == "cooperative-sticky"
    # A member with nothing in common is refused.
    bad = join(c, "coop", protocols=[("roundrobin", b"")])
    assert bad.result.error == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    other = join(c, "coop", protocol_type="connect", protocols=coop)
    assert other.result.error == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


def test_bad_requests_get_kafkas_errors(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    assert join(c, "g", session_ms=10).result.error == ErrorCode.INVALID_SESSION_TIMEOUT
    assert join(c, "").result.error == ErrorCode.INVALID_GROUP_ID
    assert join(c, "nope", member_id="who").result.error == ErrorCode.UNKNOWN_MEMBER_ID
    (a,), gen, _ = _form(harness)
    assert c.heartbeat("g", gen + 1, a, None) == ErrorCode.ILLEGAL_GENERATION
    assert c.heartbeat("g", gen, "stranger", None) == ErrorCode.UNKNOWN_MEMBER_ID
    assert c.heartbeat("missing", 1, a, None) == ErrorCode.UNKNOWN_MEMBER_ID
    assert sync(c, "g", gen - 1, a).result.error == ErrorCode.ILLEGAL_GENERATION
    assert sync(c, "g", gen, "stranger").result.error == ErrorCode.UNKNOWN_MEMBER_ID
    assert c.heartbeat("g", gen, a, "not-static") == ErrorCode.UNKNOWN_MEMBER_ID
    _, results = c.leave_group("g", [("stranger", None), ("", "ghost")])
    assert [r[2] for r in results] == [ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.UNKNOWN_MEMBER_ID]
    wrong = c.sync_group("g", gen, a, None, "connect", None, [])
    assert wrong.result.error == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


def test_join_flood_is_bounded_and_forgotten(make_harness) -> None:  # noqa: ANN001
    h = make_harness(max_pending_members=100)
    c = h.coordinator
    codes = [join(c, "flood", session_ms=6000).result.error for _ in range(250)]
    assert codes.count(ErrorCode.MEMBER_ID_REQUIRED) == 100
    assert codes.count(ErrorCode.GROUP_MAX_SIZE_REACHED) == 150
    assert len(c.groups["flood"].pending_members) == 100
    assert c.pending_total == 100
    h.timer.advance(6000)
    assert "flood" not in c.groups  # every pending id expired: nothing was ever kept
    assert c.pending_total == 0
    assert h.timer.pending == 0


def test_join_flood_over_many_groups_is_bounded(make_harness) -> None:  # noqa: ANN001
    h = make_harness(max_pending_members_total=500)
    c = h.coordinator
    codes = [join(c, f"flood-{i}", session_ms=6000).result.error for i in range(800)]
    assert codes.count(ErrorCode.MEMBER_ID_REQUIRED) == 500
    assert codes.count(ErrorCode.GROUP_MAX_SIZE_REACHED) == 300
    assert len(c.groups) <= 800
    h.timer.advance(6000)
    assert c.groups == {} and c.pending_total == 0


def test_group_max_size(make_harness) -> None:  # noqa: ANN001
    h = make_harness(max_size=2)
    c = h.coordinator
    join_new(c, "g")
    join_new(c, "g")
    third = join(c, "g", member_id=join(c, "g").result.member_id)
    assert third.result.error == ErrorCode.GROUP_MAX_SIZE_REACHED


def test_everyone_leaving_empties_the_group(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    (a,), gen, _ = _form(harness)
    c.leave_group("g", [(a, None)])
    group = c.groups["g"]
    assert group.state == ClassicState.EMPTY and group.generation == gen + 1
    assert group.protocol_name is None


def test_describe_and_list(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    (a,), gen, _ = _form(harness)
    [d] = c.describe_groups(["g"])
    assert (d.state, d.protocol_type, d.protocol_data) == ("Stable", "consumer", "range")
    assert [m.member_id for m in d.members] == [a]
    assert d.members[0].assignment == a.encode()
    assert d.members[0].metadata == subscription("orders")
    [missing] = c.describe_groups(["missing"])
    assert missing.error == ErrorCode.NONE and missing.state == "Dead"
    error, groups = c.list_groups()
    assert error == ErrorCode.NONE
    assert [(g.group_id, g.state, g.type) for g in groups] == [("g", "Stable", "classic")]
    assert c.list_groups(states=["empty"])[1] == []
    assert c.list_groups(types=["consumer"])[1] == []
