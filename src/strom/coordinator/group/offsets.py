"""Committed offsets per group, as the OffsetCommit records of __consumer_offsets left them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int
    expire_timestamp: int = -1


class OffsetStore:
    """group -> (topic, partition) -> committed offset; set and removed only by replay."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[tuple[str, int], CommittedOffset]] = {}

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

    def groups(self) -> list[str]:
        return list(self._groups)

    def count(self) -> int:
        return sum(len(v) for v in self._groups.values())
