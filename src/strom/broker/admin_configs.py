"""Config administration as Kafka 3.9 does it: describing topic, broker and logger configs (with
sources and synonyms), and planning AlterConfigs / IncrementalAlterConfigs changes.

Everything here is pure over a BrokerConfig, a topic's LogConfig and its overrides, so it is
tested without a socket; the handlers in broker/handlers/configs.py only decode and encode.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from strom.broker.config import BROKER_KEYS, TOPIC_SYNONYMS, BrokerConfig
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.config import CONFIG_KEYS, ConfigKey, InvalidConfigError, LogConfig, format_value
from strom.storage.manager import validate_topic_name

LONG_MAX = (1 << 63) - 1


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8
    CLIENT_METRICS = 16
    GROUP = 32


class ConfigSource(enum.IntEnum):
    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6


class ConfigType(enum.IntEnum):
    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class OpType(enum.IntEnum):
    """IncrementalAlterConfigs operations."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


_TYPES = {
    "boolean": ConfigType.BOOLEAN,
    "string": ConfigType.STRING,
    "int": ConfigType.INT,
    "long": ConfigType.LONG,
    "double": ConfigType.DOUBLE,
    "list": ConfigType.LIST,
}

#: Broker synonyms Kafka lists for a topic config that Strom does not (yet) apply from the
#: broker's properties (broker/config.py TOPIC_SYNONYMS lacks them): only their built-in
#: defaults are shown, as DEFAULT_CONFIG synonyms, since a value set for them is ignored.
_UNAPPLIED_TOPIC_SYNONYMS: dict[str, tuple[str, ...]] = {
    "flush.ms": ("log.flush.scheduler.interval.ms",),
    "local.retention.bytes": ("log.local.retention.bytes",),
    "local.retention.ms": ("log.local.retention.ms",),
    "message.downconversion.enable": ("log.message.downconversion.enable",),
    "message.format.version": ("log.message.format.version",),
    "message.timestamp.difference.max.ms": ("log.message.timestamp.difference.max.ms",),
}

#: Built-in defaults of those broker configs (None: no default, so no synonym).
_UNAPPLIED_DEFAULTS: dict[str, str | None] = {
    "log.flush.scheduler.interval.ms": str(LONG_MAX),
    "log.local.retention.bytes": "-2",
    "log.local.retention.ms": "-2",
    "log.message.downconversion.enable": "true",
    "log.message.format.version": "3.0-IV1",
    "log.message.timestamp.difference.max.ms": str(LONG_MAX),
}

#: Broker configs that share one setting, highest precedence first (Kafka's broker synonyms).
_BROKER_SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    ("log.roll.ms", "log.roll.hours"),
    ("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
)

#: Broker configs Kafka can change at runtime (read_only=false in DescribeConfigs). Strom
#: cannot change any broker config at runtime yet, but reports the flag as Kafka does.
DYNAMIC_BROKER_CONFIGS: frozenset[str] = frozenset(
    {chain[0] for chain in TOPIC_SYNONYMS.values()}
    | {
        "listeners",
        "advertised.listeners",
        "max.connections",
        "message.max.bytes",
        "log.cleaner.backoff.ms",
        "producer.id.expiration.ms",
    }
)

