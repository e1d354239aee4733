"""Broker configuration: Kafka's broker property names and defaults, and their topic synonyms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strom.storage.config import (
    CONFIG_KEYS,
    ConfigKey,
    parse_value,
    read_config_file,
)

LONG_MAX = (1 << 63) - 1


def _k(name: str, type_: str, default: Any, **kw: Any) -> ConfigKey:
    return ConfigKey(name, type_, default, **kw)


#: Broker-level settings Strom reads (name -> key with type and default, as Kafka 3.9 has them).
BROKER_KEYS: dict[str, ConfigKey] = {
    k.name: k
    for k in (
        _k("node.id", "int", 0, min=0),
        _k("broker.id", "int", 0, min=0),
        _k("log.dirs", "string", "./strom-data"),
        _k("listeners", "string", "PLAINTEXT://127.0.0.1:9092"),
        _k("advertised.listeners", "string", ""),
        _k("num.partitions", "int", 1, min=1),
        _k("default.replication.factor", "int", 1, min=1),
        _k("auto.create.topics.enable", "boolean", True),
        _k("delete.topic.enable", "boolean", True),
        _k("message.max.bytes", "int", 1048588, min=0),
        _k("socket.request.max.bytes", "int", 104857600, min=1),
        _k("fetch.max.bytes", "int", 57671680, min=1024),
        _k("max.connections", "int", 2147483647, min=0),
        _k("connections.max.idle.ms", "long", 600000),
        _k("queued.max.requests", "int", 500, min=1),
        _k("log.retention.ms", "long", None),
        _k("log.retention.minutes", "int", None),
        _k("log.retention.hours", "int", 168),
        _k("log.retention.bytes", "long", -1),
        _k("log.retention.check.interval.ms", "long", 300000, min=1),
        _k("log.segment.bytes", "int", 1073741824, min=14),
        _k("log.roll.ms", "long", None),
        _k("log.roll.hours", "int", 168, min=1),
        _k("log.roll.jitter.ms", "long", None),
        _k("log.roll.jitter.hours", "int", 0, min=0),
        _k("log.index.size.max.bytes", "int", 10485760, min=4),
        _k("log.index.interval.bytes", "int", 4096, min=0),
        _k("log.cleanup.policy", "list", ("delete",), choices=("compact", "delete")),
        _k("log.cleaner.enable", "boolean", True),
        _k("log.cleaner.backoff.ms", "long", 15000, min=0),
        _k("log.cleaner.delete.retention.ms", "long", 86400000, min=0),
        _k("log.cleaner.min.cleanable.ratio", "double", 0.5, min=0.0, max=1.0),
        _k("log.cleaner.min.compaction.lag.ms", "long", 0, min=0),
        _k("log.cleaner.max.compaction.lag.ms", "long", LONG_MAX, min=1),
        _k("log.flush.interval.messages", "long", LONG_MAX, min=1),
        _k("log.flush.interval.ms", "long", None),
        _k("log.flush.scheduler.interval.ms", "long", LONG_MAX),
        _k(
            "log.message.timestamp.type",
            "string",
            "CreateTime",
            choices=("CreateTime", "LogAppendTime"),
        ),
        _k("log.message.timestamp.before.max.ms", "long", LONG_MAX, min=0),
        _k("log.message.timestamp.after.max.ms", "long", LONG_MAX, min=0),
        _k("log.segment.delete.delay.ms", "long", 60000, min=0),
        _k("log.preallocate", "boolean", False),
        _k(
            "compression.type",
            "string",
            "producer",
            choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
        ),
        _k("min.insync.replicas", "int", 1, min=1),
        _k("compression.gzip.level", "int", -1, min=-1, max=9),
        _k("compression.lz4.level", "int", 9, min=1, max=17),
        _k("compression.zstd.level", "int", 3, min=-131072, max=22),
        _k("unclean.leader.election.enable", "boolean", False),
        _k("offsets.topic.num.partitions", "int", 50, min=1),
        _k("offsets.topic.replication.factor", "int", 3, min=1),
        _k("offsets.topic.segment.bytes", "int", 104857600, min=1),
        _k("offsets.retention.minutes", "int", 10080, min=1),
        _k("offsets.retention.check.interval.ms", "long", 600000, min=1),
        _k("offsets.commit.timeout.ms", "int", 5000, min=1),
        _k("group.initial.rebalance.delay.ms", "int", 3000, min=0),
        _k("group.min.session.timeout.ms", "int", 6000),
        _k("group.max.session.timeout.ms", "int", 1800000),
        _k("group.max.size", "int", 2147483647, min=1),
        _k("transaction.state.log.num.partitions", "int", 50, min=1),
        _k("transaction.state.log.replication.factor", "int", 3, min=1),
        _k("transactional.id.expiration.ms", "int", 604800000, min=1),
        _k("transaction.max.timeout.ms", "int", 900000, min=1),
        _k("transaction.state.log.segment.bytes", "int", 104857600, min=1),
        _k("transaction.abort.timed.out.transaction.cleanup.interval.ms", "int", 10000, min=1),
        _k("transaction.remove.expired.transaction.cleanup.interval.ms", "int", 3600000, min=1),
        _k("producer.id.expiration.ms", "int", 86400000, min=1),
        _k("max.incremental.fetch.session.cache.slots", "int", 1000, min=0),
        _k("replica.lag.time.max.ms", "long", 30000),
    )
}

#: Topic config -> the broker config that supplies its default (DescribeConfigs synonyms).
TOPIC_SYNONYMS: dict[str, tuple[str, ...]] = {
    "cleanup.policy": ("log.cleanup.policy",),
    "compression.type": ("compression.type",),
    "compression.gzip.level": ("compression.gzip.level",),
    "compression.lz4.level": ("compression.lz4.level",),
    "compression.zstd.level": ("compression.zstd.level",),
    "delete.retention.ms": ("log.cleaner.delete.retention.ms",),
    "file.delete.delay.ms": ("log.segment.delete.delay.ms",),
    "flush.messages": ("log.flush.interval.messages",),
    "flush.ms": ("log.flush.interval.ms",),
    "index.interval.bytes": ("log.index.interval.bytes",),
    "max.compaction.lag.ms": ("log.cleaner.max.compaction.lag.ms",),
    "max.message.bytes": ("message.max.bytes",),
    "message.timestamp.type": ("log.message.timestamp.type",),
    "message.timestamp.before.max.ms": ("log.message.timestamp.before.max.ms",),
    "message.timestamp.after.max.ms": ("log.message.timestamp.after.max.ms",),
    "min.cleanable.dirty.ratio": ("log.cleaner.min.cleanable.ratio",),
    "min.compaction.lag.ms": ("log.cleaner.min.compaction.lag.ms",),
    "min.insync.replicas": ("min.insync.replicas",),
    "preallocate": ("log.preallocate",),
    "retention.bytes": ("log.retention.bytes",),
    "retention.ms": ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    "segment.bytes": ("log.segment.bytes",),
    "segment.index.bytes": ("log.index.size.max.bytes",),
    "segment.ms": ("log.roll.ms", "log.roll.hours"),
    "segment.jitter.ms": ("log.roll.jitter.ms", "log.roll.jitter.hours"),
    "unclean.leader.election.enable": ("unclean.leader.election.enable",),
}

# How a broker synonym's value converts to the topic config's unit.
_UNIT = {
    "log.retention.minutes": 60_000,
    "log.retention.hours": 3_600_000,
    "log.roll.hours": 3_600_000,
    "log.roll.jitter.hours": 3_600_000,
}


@dataclass
class BrokerConfig:
    """Every broker setting by its Kafka name; set ones are those given by file or flag."""

    values: dict[str, Any] = field(default_factory=dict)
    given: dict[str, str] = field(default_factory=dict)  # raw text as set, for DescribeConfigs

    @classmethod
    def from_props(cls, props: Mapping[str, object]) -> BrokerConfig:
        """Parse broker properties; unknown names are kept as given (Kafka logs and ignores)."""
        cfg = cls()
        for name, key in BROKER_KEYS.items():
            cfg.values[name] = key.default
        for name, raw in props.items():
            key = BROKER_KEYS.get(name)
            cfg.given[name] = str(raw)
            if key is not None:
                cfg.values[name] = parse_value(key, raw)
        return cfg

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def node_id(self) -> int:
        if "node.id" in self.given:
            return self.values["node.id"]
        return self.values["broker.id"]

    def topic_default(self, name: str) -> tuple[Any, str | None]:
        """A topic config's broker-wide default and the broker config that set it (or None)."""
        for syn in TOPIC_SYNONYMS.get(name, ()):
            if syn in self.given and self.values.get(syn) is not None:
                return self.values[syn] * _UNIT.get(syn, 1), syn
        key = CONFIG_KEYS.get(name)
        return (key.default if key else None), None

    def topic_defaults(self) -> dict[str, Any]:
        """Every topic config's default on this broker (broker synonyms applied)."""
        out = {}
        for name in CONFIG_KEYS:
            value, source = self.topic_default(name)
            if source is not None:
                out[name] = value
        return out


def read_properties_file(path: str) -> dict[str, str]:
    """A broker properties file (`key=value`, `key: value` or `key value`; `#` and `!`
    comments; Java's escapes and continuation lines); see storage.config.read_config_file."""
    return read_config_file(path)
