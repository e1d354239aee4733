"""Topic (log) configs with Kafka's names, defaults and validation, persisted per topic."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.files import atomic_write
from strom.storage.properties import PropertiesError, format_properties
from strom.storage.properties import read_properties as read_java_properties

LONG_MAX = (1 << 63) - 1
LONG_MIN = -(1 << 63)
INT_MAX = (1 << 31) - 1
INT_MIN = -(1 << 31)

_INT_RE = re.compile(r"^[+-]?[0-9]+$")


class InvalidConfigError(KafkaError):
    """A config name or value Kafka would refuse."""

    code = ErrorCode.INVALID_CONFIG


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One topic config: its Kafka name, type, default and validity rule."""

    name: str
    type: str  # "int" | "long" | "double" | "boolean" | "string" | "list"
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    doc: str = ""

    @property
    def attr(self) -> str:
        """The LogConfig attribute that holds this config."""
        return self.name.replace(".", "_")


def _k(name: str, type_: str, default: Any, **kw: Any) -> ConfigKey:
    return ConfigKey(name, type_, default, **kw)


#: Every topic-level config Kafka 3.9 knows, with its default and validator.
CONFIG_KEYS: dict[str, ConfigKey] = {
    k.name: k
    for k in (
        _k("cleanup.policy", "list", ("delete",), choices=("compact", "delete")),
        _k(
            "compression.type",
            "string",
            "producer",
            choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
        ),
        _k("compression.gzip.level", "int", -1, min=-1, max=9),
        _k("compression.lz4.level", "int", 9, min=1, max=17),
        _k("compression.zstd.level", "int", 3, min=-131072, max=22),
        _k("delete.retention.ms", "long", 86400000, min=0),
        _k("file.delete.delay.ms", "long", 60000, min=0),
        _k("flush.messages", "long", LONG_MAX, min=1),
        _k("flush.ms", "long", LONG_MAX, min=0),
        _k("follower.replication.throttled.replicas", "list", ()),
        _k("index.interval.bytes", "int", 4096, min=0),
        _k("leader.replication.throttled.replicas", "list", ()),
        _k("local.retention.bytes", "long", -2, min=-2),
        _k("local.retention.ms", "long", -2, min=-2),
        _k("max.compaction.lag.ms", "long", LONG_MAX, min=1),
        _k("max.message.bytes", "int", 1048588, min=0),
        _k("message.downconversion.enable", "boolean", True),
        _k("message.format.version", "string", "3.0-IV1"),
        _k("message.timestamp.after.max.ms", "long", LONG_MAX, min=0),
        _k("message.timestamp.before.max.ms", "long", LONG_MAX, min=0),
        _k("message.timestamp.difference.max.ms", "long", LONG_MAX, min=0),
        _k(
            "message.timestamp.type",
            "string",
            "CreateTime",
            choices=("CreateTime", "LogAppendTime"),
        ),
        _k("min.cleanable.dirty.ratio", "double", 0.5, min=0.0, max=1.0),
        _k("min.compaction.lag.ms", "long", 0, min=0),
        _k("min.insync.replicas", "int", 1, min=1),
        _k("preallocate", "boolean", False),
        _k("remote.log.copy.disable", "boolean", False),
        _k("remote.log.delete.on.disable", "boolean", False),
        _k("remote.storage.enable", "boolean", False),
        _k("retention.bytes", "long", -1),
        _k("retention.ms", "long", 604800000, min=-1),
        _k("segment.bytes", "int", 1073741824, min=14),
        _k("segment.index.bytes", "int", 10485760, min=4),
        _k("segment.jitter.ms", "long", 0, min=0),
        _k("segment.ms", "long", 604800000, min=1),
        _k("unclean.leader.election.enable", "boolean", False),
    )
}


def _bad(name: str, value: object, why: str) -> InvalidConfigError:
    return InvalidConfigError(f"Invalid value {value!r} for configuration {name}: {why}")


