"""Config description and alteration planning (broker/admin_configs.py), without a socket."""

from __future__ import annotations

import logging

import pytest

from strom.broker import admin_configs as ac
from strom.broker.admin_configs import ConfigSource, OpType
from strom.broker.admin_partitions import check_assignments
from strom.broker.config import BrokerConfig
from strom.cluster.metadata import PartitionMeta, TopicMeta
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.config import LogConfig

STATIC, DEFAULT, TOPIC = (
    ConfigSource.STATIC_BROKER_CONFIG,
    ConfigSource.DEFAULT_CONFIG,
    ConfigSource.DYNAMIC_TOPIC_CONFIG,
)


def topic_entries(props: dict[str, str], overrides: dict[str, str] | None = None, **kw):  # noqa: ANN003, ANN201
    broker = BrokerConfig.from_props(props)
    config = LogConfig.from_props(overrides or {}, LogConfig.from_props(broker.topic_defaults()))
    entries = ac.describe_topic(broker, config, overrides or {}, include_synonyms=True, **kw)
    return {e.name: e for e in entries}


def syn(entry: ac.ConfigEntry) -> list[tuple[str, str | None, ConfigSource]]:
    return [(s.name, s.value, s.source) for s in entry.synonyms]


def code(exc: pytest.ExceptionInfo) -> ErrorCode:
    return exc.value.code


def test_topic_sources_follow_kafkas_precedence() -> None:
    e = topic_entries({"log.retention.ms": "1000", "log.retention.hours": "2"})["retention.ms"]
    assert (e.value, e.source, e.is_default) == ("1000", STATIC, False)
    assert syn(e) == [
        ("log.retention.ms", "1000", STATIC),
        ("log.retention.hours", "2", STATIC),
        ("log.retention.hours", "168", DEFAULT),
    ]
    e = topic_entries({"log.retention.ms": "1000"}, {"retention.ms": "5"})["retention.ms"]
    assert (e.value, e.source) == ("5", TOPIC)
    assert syn(e)[0] == ("retention.ms", "5", TOPIC)
    e = topic_entries({})["segment.bytes"]
    assert (e.source, e.is_default, syn(e)) == (
        DEFAULT,
        True,
        [("log.segment.bytes", "1073741824", DEFAULT)],
    )


def test_lower_precedence_synonyms_are_dropped_as_in_kafka() -> None:
    # retention from log.retention.hours: the value follows it, but Kafka lists no synonyms
    e = topic_entries({"log.retention.hours": "24"})["retention.ms"]
    assert (e.value, e.source, e.synonyms) == ("86400000", DEFAULT, ())
    e = topic_entries({"log.flush.interval.ms": "50"})["flush.ms"]
    assert syn(e) == [
        ("log.flush.interval.ms", "50", STATIC),
        ("log.flush.scheduler.interval.ms", str(ac.LONG_MAX), DEFAULT),
    ]
    assert topic_entries({})["flush.ms"].synonyms == ()
    # a synonym Strom does not apply from the properties file shows only its default
    e = topic_entries({"log.message.format.version": "2.8"})["message.format.version"]
    assert (e.value, syn(e)) == ("3.0-IV1", [("log.message.format.version", "3.0-IV1", DEFAULT)])
    # one it applies sets the topic default
    e = topic_entries({"compression.gzip.level": "5"})["compression.gzip.level"]
    assert (e.value, syn(e)) == (
        "5",
        [("compression.gzip.level", "5", STATIC), ("compression.gzip.level", "-1", DEFAULT)],
    )


def test_key_filter_types_and_documentation() -> None:
    broker = BrokerConfig.from_props({})
    everything = ac.describe_topic(broker, LogConfig(), {}, [])
    assert len(everything) == len(ac.CONFIG_KEYS)
    (e,) = ac.describe_topic(broker, LogConfig(), {}, ["cleanup.policy", "nope"], False, True)
    assert (e.name, e.type, e.synonyms) == ("cleanup.policy", ac.ConfigType.LIST, ())
    assert e.documentation
    (e,) = ac.describe_topic(broker, LogConfig(), {}, ["cleanup.policy"])
    assert e.documentation is None