#: One line on what each topic config does (include_documentation).
TOPIC_DOCS: dict[str, str] = {
    "cleanup.policy": "How old log segments go: 'delete' by retention, 'compact' by key, or both.",
    "compression.type": "Compression of stored batches; 'producer' keeps what the producer sent.",
    "compression.gzip.level": "Level used when the broker compresses with gzip.",
    "compression.lz4.level": "Level used when the broker compresses with lz4.",
    "compression.zstd.level": "Level used when the broker compresses with zstd.",
    "delete.retention.ms": "How long delete markers (tombstones) stay in a compacted log.",
    "file.delete.delay.ms": "Delay before a deleted segment's files are removed from disk.",
    "flush.messages": "Messages appended between forced fsyncs of the log.",
    "flush.ms": "Milliseconds between forced fsyncs of the log.",
    "follower.replication.throttled.replicas": "Replicas whose follower fetches are throttled.",
    "index.interval.bytes": "Bytes of records between two offset index entries.",
    "leader.replication.throttled.replicas": "Replicas whose leader-side reads are throttled.",
    "local.retention.bytes": "Bytes kept on local disk when tiered storage is on (-2: all).",
    "local.retention.ms": "Time kept on local disk when tiered storage is on (-2: all).",
    "max.compaction.lag.ms": "Longest a record may stay uncompacted.",
    "max.message.bytes": "Largest record batch the topic accepts.",
    "message.downconversion.enable": "Whether old fetch versions get down-converted batches.",
    "message.format.version": "Deprecated; record format version of the topic.",
    "message.timestamp.after.max.ms": "How far in the future a record timestamp may be.",
    "message.timestamp.before.max.ms": "How far in the past a record timestamp may be.",
    "message.timestamp.difference.max.ms": "Deprecated; largest timestamp skew accepted.",
    "message.timestamp.type": "CreateTime (the producer's) or LogAppendTime (the broker's).",
    "min.cleanable.dirty.ratio": "Share of uncompacted bytes that makes a log due for cleaning.",
    "min.compaction.lag.ms": "Shortest time a record stays uncompacted.",
    "min.insync.replicas": "In-sync replicas needed for an acks=all write to succeed.",
    "preallocate": "Whether segment files are preallocated.",
    "remote.log.copy.disable": "Stop copying segments to tiered storage.",
    "remote.log.delete.on.disable": "Delete tiered data when tiered storage is turned off.",
    "remote.storage.enable": "Whether the topic uses tiered storage.",
    "retention.bytes": "Largest size of a partition before old segments go (-1: no limit).",
    "retention.ms": "How long records are kept before old segments go (-1: forever).",
    "segment.bytes": "Size at which the active segment rolls.",
    "segment.index.bytes": "Size of a segment's offset and time index files.",
    "segment.jitter.ms": "Random jitter subtracted from segment.ms.",
    "segment.ms": "Age at which the active segment rolls even if not full.",
    "unclean.leader.election.enable": "Whether an out-of-sync replica may become leader.",
}


@dataclass(frozen=True, slots=True)
class Synonym:
    name: str
    value: str | None
    source: ConfigSource


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One described config, in the terms of DescribeConfigsResponse."""

    name: str
    value: str | None
    source: ConfigSource
    read_only: bool = False
    sensitive: bool = False
    type: ConfigType = ConfigType.UNKNOWN
    synonyms: tuple[Synonym, ...] = field(default_factory=tuple)
    documentation: str | None = None

    @property
    def is_default(self) -> bool:
        """DescribeConfigs v0's flag."""
        return self.source == ConfigSource.DEFAULT_CONFIG


def _format(key: ConfigKey, value: object) -> str | None:
    return None if value is None else format_value(key, value)


def _broker_default(name: str) -> str | None:
    key = BROKER_KEYS.get(name)
    if key is not None:
        return _format(key, key.default)
    return _UNAPPLIED_DEFAULTS.get(name)


def _synonym_list(
    primary: str, applied: Sequence[str], unapplied: Sequence[str], broker: BrokerConfig
) -> list[Synonym]:
    """Kafka's order: set in the properties file, then built-in defaults; lower-precedence
    synonyms ahead of `primary` are dropped (describing log.retention.hours does not list
    log.retention.ms, and a topic whose retention comes from log.retention.hours shows none)."""
    out = [
        Synonym(n, broker.given[n], ConfigSource.STATIC_BROKER_CONFIG)
        for n in applied
        if n in broker.given
    ]
    for n in (*applied, *unapplied):
        default = _broker_default(n)
        if default is not None:
            out.append(Synonym(n, default, ConfigSource.DEFAULT_CONFIG))
    while out and out[0].name != primary:
        out.pop(0)
    return out


def _wanted(names: Iterable[str], keys: Sequence[str] | None) -> list[str]:
    """Null or empty configuration_keys mean every config; unknown keys are skipped."""
    if not keys:
        return sorted(names)
    want = set(keys)
    return sorted(n for n in names if n in want)


# -- describing -------------------------------------------------------------------------------


def describe_topic(
    broker: BrokerConfig,
    config: LogConfig,
    overrides: Mapping[str, str],
    keys: Sequence[str] | None = None,
    include_synonyms: bool = False,
    include_documentation: bool = False,
) -> list[ConfigEntry]:
    """Every topic config with its effective value, source and synonyms (Kafka's order of
    precedence: topic override, broker properties file, built-in default)."""
    values = config.to_props()
    out = []
    for name in _wanted(CONFIG_KEYS, keys):
        key = CONFIG_KEYS[name]
        value = values[name]
        applied = TOPIC_SYNONYMS.get(name, ())
        unapplied = _UNAPPLIED_TOPIC_SYNONYMS.get(name, ())
        chain = (*applied, *unapplied)
        synonyms = _synonym_list(chain[0], applied, unapplied, broker) if chain else []
        if name in overrides:
            synonyms.insert(0, Synonym(name, value, ConfigSource.DYNAMIC_TOPIC_CONFIG))
        out.append(
            ConfigEntry(
                name=name,
                value=value,
                source=synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG,
                read_only=False,
                sensitive=False,
                type=_TYPES.get(key.type, ConfigType.UNKNOWN),
                synonyms=tuple(synonyms) if include_synonyms else (),
                documentation=TOPIC_DOCS.get(name) if include_documentation else None,
            )
        )
    return out


