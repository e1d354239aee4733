"""Kafka's ZooKeeper znode layout (ZooKeeper mode), as functions of topic, partition and broker."""

from __future__ import annotations

import re

BROKERS = "/brokers"
BROKER_IDS = "/brokers/ids"
TOPICS = "/brokers/topics"
CONTROLLER = "/controller"
CONTROLLER_EPOCH = "/controller_epoch"
CONFIG = "/config"
CONFIG_CHANGES = "/config/changes"
CONFIG_CHANGE_PREFIX = "config_change_"  # sequential children of CONFIG_CHANGES
ADMIN = "/admin"
DELETE_TOPICS = "/admin/delete_topics"
REASSIGN_PARTITIONS = "/admin/reassign_partitions"
ISR_CHANGE_NOTIFICATION = "/isr_change_notification"
ISR_CHANGE_PREFIX = "isr_change_"  # sequential children of ISR_CHANGE_NOTIFICATION
LATEST_PRODUCER_ID_BLOCK = "/latest_producer_id_block"
CLUSTER_ID = "/cluster/id"

#: The config entity types Strom writes (Kafka also has users, clients and ips).
TOPIC_CONFIG = "topics"
BROKER_CONFIG = "brokers"
#: The broker-config entity that holds the cluster-wide default.
DEFAULT_BROKER = "<default>"

#: The persistent znodes a broker makes sure exist when it connects (as Kafka's brokers do).
PERSISTENT_PATHS: tuple[str, ...] = (
    BROKER_IDS,
    TOPICS,
    CONFIG_CHANGES,
    f"{CONFIG}/{TOPIC_CONFIG}",
    f"{CONFIG}/{BROKER_CONFIG}",
    DELETE_TOPICS,
    ISR_CHANGE_NOTIFICATION,
    LATEST_PRODUCER_ID_BLOCK,
)

_LEGAL_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


def check_topic(name: str) -> str:
    """`name` if it is a legal Kafka topic name (so it is one znode, never a path)."""
    if not _LEGAL_TOPIC.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"illegal topic name for a znode: {name!r}")
    return name


def _check_id(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"illegal {what}: {value!r}")
    return value


def broker(broker_id: int) -> str:
    """The ephemeral registration of a live broker."""
    return f"{BROKER_IDS}/{_check_id(broker_id, 'broker id')}"


def topic(name: str) -> str:
    """A topic's replica assignment (and topic id)."""
    return f"{TOPICS}/{check_topic(name)}"


def partitions(name: str) -> str:
    return f"{topic(name)}/partitions"


def partition(name: str, partition_id: int) -> str:
    return f"{partitions(name)}/{_check_id(partition_id, 'partition')}"


def partition_state(name: str, partition_id: int) -> str:
    """Leader, leader epoch, ISR; its znode version is the partition epoch."""
    return f"{partition(name, partition_id)}/state"


def config_entity(entity_type: str, entity_name: str) -> str:
    """A config override: /config/<type>/<name>."""
    if entity_type not in (TOPIC_CONFIG, BROKER_CONFIG):
        raise ValueError(f"unknown config entity type: {entity_type!r}")
    if entity_type == TOPIC_CONFIG:
        check_topic(entity_name)
    elif entity_name != DEFAULT_BROKER and not entity_name.isdigit():
        raise ValueError(f"illegal broker config entity: {entity_name!r}")
    return f"{CONFIG}/{entity_type}/{entity_name}"


def topic_config(name: str) -> str:
    return config_entity(TOPIC_CONFIG, name)


def broker_config(broker_id: int | None) -> str:
    """A broker's config overrides, or (None) the cluster-wide default."""
    name = DEFAULT_BROKER if broker_id is None else str(_check_id(broker_id, "broker id"))
    return config_entity(BROKER_CONFIG, name)


def config_change_prefix() -> str:
    """The path a sequential config-change notification is created with."""
    return f"{CONFIG_CHANGES}/{CONFIG_CHANGE_PREFIX}"


def delete_topic(name: str) -> str:
    """The marker that asks the controller to delete a topic."""
    return f"{DELETE_TOPICS}/{check_topic(name)}"


def isr_change_prefix() -> str:
    return f"{ISR_CHANGE_NOTIFICATION}/{ISR_CHANGE_PREFIX}"


def sequence_number(child: str, prefix: str) -> int | None:
    """The number ZooKeeper appended to a sequential znode's name, or None if `child` is
    not one of `prefix`'s."""
    if not child.startswith(prefix):
        return None
    digits = child[len(prefix) :]
    return int(digits) if digits.isdigit() else None
