"""Admin APIs against a real `strom serve`: CreatePartitions, DeleteRecords, DescribeConfigs,
AlterConfigs, IncrementalAlterConfigs, DescribeCluster and DescribeLogDirs, through
confluent-kafka's AdminClient, kafka-python's KafkaAdminClient and raw requests (for the
per-version fields and error cases the clients hide)."""

from __future__ import annotations

import socket
import struct

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclOperation,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)
from kafka import TopicPartition as KTopicPartition
from kafka.admin import ConfigResource as KConfigResource
from kafka.admin import KafkaAdminClient
from kafka.errors import InvalidPartitionsError

from strom.protocol.frames import decode_response, encode_request
from strom.protocol.messages.create_partitions import CreatePartitionsRequest
from strom.protocol.messages.delete_records import DeleteRecordsRequest
from strom.protocol.messages.describe_cluster import DescribeClusterRequest
from strom.protocol.messages.describe_configs import DescribeConfigsRequest
from strom.protocol.messages.describe_log_dirs import DescribeLogDirsRequest
from strom.protocol.messages.incremental_alter_configs import IncrementalAlterConfigsRequest

TIMEOUT = 15

# Kafka error codes
OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_PARTITIONS = 37
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_CONFIG = 40
INVALID_REQUEST = 42
POLICY_VIOLATION = 44
MISMATCHED_ENDPOINT_TYPE = 114
UNSUPPORTED_ENDPOINT_TYPE = 115

# DescribeConfigs numbering
TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5
LONG_TYPE, LIST_TYPE = 5, 7


# -- helpers ------------------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def raw(bootstrap: str, body: object, version: int) -> object:
    """One request over a fresh connection, decoded with Strom's own codec."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as s:
        s.sendall(encode_request(body, version, 42, "admin-test"))
        (size,) = struct.unpack(">i", _recv_exact(s, 4))
        corr, response = decode_response(_recv_exact(s, size), body.API_KEY, version)
    assert corr == 42
    return response


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def kadmin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT * 1000)


def create_topic(a: AdminClient, name: str, partitions: int = 1, **config: str) -> None:
    topic = NewTopic(
        name, partitions, 1, config={k.replace("_", "."): v for k, v in config.items()}
    )
    a.create_topics([topic])[name].result(TIMEOUT)


def partition_count(a: AdminClient, topic: str) -> int:
    return len(a.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions)


def error_code(future) -> int:  # noqa: ANN001
    with pytest.raises(KafkaException) as info:
        future.result(TIMEOUT)
    return info.value.args[0].code()


def produce(bootstrap: str, topic: str, n: int, partition: int = 0) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        p.produce(topic, value=b"v%d" % i, partition=partition)
    assert p.flush(TIMEOUT) == 0


def consume_offsets(bootstrap: str, topic: str, partition: int, expect: int) -> list[int]:
    """Offsets read from the beginning of a partition (no group: assign and read)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "admin-test",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        c.assign([TopicPartition(topic, partition, -2)])  # OFFSET_BEGINNING
        offsets: list[int] = []
        for _ in range(100):
            if len(offsets) >= expect:
                break
            msg = c.poll(0.2)
            if msg is not None and msg.error() is None:
                offsets.append(msg.offset())
        return offsets
    finally:
        c.close()


def describe_topic(a: AdminClient, topic: str) -> dict[str, ConfigEntry]:
    return a.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])[
        ConfigResource(ResourceType.TOPIC, topic)
    ].result(TIMEOUT)


def src(entry: ConfigEntry) -> ConfigSource:
    """confluent-kafka gives sources as ints; as the enum they compare and print clearly."""
    return ConfigSource(entry.source)


def synonyms(entry: ConfigEntry) -> list[tuple[str, str, ConfigSource]]:
    return [(s.name, s.value, src(s)) for s in entry.synonyms.values()]


def raw_describe(bootstrap: str, version: int, *resources: tuple, **flags: bool):  # noqa: ANN201
    R = DescribeConfigsRequest.DescribeConfigsResource
    req = DescribeConfigsRequest(resources=[R(t, n, keys) for t, n, keys in resources], **flags)
    return raw(bootstrap, req, version).results


# -- CreatePartitions ---------------------------------------------------------------------------


