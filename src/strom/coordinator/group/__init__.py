"""The group coordinator: classic and consumer (KIP-848) groups, offsets in __consumer_offsets."""

from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.coordinator import GroupCoordinator
from strom.coordinator.group.records import OFFSETS_TOPIC, partition_for
from strom.coordinator.group.results import OffsetToCommit
from strom.coordinator.group.timer import LoopTimer, ManualTimer
from strom.coordinator.group.topics import ImageTopics, StaticTopics

__all__ = [
    "OFFSETS_TOPIC",
    "GroupConfig",
    "GroupCoordinator",
    "ImageTopics",
    "LoopTimer",
    "ManualTimer",
    "OffsetToCommit",
    "StaticTopics",
    "partition_for",
]
