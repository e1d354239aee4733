"""The metadata image every broker serves: brokers, topics, partitions, leaders, ISR, epochs."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field

from strom.protocol.primitives import ZERO_UUID

INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


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


@dataclass(slots=True)
class PartitionMeta:
    partition: int
    leader: int
    leader_epoch: int
    replicas: list[int]
    isr: list[int]
    offline: list[int] = field(default_factory=list)


@dataclass(slots=True)
class TopicMeta:
    name: str
    topic_id: bytes
    partitions: list[PartitionMeta]
    internal: bool = False


@dataclass(slots=True)
class BrokerMeta:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass
class MetadataImage:
    """What Metadata, DescribeCluster and the fetch/produce paths look up."""

    cluster_id: str
    controller_id: int
    brokers: dict[int, BrokerMeta] = field(default_factory=dict)
    topics: dict[str, TopicMeta] = field(default_factory=dict)
    topic_names: dict[bytes, str] = field(default_factory=dict)  # topic id -> name

    def add_topic(self, topic: TopicMeta) -> None:
        self.topics[topic.name] = topic
        self.topic_names[topic.topic_id] = topic.name

    def remove_topic(self, name: str) -> TopicMeta | None:
        topic = self.topics.pop(name, None)
        if topic is not None:
            self.topic_names.pop(topic.topic_id, None)
        return topic

    def partition(self, topic: str, partition: int) -> PartitionMeta | None:
        t = self.topics.get(topic)
        if t is None or not 0 <= partition < len(t.partitions):
            return None
        return t.partitions[partition]