def parse_value(key: ConfigKey, raw: object) -> Any:
    """Parse one config value as Kafka's ConfigDef does; raise InvalidConfigError if bad."""
    name = key.name
    if key.type in ("int", "long"):
        if isinstance(raw, bool):
            raise _bad(name, raw, "not a number")
        if isinstance(raw, int):
            value = raw
        else:
            text = str(raw).strip()
            if not _INT_RE.match(text):
                raise _bad(name, raw, f"not a valid {key.type}")
            value = int(text)
        lo, hi = (INT_MIN, INT_MAX) if key.type == "int" else (LONG_MIN, LONG_MAX)
        if not lo <= value <= hi:
            raise _bad(name, raw, f"out of range for {key.type}")
    elif key.type == "double":
        try:
            value = float(str(raw).strip()) if not isinstance(raw, int | float) else float(raw)
        except ValueError:
            raise _bad(name, raw, "not a number") from None
        if math.isnan(value) or math.isinf(value):
            raise _bad(name, raw, "not a finite number")
    elif key.type == "boolean":
        if isinstance(raw, bool):
            value = raw
        else:
            text = str(raw).strip().lower()
            if text not in ("true", "false"):
                raise _bad(name, raw, "expected true or false")
            value = text == "true"
    elif key.type == "list":
        if isinstance(raw, str):
            text = raw.strip()
            items = [p.strip() for p in text.split(",")] if text else []
        else:
            items = [str(p).strip() for p in raw]  # type: ignore[union-attr]
        if any(not p for p in items):
            raise _bad(name, raw, "empty list element")
        value = tuple(items)
        if key.choices is not None:
            for item in value:
                if item not in key.choices:
                    raise _bad(name, raw, f"String must be one of: {', '.join(key.choices)}")
        return value
    else:
        value = str(raw).strip()
    if key.choices is not None and value not in key.choices:
        raise _bad(name, raw, f"String must be one of: {', '.join(key.choices)}")
    if key.min is not None and value < key.min:
        raise _bad(name, raw, f"Value must be at least {key.min}")
    if key.max is not None and value > key.max:
        raise _bad(name, raw, f"Value must be no more than {key.max}")
    return value


