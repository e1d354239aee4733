"""What the group coordinator's parts share: the groups and committed offsets of the loaded
shards, the configuration, the clock and the way records are written (the coordinator runtime).

The parts (the classic protocol, the consumer protocol, offsets and admin in the coordinator
itself) each hold this one object; none of them imports another.
"""

from __future__ import annotations

import functools

from strom.coordinator.deferred import Deferred
from strom.coordinator.group.classic import ClassicGroup
from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.consumer import ConsumerGroup
from strom.coordinator.group.offsets import OffsetStore
from strom.coordinator.group.records import (
    Record,
    consumer_group_metadata_record,
    group_metadata_record,
    partition_for,
    partition_metadata_record,
    target_assignment_metadata_record,
)
from strom.coordinator.group.timer import Timer
from strom.coordinator.group.topics import TopicsView
from strom.coordinator.runtime import CoordinatorRuntime
from strom.protocol.errors import ErrorCode

Group = ClassicGroup | ConsumerGroup


class GroupState:
    """Groups and offsets by group id (of every shard this broker holds), and their writer."""

    def __init__(
        self,
        config: GroupConfig,
        topics: TopicsView,
        timer: Timer,
        runtime: CoordinatorRuntime,
    ) -> None:
        self.config = config
        self.topics = topics
        self.timer = timer
        self.runtime = runtime
        self.groups: dict[str, Group] = {}
        self.offsets = OffsetStore()
        self.pending_total = 0  # member ids handed out (MEMBER_ID_REQUIRED) not yet joined
        self.started = False

    def now_ms(self) -> int:
        return self.timer.now_ms()

    def partition_for(self, group_id: str) -> int:
        return _partition_for(group_id, self.config.offsets_topic_partitions)

    def check_available(self, group_id: str) -> ErrorCode:
        """NONE if this coordinator serves the group now."""
        if not self.started:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        return self.runtime.status(self.partition_for(group_id))

    def write(self, group_id: str, records: list[Record]) -> Deferred[ErrorCode]:
        """Write records to the group's shard: NONE once they are committed and applied (by
        the coordinator's replay), else the append's error (see errors.write_error)."""
        return self.runtime.write(self.partition_for(group_id), records, self.now_ms())

    def group_tombstones(self, group: Group) -> list[Record]:
        """The records deleting a group's metadata (its offsets are separate)."""
        if isinstance(group, ClassicGroup):
            return [group_metadata_record(group.group_id, None)]
        gid = group.group_id
        return [
            target_assignment_metadata_record(gid, None),
            partition_metadata_record(gid, None),
            consumer_group_metadata_record(gid, None),
        ]


@functools.lru_cache(maxsize=4096)
def _partition_for(group_id: str, partitions: int) -> int:
    return partition_for(group_id, partitions)
