"""The controller of a single-node cluster: it decides topics, placement and leaders and publishes
each change as a metadata delta; the replica manager applies it to the logs here.

Its persistent state is the data dir itself (the embedded backend): topics are the partition
directories, each with its topic id in `partition.metadata`, and their configs are the log
manager's topic config files.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from strom.cluster.metadata import (
    INTERNAL_TOPICS,
    BrokerMeta,
    MetadataDelta,
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
from strom.storage.partition_metadata import has_topic_id, read_topic_id, write_topic_id

log = logging.getLogger(__name__)

MAX_PARTITIONS = 100_000  # per topic; a guard against requests that would exhaust the disk

#: Applies a change to local state before it is published: (the new image, its delta).
Listener = Callable[[MetadataImage, MetadataDelta], Awaitable[None]]
#: Reacts to a change once it is published (the image is the controller's current one).
Observer = Callable[[MetadataImage, MetadataDelta], None]


def _topic_id_of(directory: str) -> bytes | None:
    text = read_topic_id(directory)
    try:
        return topic_id_from_str(text) if text else None
    except ValueError:
        return None


class LocalController:
    """Owns the metadata image of a one-broker cluster. Changes are serialized, and a change
    is visible in `image` only once every listener has applied it (a created topic can be
    written to as soon as CreateTopics answers)."""

    def __init__(self, node_id: int, cluster_id: str, logs: LogManager, broker: BrokerMeta) -> None:
        self.node_id = node_id
        self.logs = logs
        self.image = self._load(MetadataImage(cluster_id=cluster_id, controller_id=node_id), broker)
        self._listeners: list[Listener] = []
        self._observers: list[Observer] = []
        self._lock = asyncio.Lock()

    def subscribe(self, listener: Listener) -> None:
        """`listener` applies each change before it becomes the current image."""
        self._listeners.append(listener)

    def observe(self, observer: Observer) -> None:
        """`observer` is told of each change once it is the current image."""
        self._observers.append(observer)

    def _load(self, empty: MetadataImage, broker: BrokerMeta) -> MetadataImage:
        """Topics from the partition directories on disk (and their topic ids)."""
        by_topic: dict[str, list[int]] = {}
        for topic, partition in self.logs.partitions():
            by_topic.setdefault(topic, []).append(partition)
        topics = {}
        for topic, parts in sorted(by_topic.items()):
            parts.sort()
            if parts != list(range(len(parts))):
                log.warning("topic %s has partitions %s on disk (a gap)", topic, parts)
            dirs = [lg.dir for p in parts if (lg := self.logs.get_log(topic, p)) is not None]
            # one file per topic is read (a start-up with thousands of partitions reads one
            # per topic); the others need only exist
            topic_id = next(filter(None, map(_topic_id_of, dirs)), None) or new_topic_id()
            for d in dirs:
                if not has_topic_id(d):  # a data dir from before topic ids: recorded once
                    write_topic_id(d, topic_id_str(topic_id))
            topics[topic] = self._topic_meta(topic, topic_id, parts[-1] + 1)
        log.info("loaded %d topics", len(topics))
        return empty.apply(MetadataDelta(brokers={broker.node_id: broker}, topics=topics))

    def _topic_meta(self, name: str, topic_id: bytes, partitions: int) -> TopicMeta:
        return TopicMeta(
            name=name,
            topic_id=topic_id,
            partitions=tuple(self._placement(p) for p in range(partitions)),
            internal=name in INTERNAL_TOPICS,
        )

    def _placement(self, partition: int) -> PartitionMeta:
        node = (self.node_id,)
        return PartitionMeta(partition, self.node_id, 0, node, node)

    async def _publish(self, delta: MetadataDelta) -> MetadataImage:
        image = self.image.apply(delta)
        for listener in self._listeners:
            await listener(image, delta)
        self.image = image
        for observer in self._observers:
            observer(image, delta)
        return image

    # -- topics ----------------------------------------------------------------------------------

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

    async def create_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int = 1,
        configs: Mapping[str, str | None] | None = None,
    ) -> TopicMeta:
        async with self._lock:
            self.check_new_topic(name, partitions, replication_factor, configs or {})
            # Only the request's configs become the topic's overrides (the checked LogConfig's
            # overrides also hold the broker-level defaults, which must stay broker-level).
            overrides = {k: v for k, v in (configs or {}).items() if v is not None}
            if overrides or self.logs.topic_overrides(name):
                await asyncio.to_thread(
                    self.logs.set_topic_config, name, LogConfig.normalize(overrides)
                )
            topic = self._topic_meta(name, new_topic_id(), partitions)
            await self._publish(MetadataDelta(topics={name: topic}))
        log.info("created topic %s with %d partitions", name, partitions)
        return topic

    async def delete_topic(self, name: str) -> TopicMeta:
        async with self._lock:
            if name in INTERNAL_TOPICS:
                raise KafkaError(
                    f"internal topic {name} cannot be deleted", ErrorCode.INVALID_TOPIC_EXCEPTION
                )
            topic = self.image.topics.get(name)
            if topic is None:
                raise KafkaError(
                    f"This server does not host topic {name}", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                )
            await self._publish(MetadataDelta(deleted=frozenset({name})))
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

    async def create_partitions(self, name: str, count: int) -> TopicMeta:
        async with self._lock:
            topic = self.check_create_partitions(name, count)
            added = tuple(self._placement(p) for p in range(len(topic.partitions), count))
            grown = TopicMeta(topic.name, topic.topic_id, topic.partitions + added, topic.internal)
            await self._publish(MetadataDelta(topics={name: grown}))
        log.info("topic %s now has %d partitions", name, count)
        return grown
