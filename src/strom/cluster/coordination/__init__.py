"""Cluster coordination through ZooKeeper (kazoo), in Kafka's ZooKeeper-mode znode layout."""

from strom.cluster.coordination.brokers import BrokerRegistry
from strom.cluster.coordination.cluster_id import get_or_create_cluster_id, new_cluster_id
from strom.cluster.coordination.codec import (
    BrokerRegistration,
    ConfigChange,
    ControllerRecord,
    Endpoint,
    FeatureRange,
    PartitionState,
    ProducerIdBlock,
    TopicAssignment,
)
from strom.cluster.coordination.configs import ConfigStore
from strom.cluster.coordination.controller_election import Controller, ControllerElection
from strom.cluster.coordination.errors import (
    BrokerIdTakenError,
    CodecError,
    ControllerMovedError,
    CoordinationError,
    NoSuchTopicError,
    StaleStateError,
    TopicExistsError,
    ZkUnavailableError,
)
from strom.cluster.coordination.producer_ids import allocate_producer_id_block
from strom.cluster.coordination.session import SessionEvent, ZkConnect, ZkSession, parse_connect
from strom.cluster.coordination.topics import TopicPartition, TopicStore, Versioned
from strom.cluster.coordination.watches import Watch

__all__ = [
    "BrokerIdTakenError",
    "BrokerRegistration",
    "BrokerRegistry",
    "CodecError",
    "ConfigChange",
    "ConfigStore",
    "Controller",
    "ControllerElection",
    "ControllerMovedError",
    "ControllerRecord",
    "CoordinationError",
    "Endpoint",
    "FeatureRange",
    "NoSuchTopicError",
    "PartitionState",
    "ProducerIdBlock",
    "SessionEvent",
    "StaleStateError",
    "TopicAssignment",
    "TopicExistsError",
    "TopicPartition",
    "TopicStore",
    "Versioned",
    "Watch",
    "ZkConnect",
    "ZkSession",
    "ZkUnavailableError",
    "allocate_producer_id_block",
    "get_or_create_cluster_id",
    "new_cluster_id",
    "parse_connect",
]