def test_create_partitions(strom) -> None:  # noqa: ANN001
    a = admin(strom.bootstrap)
    create_topic(a, "grow")

    # validate_only checks but changes nothing
    a.create_partitions([NewPartitions("grow", 3)], validate_only=True)["grow"].result(TIMEOUT)
    assert partition_count(a, "grow") == 1

    a.create_partitions([NewPartitions("grow", 3)])["grow"].result(TIMEOUT)
    assert partition_count(a, "grow") == 3
    # the new partition is served: produce to it and read it back
    produce(strom.bootstrap, "grow", 2, partition=2)
    assert consume_offsets(strom.bootstrap, "grow", 2, 2) == [0, 1]

    def grow(*new: NewPartitions) -> dict:
        return a.create_partitions(list(new), request_timeout=TIMEOUT)

    assert error_code(grow(NewPartitions("grow", 2))["grow"]) == INVALID_PARTITIONS
    assert error_code(grow(NewPartitions("grow", 3))["grow"]) == INVALID_PARTITIONS
    assert error_code(grow(NewPartitions("nosuch", 2))["nosuch"]) == UNKNOWN_TOPIC_OR_PARTITION
    for bad in ([[7]], [[0, 0]], [[0], [0]]):  # unknown broker, twice, too many assignments
        f = grow(NewPartitions("grow", 4, replica_assignment=bad))["grow"]
        assert error_code(f) == INVALID_REPLICA_ASSIGNMENT, bad
    assert partition_count(a, "grow") == 3

    # kafka-python: a manual assignment to this broker, then a plain count
    k = kadmin(strom.bootstrap)
    try:
        k.create_partitions({"grow": {"count": 4, "assignments": [[0]]}})
        k.create_partitions({"grow": 5})
        with pytest.raises(InvalidPartitionsError):
            k.create_partitions({"grow": 4})
    finally:
        k.close()
    assert partition_count(a, "grow") == 5

    # a name given twice is answered once with INVALID_REQUEST; the others still proceed
    T = CreatePartitionsRequest.CreatePartitionsTopic
    req = CreatePartitionsRequest(
        topics=[T("grow", 7, None), T("grow", 8, None), T("nosuch", 2, None)], timeout_ms=5000
    )
    results = raw(strom.bootstrap, req, 0).results
    assert [(r.name, r.error_code) for r in results] == [
        ("grow", INVALID_REQUEST),
        ("nosuch", UNKNOWN_TOPIC_OR_PARTITION),
    ]
    assert partition_count(a, "grow") == 5

    # partitions survive a restart
    strom.stop()
    strom.start()
    assert partition_count(admin(strom.bootstrap), "grow") == 5


# -- DeleteRecords ------------------------------------------------------------------------------


def _raw_delete(bootstrap: str, topic: str, partition: int, offset: int) -> tuple[int, int]:
    T, P = DeleteRecordsRequest.DeleteRecordsTopic, DeleteRecordsRequest.DeleteRecordsPartition
    req = DeleteRecordsRequest(topics=[T(topic, [P(partition, offset)])], timeout_ms=5000)
    result = raw(bootstrap, req, 2).topics[0].partitions[0]
    return result.error_code, result.low_watermark


def test_delete_records(strom) -> None:  # noqa: ANN001
    a = admin(strom.bootstrap)
    create_topic(a, "dr")
    create_topic(a, "compacted", cleanup_policy="compact")
    produce(strom.bootstrap, "dr", 10)

    deleted = a.delete_records([TopicPartition("dr", 0, 4)])
    assert next(iter(deleted.values())).result(TIMEOUT).low_watermark == 4
    # a consumer from the beginning now starts at the new log start offset
    assert consume_offsets(strom.bootstrap, "dr", 0, 6) == list(range(4, 10))

    k = kadmin(strom.bootstrap)
    try:
        result = k.delete_records({KTopicPartition("dr", 0): 6})
        assert result[KTopicPartition("dr", 0)]["low_watermark"] == 6
    finally:
        k.close()

    assert _raw_delete(strom.bootstrap, "dr", 0, 11) == (OFFSET_OUT_OF_RANGE, -1)
    assert _raw_delete(strom.bootstrap, "dr", 0, 5) == (0, 6)  # never moves back
    assert _raw_delete(strom.bootstrap, "dr", 3, 1) == (UNKNOWN_TOPIC_OR_PARTITION, -1)
    assert _raw_delete(strom.bootstrap, "nosuch", 0, 1) == (UNKNOWN_TOPIC_OR_PARTITION, -1)
    assert _raw_delete(strom.bootstrap, "compacted", 0, 0) == (POLICY_VIOLATION, -1)
    assert _raw_delete(strom.bootstrap, "dr", 0, -1) == (0, 10)  # -1: the high watermark

    strom.stop()
    strom.start()
    a = admin(strom.bootstrap)
    earliest = a.list_offsets({TopicPartition("dr", 0): OffsetSpec.earliest()})
    assert next(iter(earliest.values())).result(TIMEOUT).offset == 10


