"""Topic configs: Kafka names, defaults, parsing and validation, persistence."""

from __future__ import annotations

import dataclasses

import pytest

from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.config import (
    CONFIG_KEYS,
    LONG_MAX,
    LogConfig,
    read_config_file,
    write_config_file,
)


def test_defaults_are_kafkas() -> None:
    c = LogConfig()
    assert c.segment_bytes == 1073741824
    assert c.segment_ms == 604800000
    assert c.segment_index_bytes == 10485760
    assert c.index_interval_bytes == 4096
    assert c.retention_ms == 604800000
    assert c.retention_bytes == -1
    assert c.cleanup_policy == ("delete",)
    assert c.delete_retention_ms == 86400000
    assert c.min_cleanable_dirty_ratio == 0.5
    assert c.min_compaction_lag_ms == 0
    assert c.max_message_bytes == 1048588
    assert c.flush_messages == LONG_MAX and c.flush_ms == LONG_MAX
    assert c.message_timestamp_type == "CreateTime"
    assert c.file_delete_delay_ms == 60000
    assert not c.compact and c.delete


def test_every_key_has_a_field_with_its_default() -> None:
    fields = {f.name: f for f in dataclasses.fields(LogConfig) if f.name != "overrides"}
    assert set(fields) == {k.attr for k in CONFIG_KEYS.values()}
    c = LogConfig()
    for key in CONFIG_KEYS.values():
        assert getattr(c, key.attr) == key.default, key.name
        assert c.get(key.name) == key.default


def test_parse_strings_like_kafka() -> None:
    c = LogConfig.from_props(
        {
            "segment.bytes": " 1048576 ",
            "cleanup.policy": "compact, delete",
            "min.cleanable.dirty.ratio": "0.25",
            "preallocate": "TRUE",
            "message.timestamp.type": "LogAppendTime",
            "retention.ms": "-1",
        }
    )
    assert c.segment_bytes == 1048576
    assert c.cleanup_policy == ("compact", "delete")
    assert c.compact and c.delete
    assert c.min_cleanable_dirty_ratio == 0.25
    assert c.preallocate is True
    assert c.log_append_time
    assert c.retention_ms == -1
    assert dict(c.overrides) == {
        "segment.bytes": "1048576",
        "cleanup.policy": "compact,delete",
        "min.cleanable.dirty.ratio": "0.25",
        "preallocate": "true",
        "message.timestamp.type": "LogAppendTime",
        "retention.ms": "-1",
    }
    assert c.to_props()["segment.bytes"] == "1048576"
    assert c.to_props()["retention.bytes"] == "-1"


@pytest.mark.parametrize(
    "name,value",
    [
        ("segment.bytes", "abc"),
        ("segment.bytes", "10"),  # below 14
        ("segment.bytes", str(2**31)),  # not an int32
        ("segment.bytes", "1_000"),
        ("retention.ms", "-2"),
        ("cleanup.policy", "compact,shred"),
        ("cleanup.policy", "compact,,delete"),
        ("min.cleanable.dirty.ratio", "1.5"),
        ("min.cleanable.dirty.ratio", "nan"),
        ("message.timestamp.type", "WallClock"),
        ("preallocate", "yes"),
        ("flush.messages", "0"),
        ("segment.ms", "0"),
        ("no.such.config", "1"),
    ],
)
def test_bad_values_are_invalid_config(name: str, value: str) -> None:
    with pytest.raises(KafkaError) as exc:
        LogConfig.from_props({name: value})
    assert exc.value.code == ErrorCode.INVALID_CONFIG


def test_cross_check_compaction_lags() -> None:
    with pytest.raises(KafkaError) as exc:
        LogConfig.from_props({"min.compaction.lag.ms": "100", "max.compaction.lag.ms": "10"})
    assert exc.value.code == ErrorCode.INVALID_CONFIG


def test_overrides_stack_on_defaults() -> None:
    defaults = LogConfig.from_props({"retention.ms": "1000"})
    c = LogConfig.from_props({"segment.bytes": "4096"}, defaults)
    assert c.retention_ms == 1000 and c.segment_bytes == 4096
    assert set(c.overrides) == {"retention.ms", "segment.bytes"}
    c2 = c.with_overrides({"segment.bytes": "8192"})
    assert c2.segment_bytes == 8192 and c.segment_bytes == 4096


def test_properties_round_trip(tmp_path) -> None:
    path = str(tmp_path / "t.properties")
    props = {"cleanup.policy": "compact,delete", "weird": "a=b\\c\nd"}
    write_config_file(path, props, header="hello")
    assert read_config_file(path) == props
    assert not (tmp_path / "t.properties.tmp").exists()
