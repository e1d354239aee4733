"""Partition administration as Kafka 3.9 does it: adding partitions (with manual assignments),
deleting records below an offset, and describing the log directory.

Pure functions over the controller, partitions and log manager, so tests reach them without a
socket; broker/handlers/partitions_admin.py and cluster.py only decode and encode.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from strom.broker.partition import Partition
from strom.cluster.controller import LocalController
from strom.cluster.metadata import INTERNAL_TOPICS, TopicMeta
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.manager import LogManager

LONG_MAX = (1 << 63) - 1


def _bad_assignment(message: str) -> KafkaError:
    return KafkaError(message, ErrorCode.INVALID_REPLICA_ASSIGNMENT)


def check_assignments(
    topic: TopicMeta,
    count: int,
    assignments: Sequence[Sequence[int]] | None,
    brokers: Collection[int],
) -> None:
    """Manual replica assignments for the partitions CreatePartitions adds: one per new
    partition, each naming registered brokers once, as many as the existing partitions have."""
    if assignments is None:
        return
    start = len(topic.partitions)
    additional = count - start
    if len(assignments) != additional:
        raise _bad_assignment(
            f"Attempted to add {additional} additional partition(s), but only "
            f"{len(assignments)} assignment(s) were specified."
        )
    replication_factor = len(topic.partitions[0].replicas) if topic.partitions else 1
    for replicas in assignments:
        if not replicas:
            raise _bad_assignment("The manual partition assignment includes an empty replica list.")
        seen: set[int] = set()
        for broker_id in sorted(replicas):
            if broker_id not in brokers:
                raise _bad_assignment(
                    f"The manual partition assignment includes broker {broker_id}, but no "
                    "such broker is registered."
                )
            if broker_id in seen:
                raise _bad_assignment(
                    f"The manual partition assignment includes the broker {broker_id} more "
                    "than once."
                )
            seen.add(broker_id)
        if len(replicas) != replication_factor:
            raise _bad_assignment(
                f"The manual partition assignment includes a partition with {len(replicas)} "
                "replica(s), but this is not consistent with previous partitions, which have "
                f"{replication_factor} replica(s)."
            )


async def create_partitions(
    controller: LocalController,
    name: str,
    count: int,
    assignments: Sequence[Sequence[int]] | None,
    validate_only: bool,
) -> TopicMeta:
    """Grow a topic to `count` partitions (or only check that it could be grown)."""
    topic = controller.check_create_partitions(name, count)
    check_assignments(topic, count, assignments, controller.image.brokers)
    if validate_only:
        return topic
    return await controller.create_partitions(name, count)


def delete_records(partition: Partition, offset: int) -> int:
    """DeleteRecords for one partition: move its log start offset up to `offset` (-1: the
    high watermark). Returns the new low watermark."""
    if partition.topic in INTERNAL_TOPICS:
        raise KafkaError(
            f"Cannot delete records of internal topic {partition.topic}",
            ErrorCode.INVALID_TOPIC_EXCEPTION,
        )
    return partition.delete_records(offset)


@dataclass(slots=True)
class LogDirPartition:
    partition: int
    size: int
    offset_lag: int = 0
    is_future: bool = False


@dataclass(slots=True)
class LogDir:
    path: str
    total_bytes: int
    usable_bytes: int
    topics: dict[str, list[LogDirPartition]] = field(default_factory=dict)


def _volume_bytes(path: str) -> tuple[int, int]:
    st = os.statvfs(path)
    total, usable = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    return min(total, LONG_MAX), min(usable, LONG_MAX)


def describe_log_dir(logs: LogManager, wanted: Collection[tuple[str, int]] | None) -> LogDir:
    """The data dir with the size of each partition's log (`wanted` None: every partition).

    As in Kafka, every topic in the dir is listed, with only the wanted partitions in it (a
    topic none of whose partitions is wanted appears with an empty list)."""
    total, usable = _volume_bytes(logs.data_dir)
    out = LogDir(logs.data_dir, total, usable)
    for lg in sorted(logs.logs(), key=lambda x: (x.topic, x.partition)):
        parts = out.topics.setdefault(lg.topic, [])
        if wanted is None or (lg.topic, lg.partition) in wanted:
            parts.append(LogDirPartition(lg.partition, lg.size))
    return out