def format_value(key: ConfigKey, value: Any) -> str:
    """A config value as Kafka prints it (DescribeConfigs, properties files)."""
    if key.type == "list":
        return ",".join(value)
    if key.type == "boolean":
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class LogConfig:
    """The configs of one topic's logs; attribute names are Kafka's with dots as underscores."""

    cleanup_policy: tuple[str, ...] = ("delete",)
    compression_type: str = "producer"
    compression_gzip_level: int = -1
    compression_lz4_level: int = 9
    compression_zstd_level: int = 3
    delete_retention_ms: int = 86400000
    file_delete_delay_ms: int = 60000
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    follower_replication_throttled_replicas: tuple[str, ...] = ()
    index_interval_bytes: int = 4096
    leader_replication_throttled_replicas: tuple[str, ...] = ()
    local_retention_bytes: int = -2
    local_retention_ms: int = -2
    max_compaction_lag_ms: int = LONG_MAX
    max_message_bytes: int = 1048588
    message_downconversion_enable: bool = True
    message_format_version: str = "3.0-IV1"
    message_timestamp_after_max_ms: int = LONG_MAX
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_difference_max_ms: int = LONG_MAX
    message_timestamp_type: str = "CreateTime"
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    min_insync_replicas: int = 1
    preallocate: bool = False
    remote_log_copy_disable: bool = False
    remote_log_delete_on_disable: bool = False
    remote_storage_enable: bool = False
    retention_bytes: int = -1
    retention_ms: int = 604800000
    segment_bytes: int = 1073741824
    segment_index_bytes: int = 10485760
    segment_jitter_ms: int = 0
    segment_ms: int = 604800000
    unclean_leader_election_enable: bool = False
    #: The configs set explicitly for this topic (Kafka name -> string), as persisted.
    overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    # -- derived views -------------------------------------------------------------------

    @property
    def compact(self) -> bool:
        """Whether the log cleaner compacts this log."""
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        """Whether retention deletes old segments of this log."""
        return "delete" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        """Whether the broker stamps batches with its own clock."""
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def max_index_entries(self) -> int:
        """Offset index entries a segment may hold before it must roll."""
        return max(1, self.segment_index_bytes // 8)

    # -- building ------------------------------------------------------------------------

    @classmethod
    def from_props(
        cls, props: Mapping[str, object] | None = None, defaults: LogConfig | None = None
    ) -> LogConfig:
        """Apply topic overrides (Kafka names, string or typed values) on top of defaults.

        Unknown names and bad values raise InvalidConfigError (INVALID_CONFIG).
        """
        base = defaults if defaults is not None else cls()
        props = dict(props or {})
        changes: dict[str, Any] = {}
        overrides: dict[str, str] = {}
        for name, raw in props.items():
            key = CONFIG_KEYS.get(name)
            if key is None:
                raise InvalidConfigError(f"Unknown topic config name: {name}")
            if raw is None:
                continue
            value = parse_value(key, raw)
            changes[key.attr] = value
            overrides[name] = format_value(key, value)
        merged = dict(base.overrides)
        merged.update(overrides)
        config = dataclasses.replace(base, **changes, overrides=MappingProxyType(merged))
        config.validate()
        return config

    @staticmethod
    def normalize(props: Mapping[str, object]) -> dict[str, str]:
        """Validate overrides and return them in Kafka's canonical string form."""
        out: dict[str, str] = {}
        for name, raw in props.items():
            key = CONFIG_KEYS.get(name)
            if key is None:
                raise InvalidConfigError(f"Unknown topic config name: {name}")
            if raw is not None:
                out[name] = format_value(key, parse_value(key, raw))
        return out

    def with_overrides(self, props: Mapping[str, object]) -> LogConfig:
        """This config with more overrides applied."""
        return LogConfig.from_props(props, defaults=self)

    def validate(self) -> None:
        """Cross-config checks Kafka makes (single values are checked while parsing)."""
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms:
            raise InvalidConfigError(
                "conflict: min.compaction.lag.ms "
                f"{self.min_compaction_lag_ms} > max.compaction.lag.ms {self.max_compaction_lag_ms}"
            )
        if self.segment_index_bytes < 8:
            raise InvalidConfigError("segment.index.bytes must hold at least one index entry")

    def get(self, name: str) -> Any:
        """The typed value of a config by its Kafka name."""
        key = CONFIG_KEYS.get(name)
        if key is None:
            raise InvalidConfigError(f"Unknown topic config name: {name}")
        return getattr(self, key.attr)

    def to_props(self) -> dict[str, str]:
        """Every config as Kafka name -> string (what DescribeConfigs shows)."""
        return {
            name: format_value(key, getattr(self, key.attr)) for name, key in CONFIG_KEYS.items()
        }


# -- persistence (a Java-style properties file per topic) ---------------------------------


def write_config_file(path: str, props: Mapping[str, str], header: str = "") -> None:
    """Write `props` as a Java properties file, atomically (see files.atomic_write)."""
    atomic_write(path, format_properties(props, header))


def read_config_file(path: str) -> dict[str, str]:
    """The settings in a Java properties file (java.util.Properties' rules). A malformed file,
    or a line with a value but no name, raises InvalidConfigError naming the file; an
    unreadable one raises OSError."""
    try:
        props = read_java_properties(path)
    except PropertiesError as e:
        raise InvalidConfigError(f"bad properties file {e}") from None
    if "" in props:
        raise InvalidConfigError(f"{path}: a setting with no name (value {props['']!r})")
    return props


def describe(config: LogConfig) -> Iterable[tuple[str, str, bool]]:
    """(name, value, is_default) for every config, for DescribeConfigs-style listings."""
    for name, value in config.to_props().items():
        yield name, value, name not in config.overrides
