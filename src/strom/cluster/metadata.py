"""The metadata image every broker serves: brokers, topics, partitions, leaders, ISR, epochs.

An image is immutable: the controller decides a change, describes it as a `MetadataDelta`
and publishes `image.apply(delta)`, a new image; readers keep whichever image they took.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from strom.protocol.primitives import ZERO_UUID

INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
_EMPTY: Mapping = MappingProxyType({})


def new_topic_id() -> bytes:
    """A random topic id that is neither the zero uuid nor starts with '-' in base64."""
    while True:
        tid = uuid.uuid4().bytes
        if tid != ZERO_UUID and not topic_id_str(tid).startswith("-"):
            return tid


def topic_id_str(tid: bytes) -> str:
    """Kafka's text form of a uuid: url-safe base64 without padding."""
    return base64.urlsafe_b64encode(tid).decode().rstrip("=")


def topic_id_from_str(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) != 16:
        raise ValueError(f"not a topic id: {text!r}")
    return raw


@dataclass(frozen=True, slots=True)
class PartitionMeta:
    """One partition's placement and leadership. The leader epoch changes with each new
    leader; the partition epoch with any change of the partition's state (ISR included)."""

    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    partition_epoch: int = 0
    offline: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicMeta:
    name: str
    topic_id: bytes
    partitions: tuple[PartitionMeta, ...]
    internal: bool = False


@dataclass(frozen=True, slots=True)
class BrokerMeta:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class MetadataDelta:
    """A change to an image: brokers registered (or None: gone), topics created or changed
    (the whole new TopicMeta), topics deleted."""

    brokers: Mapping[int, BrokerMeta | None] = field(default_factory=dict)
    topics: Mapping[str, TopicMeta] = field(default_factory=dict)
    deleted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MetadataImage:
    """What Metadata, DescribeCluster and the produce/fetch paths look up (read-only maps)."""

    cluster_id: str
    controller_id: int
    brokers: Mapping[int, BrokerMeta] = field(default_factory=lambda: _EMPTY)
    topics: Mapping[str, TopicMeta] = field(default_factory=lambda: _EMPTY)
    topic_names: Mapping[bytes, str] = field(default_factory=lambda: _EMPTY)  # id -> name
    version: int = 0  # how many deltas made it

    def apply(self, delta: MetadataDelta) -> MetadataImage:
        """The image after `delta` (this one is unchanged)."""
        brokers = dict(self.brokers)
        for node, meta in delta.brokers.items():
            if meta is None:
                brokers.pop(node, None)
            else:
                brokers[node] = meta
        topics = dict(self.topics)
        names = dict(self.topic_names)
        for name in delta.deleted:
            gone = topics.pop(name, None)
            if gone is not None:
                names.pop(gone.topic_id, None)
        for name, topic in delta.topics.items():
            old = topics.get(name)
            if old is not None and old.topic_id != topic.topic_id:
                names.pop(old.topic_id, None)
            topics[name] = topic
            names[topic.topic_id] = name
        return replace(
            self,
            brokers=MappingProxyType(brokers),
            topics=MappingProxyType(topics),
            topic_names=MappingProxyType(names),
            version=self.version + 1,
        )

    def partition(self, topic: str, partition: int) -> PartitionMeta | None:
        t = self.topics.get(topic)
        if t is None or not 0 <= partition < len(t.partitions):
            return None
        return t.partitions[partition]