def _broker_chain(name: str) -> tuple[str, ...]:
    for group in _BROKER_SYNONYM_GROUPS:
        if name in group:
            return group
    return (name,)


def describe_broker(
    broker: BrokerConfig,
    keys: Sequence[str] | None = None,
    include_synonyms: bool = False,
    include_documentation: bool = False,
) -> list[ConfigEntry]:
    """This broker's configs: every known one plus any unknown name given in its properties
    (unknown ones are reported as Kafka does: sensitive, value hidden, type UNKNOWN)."""
    out = []
    for name in _wanted(set(BROKER_KEYS) | set(broker.given), keys):
        key = BROKER_KEYS.get(name)
        chain = _broker_chain(name)
        if key is None:
            synonyms = [Synonym(name, None, ConfigSource.STATIC_BROKER_CONFIG)]
            value = None
        else:
            applied = [n for n in chain if n in BROKER_KEYS]
            unapplied = [n for n in chain if n not in BROKER_KEYS]
            synonyms = _synonym_list(name, applied, unapplied, broker)
            raw = broker.node_id if name in ("node.id", "broker.id") else broker[name]
            value = _format(key, raw)
        out.append(
            ConfigEntry(
                name=name,
                value=value,
                source=synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG,
                read_only=name not in DYNAMIC_BROKER_CONFIGS,
                sensitive=key is None,
                type=_TYPES.get(key.type, ConfigType.UNKNOWN) if key else ConfigType.UNKNOWN,
                synonyms=tuple(synonyms) if include_synonyms else (),
                documentation=(key.doc or None) if include_documentation and key else None,
            )
        )
    return out


# -- broker loggers (Python logging in log4j's terms) -----------------------------------------

ROOT_LOGGER = "root"
_LEVEL_TO_LOG4J = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "FATAL",
}
_LOG4J_TO_LEVEL = {
    "ALL": logging.NOTSET + 1,
    "TRACE": 5,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "OFF": logging.CRITICAL + 10,
}

_SETTABLE_LEVELS = ("FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE")


def _log4j_level(level: int) -> str:
    if level in _LEVEL_TO_LOG4J:
        return _LEVEL_TO_LOG4J[level]
    if level <= 1:
        return "ALL"
    if level < logging.DEBUG:
        return "TRACE"
    return "OFF" if level > logging.CRITICAL else logging.getLevelName(level)


def _loggers() -> dict[str, logging.Logger]:
    out = {ROOT_LOGGER: logging.getLogger()}
    for name, lg in logging.Logger.manager.loggerDict.items():
        if isinstance(lg, logging.Logger):
            out[name] = lg
    return out


def describe_loggers(keys: Sequence[str] | None = None) -> list[ConfigEntry]:
    """Every logger of this process and its effective level (BROKER_LOGGER resources)."""
    loggers = _loggers()
    return [
        ConfigEntry(
            name=name,
            value=_log4j_level(loggers[name].getEffectiveLevel()),
            source=ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG,
        )
        for name in _wanted(loggers, keys)
    ]


def alter_loggers(ops: Sequence[tuple[str, int, str | None]], validate_only: bool) -> None:
    """IncrementalAlterConfigs on BROKER_LOGGER: SET a level or DELETE it (inherit)."""
    loggers = _loggers()
    for name, op, value in ops:
        if op in (OpType.SET, OpType.DELETE) and name not in loggers:
            raise InvalidConfigError(f"Logger {name} does not exist!")
        if op == OpType.SET:
            if value not in _SETTABLE_LEVELS:
                raise InvalidConfigError(
                    f"Cannot set the log level of {name} to {value} as it is not a supported "
                    f"log level. Valid log levels are {', '.join(_SETTABLE_LEVELS)}"
                )
        elif op == OpType.DELETE:
            if name == ROOT_LOGGER:
                raise KafkaError(
                    "Removing the log level of the root logger is not allowed",
                    ErrorCode.INVALID_REQUEST,
                )
        elif op in (OpType.APPEND, OpType.SUBTRACT):
            raise KafkaError(
                f"{OpType(op).name} operation is not allowed for the BROKER_LOGGER resource",
                ErrorCode.INVALID_REQUEST,
            )
        else:
            raise KafkaError(
                f"Unknown operation type {op} is not allowed for the BROKER_LOGGER resource",
                ErrorCode.INVALID_REQUEST,
            )
    if validate_only:
        return
    for name, op, value in ops:
        lg = logging.getLogger() if name == ROOT_LOGGER else logging.getLogger(name)
        lg.setLevel(_LOG4J_TO_LEVEL[value] if op == OpType.SET and value else logging.NOTSET)