def test_broker_entries() -> None:
    broker = BrokerConfig.from_props({"log.retention.ms": "5", "secret.thing": "x"})
    by = {e.name: e for e in ac.describe_broker(broker, include_synonyms=True)}
    assert (by["log.retention.ms"].value, by["log.retention.ms"].source) == ("5", STATIC)
    assert not by["log.retention.ms"].read_only
    hours = by["log.retention.hours"]
    assert (hours.source, hours.read_only, syn(hours)) == (
        DEFAULT,
        True,
        [("log.retention.hours", "168", DEFAULT)],
    )
    unknown = by["secret.thing"]
    assert (unknown.value, unknown.sensitive, unknown.source, unknown.type) == (
        None,
        True,
        STATIC,
        ac.ConfigType.UNKNOWN,
    )
    assert by["log.roll.ms"].value is None and by["log.roll.ms"].source == DEFAULT


def test_incremental_operations() -> None:
    plan = ac.incremental_overrides
    assert plan({}, [("cleanup.policy", OpType.APPEND, "compact")]) == {
        "cleanup.policy": "delete,compact"
    }
    assert plan({"cleanup.policy": "compact,delete"}, [("cleanup.policy", 3, "compact")]) == {
        "cleanup.policy": "delete"
    }
    assert plan({"a": "1"}, [("a", OpType.DELETE, None), ("b", OpType.SET, "2")]) == {"b": "2"}
    with pytest.raises(KafkaError) as e:
        plan({}, [("retention.ms", OpType.APPEND, "1")])
    assert code(e) == ErrorCode.INVALID_CONFIG
    with pytest.raises(KafkaError) as e:
        plan({}, [("a", OpType.SET, "1"), ("a", OpType.DELETE, None)])
    assert code(e) == ErrorCode.INVALID_REQUEST
    with pytest.raises(KafkaError) as e:
        plan({}, [("a", OpType.SET, None)])
    assert code(e) == ErrorCode.INVALID_REQUEST
    with pytest.raises(KafkaError) as e:
        plan({}, [("a", 9, "x")])
    assert code(e) == ErrorCode.INVALID_REQUEST


def test_validation_order() -> None:
    defaults = LogConfig()
    with pytest.raises(KafkaError) as e:
        ac.validate_topic_overrides("", {}, defaults)
    assert code(e) == ErrorCode.INVALID_REQUEST
    with pytest.raises(KafkaError) as e:
        ac.validate_topic_overrides("bad/name", {"retention.ms": "x"}, defaults)
    assert code(e) == ErrorCode.INVALID_TOPIC_EXCEPTION
    for bad in ({"retention.ms": "x"}, {"nope": "1"}):
        with pytest.raises(KafkaError) as e:
            ac.validate_topic_overrides("t", bad, defaults)
        assert code(e) == ErrorCode.INVALID_CONFIG
    assert ac.validate_topic_overrides("t", {"preallocate": "TRUE"}, defaults) == {
        "preallocate": "true"
    }
    with pytest.raises(KafkaError) as e:
        ac.replace_overrides([("a", None)])
    assert code(e) == ErrorCode.INVALID_REQUEST


def test_logger_levels() -> None:
    name = "strom.test.admin_configs"
    lg = logging.getLogger(name)
    for ops, expected in (
        ([(name, OpType.SET, "LOUD")], ErrorCode.INVALID_CONFIG),
        ([("no.such.logger.here", OpType.SET, "INFO")], ErrorCode.INVALID_CONFIG),
        ([("root", OpType.DELETE, None)], ErrorCode.INVALID_REQUEST),
        ([(name, OpType.APPEND, "INFO")], ErrorCode.INVALID_REQUEST),
    ):
        with pytest.raises(KafkaError) as e:
            ac.alter_loggers(ops, validate_only=False)
        assert code(e) == expected
    ac.alter_loggers([(name, OpType.SET, "ERROR")], validate_only=True)
    assert lg.level == logging.NOTSET
    ac.alter_loggers([(name, OpType.SET, "WARN")], validate_only=False)
    assert [e.value for e in ac.describe_loggers([name])] == ["WARN"]
    ac.alter_loggers([(name, OpType.DELETE, None)], validate_only=False)
    assert lg.level == logging.NOTSET


def test_partition_assignments() -> None:
    topic = TopicMeta("t", bytes(16), [PartitionMeta(0, 0, 0, [0], [0])])
    check_assignments(topic, 3, None, {0})
    check_assignments(topic, 3, [[0], [0]], {0})
    for bad in ([[0]], [[0], [1]], [[0], []], [[0], [0, 0]]):
        with pytest.raises(KafkaError) as e:
            check_assignments(topic, 3, bad, {0, 1} if bad == [[0], [0, 0]] else {0})
        assert code(e) == ErrorCode.INVALID_REPLICA_ASSIGNMENT, bad
