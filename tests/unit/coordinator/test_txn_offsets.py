"""Offsets committed inside a transaction (TxnOffsetCommit): pending until the marker, then
the group's offsets (commit) or gone (abort), after a restart too."""

from __future__ import annotations

from strom.coordinator.group import OffsetToCommit
from strom.protocol.errors import ErrorCode


def _fetched(c, group: str) -> dict:  # noqa: ANN001
    error, topics = c.fetch_offsets(group, None)
    assert error == ErrorCode.NONE
    return {(t, f.partition): f.offset for t, parts in topics for f in parts}


def test_pending_until_the_marker(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    p = c.partition_for("g")
    commits = [("orders", [OffsetToCommit(0, 10), OffsetToCommit(1, 11)])]
    result = c.commit_txn_offsets("g", 42, 0, -1, "", None, commits).result
    assert result == [("orders", [(0, ErrorCode.NONE), (1, ErrorCode.NONE)])]
    assert _fetched(c, "g") == {}  # not before the transaction commits
    c.commit_txn_offsets("g", 43, 0, -1, "", None, [("audit", [OffsetToCommit(0, 5)])])
    assert c.complete_transaction(p, 42, 0, True, 0).result == ErrorCode.NONE
    assert _fetched(c, "g") == {("orders", 0): 10, ("orders", 1): 11}
    assert c.complete_transaction(p, 43, 0, False, 0).result == ErrorCode.NONE
    assert _fetched(c, "g") == {("orders", 0): 10, ("orders", 1): 11}  # the abort left none
    # the log says the same after a restart
    c = harness.restart()
    assert _fetched(c, "g") == {("orders", 0): 10, ("orders", 1): 11}


def test_restart_keeps_an_open_transactions_offsets_pending(harness) -> None:  # noqa: ANN001
    c = harness.coordinator
    c.commit_txn_offsets("g", 7, 0, -1, "", None, [("orders", [OffsetToCommit(2, 99)])])
    c = harness.restart()
    assert _fetched(c, "g") == {}
    assert c.complete_transaction(c.partition_for("g"), 7, 0, True, 0).result == ErrorCode.NONE
    assert _fetched(c, "g") == {("orders", 2): 99}


def test_a_stale_generation_is_refused(harness) -> None:  # noqa: ANN001
    from .helpers import join_new, sync

    c = harness.coordinator
    member, joined = join_new(c, "live")
    harness.timer.advance(0)
    gen = joined.result.generation
    assert sync(c, "live", gen, member, [(member, b"")]).result.error == ErrorCode.NONE
    commits = [("orders", [OffsetToCommit(0, 1)])]
    stale = c.commit_txn_offsets("live", 1, 0, gen + 1, member, None, commits).result
    assert stale == [("orders", [(0, ErrorCode.ILLEGAL_GENERATION)])]
    ok = c.commit_txn_offsets("live", 1, 0, gen, member, None, commits).result
    assert ok == [("orders", [(0, ErrorCode.NONE)])]