# -- altering ---------------------------------------------------------------------------------


def check_config_names(names: Sequence[str]) -> None:
    if len(set(names)) != len(names):
        raise KafkaError("Error due to duplicate config keys", ErrorCode.INVALID_REQUEST)


def check_no_nulls(names: Sequence[str]) -> None:
    if names:
        raise KafkaError(
            f"Null value not supported for : {', '.join(names)}", ErrorCode.INVALID_REQUEST
        )


def check_node(name: str, node_id: int) -> None:
    """A BROKER or BROKER_LOGGER resource name must be this node's id."""
    try:
        requested = int(name)
    except ValueError:
        raise KafkaError(
            f"Node id must be an integer, but it is: {name}", ErrorCode.INVALID_REQUEST
        ) from None
    if requested != node_id:
        raise KafkaError(
            f"Unexpected broker id, expected {node_id}, but received {name}",
            ErrorCode.INVALID_REQUEST,
        )


def refuse_broker_change(names: Iterable[str]) -> None:
    """Strom has no dynamic broker configs: any change is refused as Kafka refuses changes
    to configs that are not dynamic."""
    names = sorted(set(names))
    if names:
        raise KafkaError(
            f"Cannot update these configs dynamically: {names}. Strom does not support dynamic "
            "broker configs; set them in the broker's properties file and restart it.",
            ErrorCode.INVALID_REQUEST,
        )


def replace_overrides(configs: Sequence[tuple[str, str | None]]) -> dict[str, str]:
    """AlterConfigs: the topic's overrides become exactly these (nulls refused)."""
    check_config_names([n for n, _ in configs])
    check_no_nulls([n for n, v in configs if v is None])
    return {n: v for n, v in configs if v is not None}


def _parts(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def incremental_overrides(
    current: Mapping[str, str], ops: Sequence[tuple[str, int, str | None]]
) -> dict[str, str]:
    """IncrementalAlterConfigs on a topic: the overrides after SET/DELETE/APPEND/SUBTRACT.
    APPEND and SUBTRACT work on list configs only and start from the config's built-in
    default when the topic has no override."""
    check_config_names([n for n, _, _ in ops])
    check_no_nulls([n for n, op, v in ops if op != OpType.DELETE and v is None])
    new = dict(current)
    for name, op, value in ops:
        if op == OpType.SET:
            assert value is not None
            new[name] = value
        elif op == OpType.DELETE:
            new.pop(name, None)
        elif op in (OpType.APPEND, OpType.SUBTRACT):
            key = CONFIG_KEYS.get(name)
            if key is None or key.type != "list":
                raise InvalidConfigError(
                    f"Can't {OpType(op).name} to key {name} because its type is not LIST."
                )
            base = new.get(name)
            items = _parts(base if base is not None else format_value(key, key.default))
            for part in _parts(value):
                if op == OpType.APPEND and part not in items:
                    items.append(part)
                elif op == OpType.SUBTRACT:
                    items = [i for i in items if i != part]
            new[name] = ",".join(items)
        else:
            raise KafkaError(f"Unknown operation type {op}", ErrorCode.INVALID_REQUEST)
    return new


def validate_topic_overrides(
    topic: str, overrides: Mapping[str, str], defaults: LogConfig
) -> dict[str, str]:
    """Check a topic's new overrides as Kafka's controller does: the name, then the values
    (INVALID_CONFIG). Returns them in canonical form."""
    if not topic:
        raise KafkaError("Default topic resources are not allowed.", ErrorCode.INVALID_REQUEST)
    validate_topic_name(topic)
    normalized = LogConfig.normalize(overrides)
    LogConfig.from_props(normalized, defaults)  # cross-config checks
    return normalized
