"""The controller of a single-node cluster: topic creation, deletion and partitions, on one log dir."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from strom.cluster.metadata import (
    INTERNAL_TOPICS,
    BrokerMeta,
    MetadataImage,
    PartitionMeta,
    TopicMeta,
    new_topic_id,
    topic_id_from_str,
    topic_id_str,
)
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.config import LogConfig
from strom.storage.manager import LogManager, validate_topic_name

log = logging.getLogger(__name__)

PARTITION_METADATA = "partition.metadata"
MAX_PARTITIONS = 100_000  # per topic; a guard against requests that would exhaust the disk


def _write_partition_metadata(directory: str, topic_id: bytes) -> None:
    path = os.path.join(directory, PARTITION_METADATA)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"version: 0\ntopic_id: {topic_id_str(topic_id)}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_partition_metadata(directory: str) -> bytes | None:
    try:
        with open(os.path.join(directory, PARTITION_METADATA), encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "topic_id":
                    return topic_id_from_str(value.strip())
    except (OSError, ValueError):
        return None
    return None


class LocalController:
    """Owns the metadata image of a one-broker cluster and keeps it in step with the logs."""

    def __init__(self, node_id: int, cluster_id: str, logs: LogManager, broker: BrokerMeta) -> None:
        self.node_id = node_id
        self.logs = logs
        self.image = MetadataImage(cluster_id=cluster_id, controller_id=node_id)
        self.image.brokers[node_id] = broker
        self._load()

    def _load(self) -> None:
        """Rebuild topics from the partition directories (and their topic ids) on disk."""
        by_topic: dict[str, list[int]] = {}
        for topic, partition in self.logs.partitions():
            by_topic.setdefault(topic, []).append(partition)
        for topic, parts in sorted(by_topic.items()):
            parts.sort()
            if parts != list(range(len(parts))):
                log.warning("topic %s has partitions %s on disk (a gap)", topic, parts)
            topic_id = None
            for p in parts:
                lg = self.logs.get_log(topic, p)
                if lg is not None:
                    topic_id = topic_id or _read_partition_metadata(lg.dir)
            if topic_id is None:
                topic_id = new_topic_id()
            for p in parts:
                lg = self.logs.get_log(topic, p)
                if lg is not None and _read_partition_metadata(lg.dir) != topic_id:
                    _write_partition_metadata(lg.dir, topic_id)
            self.image.add_topic(self._topic_meta(topic, topic_id, parts[-1] + 1))
        log.info("loaded %d topics", len(self.image.topics))

    def _topic_meta(self, name: str, topic_id: bytes, partitions: int) -> TopicMeta:
        node = self.node_id
        return TopicMeta(
            name=name,
            topic_id=topic_id,
            partitions=[PartitionMeta(p, node, 0, [node], [node]) for p in range(partitions)],
            internal=name in INTERNAL_TOPICS,
        )

    def check_new_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        configs: Mapping[str, str | None],
    ) -> LogConfig:
        """Validate a CreateTopics entry as Kafka would; return the topic's config."""
        validate_topic_name(name)
        if name in self.image.topics:
            raise KafkaError(f"Topic '{name}' already exists.", ErrorCode.TOPIC_ALREADY_EXISTS)
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise KafkaError(
                f"Number of partitions must be between 1 and {MAX_PARTITIONS}.",
                ErrorCode.INVALID_PARTITIONS,
            )
        brokers = len(self.image.brokers)
        if replication_factor < 1:
            raise KafkaError(
                "Replication factor must be larger than 0.", ErrorCode.INVALID_REPLICATION_FACTOR
            )
        if replication_factor > brokers:
            raise KafkaError(
                f"Replication factor: {replication_factor} larger than available brokers: "
                f"{brokers}.",
                ErrorCode.INVALID_REPLICATION_FACTOR,
            )
        return LogConfig.from_props(
            {k: v for k, v in configs.items() if v is not None}, self.logs.default_config
        )

    def create_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int = 1,
        configs: Mapping[str, str | None] | None = None,
    ) -> TopicMeta:
        self.check_new_topic(name, partitions, replication_factor, configs or {})
        # Only the request's configs become the topic's overrides (the checked LogConfig's
        # overrides also hold the broker-level defaults, which must stay broker-level).
        overrides = {k: v for k, v in (configs or {}).items() if v is not None}
        topic_id = new_topic_id()
        for p in range(partitions):
            lg = self.logs.create_log(name, p, overrides)
            _write_partition_metadata(lg.dir, topic_id)
        topic = self._topic_meta(name, topic_id, partitions)
        self.image.add_topic(topic)
        log.info("created topic %s with %d partitions", name, partitions)
        return topic

    def delete_topic(self, name: str) -> TopicMeta:
        topic = self.image.topics.get(name)
        if topic is None:
            raise KafkaError(
                f"This server does not host topic {name}", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            )
        self.image.remove_topic(name)
        self.logs.delete_topic(name)
        log.info("deleted topic %s", name)
        return topic

    def check_create_partitions(self, name: str, count: int) -> TopicMeta:
        topic = self.image.topics.get(name)
        if topic is None:
            raise KafkaError(
                f"This server does not host topic {name}", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            )
        current = len(topic.partitions)
        if count < current:
            raise KafkaError(
                f"Topic currently has {current} partitions, which is higher than the requested "
                f"{count}.",
                ErrorCode.INVALID_PARTITIONS,
            )
        if count == current:
            raise KafkaError(
                f"Topic already has {current} partitions.", ErrorCode.INVALID_PARTITIONS
            )
        if count > MAX_PARTITIONS:
            raise KafkaError(
                f"Number of partitions must be at most {MAX_PARTITIONS}.",
                ErrorCode.INVALID_PARTITIONS,
            )
        return topic

    def create_partitions(self, name: str, count: int) -> TopicMeta:
        topic = self.check_create_partitions(name, count)
        node = self.node_id
        for p in range(len(topic.partitions), count):
            lg = self.logs.create_log(name, p)
            _write_partition_metadata(lg.dir, topic.topic_id)
            topic.partitions.append(PartitionMeta(p, node, 0, [node], [node]))
        log.info("topic %s now has %d partitions", name, count)
        return topic
