"""Committed offsets per group, as the OffsetCommit records of __consumer_offsets left them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int
    expire_timestamp: int = -1


class OffsetStore:
    """group -> (topic, partition) -> committed offset; set and removed only by replay. Offsets
    committed inside a transaction (TxnOffsetCommit) wait apart, by producer id, until its
    marker: a commit makes them the group's offsets, an abort drops them."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[tuple[str, int], CommittedOffset]] = {}
        self._pending: dict[int, dict[str, dict[tuple[str, int], CommittedOffset]]] = {}

    def put_pending(
        self, producer_id: int, group: str, topic: str, partition: int, value: CommittedOffset
    ) -> None:
        self._pending.setdefault(producer_id, {}).setdefault(group, {})[(topic, partition)] = value

    def end_txn(self, producer_id: int, commit: bool, groups: Callable[[str], bool]) -> int:
        """End a producer's transaction for the groups `groups` accepts: their pending offsets
        become committed (or are dropped); how many."""
        pending = self._pending.get(producer_id)
        if not pending:
            return 0
        n = 0
        for group in [g for g in pending if groups(g)]:
            offsets = pending.pop(group)
            n += len(offsets)
            if commit:
                for (topic, partition), value in offsets.items():
                    self.put(group, topic, partition, value)
        if not pending:
            del self._pending[producer_id]
        return n

    def has_pending(self, group: str, topic: str, partition: int) -> bool:
        return any(
            (topic, partition) in by_group.get(group, {}) for by_group in self._pending.values()
        )

    def put(self, group: str, topic: str, partition: int, value: CommittedOffset) -> None:
        self._groups.setdefault(group, {})[(topic, partition)] = value

    def delete(self, group: str, topic: str, partition: int) -> None:
        offsets = self._groups.get(group)
        if offsets is not None:
            offsets.pop((topic, partition), None)
            if not offsets:
                del self._groups[group]

    def get(self, group: str, topic: str, partition: int) -> CommittedOffset | None:
        offsets = self._groups.get(group)
        return None if offsets is None else offsets.get((topic, partition))

    def of_group(self, group: str) -> dict[tuple[str, int], CommittedOffset]:
        return self._groups.get(group, {})

    def has_offsets(self, group: str) -> bool:
        return bool(self._groups.get(group))

    def drop_group(self, group: str) -> None:
        """Forget a group's offsets in memory (its shard was unloaded; the log keeps them)."""
        self._groups.pop(group, None)
        for producer_id, by_group in list(self._pending.items()):
            by_group.pop(group, None)
            if not by_group:
                del self._pending[producer_id]

    def groups(self) -> list[str]:
        return list(self._groups)

    def count(self) -> int:
        return sum(len(v) for v in self._groups.values())