# -- DescribeConfigs / AlterConfigs / IncrementalAlterConfigs -----------------------------------


BROKER_PROPS = {"log.retention.ms": "3600000", "log.segment.bytes": "2000000"}


def test_describe_configs(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory(config=BROKER_PROPS)
    a = admin(strom.bootstrap)
    create_topic(a, "cfg", retention_bytes="5000")

    cfg = describe_topic(a, "cfg")
    retention = cfg["retention.ms"]
    assert retention.value == "3600000"
    assert src(retention) == ConfigSource.STATIC_BROKER_CONFIG
    assert not retention.is_default and not retention.is_read_only
    assert synonyms(retention) == [
        ("log.retention.ms", "3600000", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG),
    ]
    assert src(cfg["retention.bytes"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert synonyms(cfg["retention.bytes"]) == [
        ("retention.bytes", "5000", ConfigSource.DYNAMIC_TOPIC_CONFIG),
        ("log.retention.bytes", "-1", ConfigSource.DEFAULT_CONFIG),
    ]
    assert cfg["segment.bytes"].value == "2000000"
    assert src(cfg["segment.bytes"]) == ConfigSource.STATIC_BROKER_CONFIG
    assert src(cfg["cleanup.policy"]) == ConfigSource.DEFAULT_CONFIG
    assert cfg["cleanup.policy"].is_default

    # the broker resource
    broker = a.describe_configs([ConfigResource(ResourceType.BROKER, "0")])
    bcfg = next(iter(broker.values())).result(TIMEOUT)
    assert bcfg["log.retention.ms"].value == "3600000"
    assert src(bcfg["log.retention.ms"]) == ConfigSource.STATIC_BROKER_CONFIG
    assert not bcfg["log.retention.ms"].is_read_only
    assert src(bcfg["log.retention.hours"]) == ConfigSource.DEFAULT_CONFIG
    assert bcfg["log.retention.hours"].is_read_only

    # errors, per resource
    f = a.describe_configs([ConfigResource(ResourceType.TOPIC, "nosuch")])
    assert error_code(next(iter(f.values()))) == UNKNOWN_TOPIC_OR_PARTITION
    # (librdkafka sends a broker resource to that broker, so another id goes raw)
    results = raw_describe(strom.bootstrap, 4, (BROKER, "5", None), (BROKER, "x", None))
    assert [r.error_code for r in results] == [INVALID_REQUEST, INVALID_REQUEST]

    # kafka-python: all configs with synonyms, and the default filter (overrides only)
    k = kadmin(strom.bootstrap)
    try:
        out = k.describe_configs(
            [KConfigResource("TOPIC", "cfg")], include_synonyms=True, config_filter="all"
        )["topic"]["cfg"]
        assert out["retention.ms"]["config_source"] == "STATIC_BROKER_CONFIG"
        assert [s["name"] for s in out["retention.ms"]["synonyms"]] == [
            "log.retention.ms",
            "log.retention.hours",
        ]
        assert out["retention.ms"]["config_type"] == "LONG"
        modified = k.describe_configs([KConfigResource("TOPIC", "cfg")])["topic"]["cfg"]
        assert set(modified) == {"retention.bytes"}
    finally:
        k.close()

    # v0: is_default instead of sources; v4: the key filter, types and documentation
    (v0,) = raw_describe(strom.bootstrap, 0, (TOPIC, "cfg", None))
    flags = {c.name: c.is_default for c in v0.configs}
    assert flags["retention.bytes"] is False and flags["cleanup.policy"] is True
    (v4,) = raw_describe(
        strom.bootstrap,
        4,
        (TOPIC, "cfg", ["retention.ms", "cleanup.policy", "no.such.key"]),
        include_synonyms=True,
        include_documentation=True,
    )
    assert v4.error_code == 0
    by_name = {c.name: c for c in v4.configs}
    assert set(by_name) == {"retention.ms", "cleanup.policy"}
    assert by_name["retention.ms"].config_type == LONG_TYPE
    assert by_name["cleanup.policy"].config_type == LIST_TYPE
    assert by_name["retention.ms"].documentation
    assert by_name["retention.ms"].config_source == STATIC_BROKER_CONFIG
    # the cluster-wide broker default resource has no dynamic defaults; loggers are listed
    default, loggers = raw_describe(
        strom.bootstrap, 4, (BROKER, "", None), (BROKER_LOGGER, "0", ["root"])
    )
    assert (default.error_code, default.configs) == (0, [])
    assert [(c.name, c.config_source) for c in loggers.configs] == [("root", 6)]
    # a resource type Kafka does not know fails every resource of the request
    results = raw_describe(strom.bootstrap, 4, (TOPIC, "cfg", None), (3, "x", None))
    assert [r.error_code for r in results] == [INVALID_REQUEST, INVALID_REQUEST]


def test_alter_configs_and_restart(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory(config=BROKER_PROPS)
    a = admin(strom.bootstrap)
    create_topic(a, "alt", retention_bytes="5000")
    topic = ConfigResource(ResourceType.TOPIC, "alt")

    def alter(*resources: ConfigResource, validate_only: bool = False) -> dict:
        return a.alter_configs(list(resources), validate_only=validate_only)

    def incremental(*entries: ConfigEntry, validate_only: bool = False) -> dict:
        r = ConfigResource(ResourceType.TOPIC, "alt", incremental_configs=list(entries))
        return a.incremental_alter_configs([r], validate_only=validate_only)

    def op(name: str, value: str | None, kind: AlterConfigOpType) -> ConfigEntry:
        return ConfigEntry(name, value, incremental_operation=kind)

    # AlterConfigs replaces the overrides wholesale
    new = {"retention.ms": "7200000", "cleanup.policy": "compact,delete"}
    alter(ConfigResource(ResourceType.TOPIC, "alt", set_config=new))[topic].result(TIMEOUT)
    cfg = describe_topic(a, "alt")
    assert cfg["retention.ms"].value == "7200000"
    assert src(cfg["retention.ms"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert cfg["retention.bytes"].value == "-1"
    assert src(cfg["retention.bytes"]) == ConfigSource.DEFAULT_CONFIG
    # validate_only changes nothing; bad values, names and topics are refused
    once = {"retention.ms": "1"}
    res = ConfigResource(ResourceType.TOPIC, "alt", set_config=once)
    alter(res, validate_only=True)[topic].result(TIMEOUT)
    assert describe_topic(a, "alt")["retention.ms"].value == "7200000"
    for bad in ({"retention.ms": "abc"}, {"no.such.config": "1"}, {"min.insync.replicas": "0"}):
        res = ConfigResource(ResourceType.TOPIC, "alt", set_config=bad)
        assert error_code(alter(res)[topic]) == INVALID_CONFIG, bad
    nosuch = ConfigResource(ResourceType.TOPIC, "nosuch", set_config=once)
    assert error_code(alter(nosuch)[nosuch]) == UNKNOWN_TOPIC_OR_PARTITION
    # broker configs are not dynamic in Strom
    b = ConfigResource(ResourceType.BROKER, "0", set_config={"log.retention.ms": "1"})
    assert error_code(alter(b)[b]) == INVALID_REQUEST

    # IncrementalAlterConfigs: list operations, set, delete
    incremental(op("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT))[topic].result(TIMEOUT)
    assert describe_topic(a, "alt")["cleanup.policy"].value == "delete"
    incremental(
        op("cleanup.policy", "compact", AlterConfigOpType.APPEND),
        op("max.message.bytes", "2000", AlterConfigOpType.SET),
        op("retention.ms", None, AlterConfigOpType.DELETE),
    )[topic].result(TIMEOUT)
    cfg = describe_topic(a, "alt")
    assert cfg["cleanup.policy"].value == "delete,compact"
    assert cfg["max.message.bytes"].value == "2000"
    assert cfg["retention.ms"].value == "3600000"  # back to the broker's setting
    assert src(cfg["retention.ms"]) == ConfigSource.STATIC_BROKER_CONFIG
    f = incremental(op("retention.ms", "5", AlterConfigOpType.APPEND))[topic]
    assert error_code(f) == INVALID_CONFIG  # not a list
    f = incremental(op("segment.ms", "5", AlterConfigOpType.SET), validate_only=True)[topic]
    f.result(TIMEOUT)
    assert src(describe_topic(a, "alt")["segment.ms"]) == ConfigSource.DEFAULT_CONFIG

    # kafka-python: incremental set, then reset
    k = kadmin(strom.bootstrap)
    try:
        k.alter_configs([KConfigResource("TOPIC", "alt", configs={"segment.ms": "100000"})])
        assert describe_topic(a, "alt")["segment.ms"].value == "100000"
        k.reset_configs([KConfigResource("TOPIC", "alt", configs=["segment.ms"])])
        assert src(describe_topic(a, "alt")["segment.ms"]) == ConfigSource.DEFAULT_CONFIG
    finally:
        k.close()

    # raw: duplicate keys, null values and broker-logger levels
    R = IncrementalAlterConfigsRequest.AlterConfigsResource
    C = IncrementalAlterConfigsRequest.AlterableConfig
    req = IncrementalAlterConfigsRequest(
        resources=[
            R(TOPIC, "alt", [C("segment.ms", 0, "1000"), C("segment.ms", 1, None)]),
            R(TOPIC, "nosuch", [C("segment.ms", 0, None)]),
            R(BROKER_LOGGER, "0", [C("strom.broker.handlers.configs", 0, "DEBUG")]),
        ]
    )
    results = raw(strom.bootstrap, req, 1).responses
    assert [r.error_code for r in results] == [INVALID_REQUEST, INVALID_REQUEST, 0]

    # everything persisted across a restart
    strom.stop()
    strom.start()
    cfg = describe_topic(admin(strom.bootstrap), "alt")
    assert cfg["cleanup.policy"].value == "delete,compact"
    assert src(cfg["cleanup.policy"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert cfg["max.message.bytes"].value == "2000"
    assert src(cfg["retention.ms"]) == ConfigSource.STATIC_BROKER_CONFIG
    assert src(cfg["retention.bytes"]) == ConfigSource.DEFAULT_CONFIG


# -- DescribeCluster / DescribeLogDirs ----------------------------------------------------------


def test_describe_cluster_and_log_dirs(strom) -> None:  # noqa: ANN001
    a = admin(strom.bootstrap)
    cluster_id = a.list_topics(timeout=TIMEOUT).cluster_id

    described = a.describe_cluster(include_authorized_operations=True).result(TIMEOUT)
    assert described.cluster_id == cluster_id
    assert described.controller.id == 0
    assert [(n.id, n.host, n.port) for n in described.nodes] == [(0, "127.0.0.1", strom.port)]
    assert AclOperation.DESCRIBE in described.authorized_operations
    assert AclOperation.READ not in described.authorized_operations  # not a cluster operation
    assert not a.describe_cluster().result(TIMEOUT).authorized_operations

    k = kadmin(strom.bootstrap)
    try:
        info = k.describe_cluster()
        assert (info["cluster_id"], info["controller_id"]) == (cluster_id, 0)

        create_topic(a, "ld", partitions=2)
        produce(strom.bootstrap, "ld", 5, partition=0)
        (dirs,) = k.describe_log_dirs()
        (logdir,) = dirs["log_dirs"]
        assert logdir["error_code"] == 0
        assert logdir["log_dir"] == str(strom.data_dir.resolve())
        assert logdir["total_bytes"] >= logdir["usable_bytes"] > 0
        sizes = {
            (t["name"], p["partition_index"]): p["partition_size"]
            for t in logdir["topics"]
            for p in t["partitions"]
        }
        assert sizes[("ld", 0)] > 0 and sizes[("ld", 1)] == 0

        (dirs,) = k.describe_log_dirs({"ld": [1]})
        parts = [
            (t["name"], p["partition_index"])
            for t in dirs["log_dirs"][0]["topics"]
            for p in t["partitions"]
        ]
        assert parts == [("ld", 1)]
    finally:
        k.close()

    # raw: v0 with all topics; endpoint types other than brokers
    (result,) = raw(strom.bootstrap, DescribeLogDirsRequest(topics=None), 0).results
    assert result.error_code == 0 and any(t.name == "ld" for t in result.topics)
    mismatched = raw(strom.bootstrap, DescribeClusterRequest(endpoint_type=2), 1)
    assert mismatched.error_code == MISMATCHED_ENDPOINT_TYPE
    unsupported = raw(strom.bootstrap, DescribeClusterRequest(endpoint_type=9), 1)
    assert unsupported.error_code == UNSUPPORTED_ENDPOINT_TYPE
