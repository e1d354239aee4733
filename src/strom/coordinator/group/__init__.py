"""The group coordinator: classic and consumer (KIP-848) groups, offsets in __consumer_offsets."""

from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.coordinator import GroupCoordinator, OffsetToCommit
from strom.coordinator.group.records import OFFSETS_TOPIC, partition_for
from strom.coordinator.group.storage import ImageTopics, RecordLog, StaticTopics
from strom.coordinator.group.timer import LoopTimer, ManualTimer

__all__ = [
    "OFFSETS_TOPIC",
    "GroupConfig",
    "GroupCoordinator",
    "ImageTopics",
    "LoopTimer",
    "ManualTimer",
    "OffsetToCommit",
    "RecordLog",
    "StaticTopics",
    "partition_for",
]
