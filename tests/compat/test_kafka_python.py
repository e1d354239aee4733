"""kafka-python against a real `strom serve`: produce and consume round trips with assign(), in
every codec kafka-python can write here, and admin create/delete topics."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError
from kafka.partitioner.default import murmur2

from tests.conftest import StromProcess

TIMEOUT_MS = 15000


def _admin(strom: StromProcess) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=strom.bootstrap, request_timeout_ms=TIMEOUT_MS)


def _consume_all(strom: StromProcess, topic: str, partitions: int, expected: int) -> list:
    c = KafkaConsumer(
        bootstrap_servers=strom.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=TIMEOUT_MS + 5000,
        fetch_max_wait_ms=100,
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out: list = []
        deadline = time.monotonic() + 30
        while len(out) < expected and time.monotonic() < deadline:
            for records in c.poll(timeout_ms=500).values():
                out.extend(records)
        ends = c.end_offsets(tps)
        assert ends == {tp: sum(1 for r in out if r.partition == tp.partition) for tp in tps}
        return out
    finally:
        c.close()


@pytest.mark.parametrize("codec", [None, "gzip", "lz4", "zstd"])
def test_produce_consume_round_trip(strom: StromProcess, codec: str | None) -> None:
    topic, partitions, keys, per_key = f"kp-{codec}", 3, 10, 20
    admin = _admin(strom)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=TIMEOUT_MS)
    finally:
        admin.close()
    producer = KafkaProducer(
        bootstrap_servers=strom.bootstrap,
        acks="all",
        compression_type=codec,
        linger_ms=5,
        request_timeout_ms=TIMEOUT_MS,
    )
    try:
        futures = []
        for n in range(per_key):
            for k in range(keys):
                futures.append(
                    producer.send(
                        topic,
                        key=b"key-%d" % k,
                        value=b"%d-%d|" % (k, n) + b"x" * (n * 10),
                        headers=[("k", b"%d" % k), ("n", b"%d" % n)],
                    )
                )
        producer.flush(timeout=15)
        metas = [f.get(timeout=15) for f in futures]
    finally:
        producer.close(timeout=5)
    # the offsets the producer was given are contiguous per partition
    for p in range(partitions):
        assert sorted(m.offset for m in metas if m.partition == p) == list(
            range(sum(1 for m in metas if m.partition == p))
        )

    got = _consume_all(strom, topic, partitions, keys * per_key)
    assert len(got) == keys * per_key
    for p in range(partitions):
        offsets = [r.offset for r in got if r.partition == p]
        assert offsets == list(range(len(offsets)))
    for k in range(keys):
        key = b"key-%d" % k
        mine = [r for r in got if r.key == key]
        # kafka-python's default partitioner: murmur2(key) & 0x7fffffff % partitions
        assert {r.partition for r in mine} == {(murmur2(key) & 0x7FFFFFFF) % partitions}
        assert [r.value for r in mine] == [
            b"%d-%d|" % (k, n) + b"x" * (n * 10) for n in range(per_key)
        ]
        assert [r.headers for r in mine] == [
            [("k", b"%d" % k), ("n", b"%d" % n)] for n in range(per_key)
        ]
        assert all(r.timestamp > 0 and r.timestamp_type == 0 for r in mine)


def test_admin_create_delete_topics(strom: StromProcess) -> None:
    admin = _admin(strom)
    try:
        admin.create_topics(
            [
                NewTopic("kp-admin-a", 3, 1, topic_configs={"retention.ms": "60000"}),
                NewTopic("kp-admin-b", 1, 1),
            ],
            timeout_ms=TIMEOUT_MS,
        )
        assert {"kp-admin-a", "kp-admin-b"} <= set(admin.list_topics())
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic("kp-admin-a", 3, 1)], timeout_ms=TIMEOUT_MS)

        described = {t["name"]: t for t in admin.describe_topics(["kp-admin-a", "kp-admin-b"])}
        assert all(t["error_code"] == 0 for t in described.values())
        parts = described["kp-admin-a"]["partitions"]
        assert sorted(p["partition_index"] for p in parts) == [0, 1, 2]
        assert [p["leader_id"] for p in described["kp-admin-b"]["partitions"]] == [0]
        assert described["kp-admin-a"]["topic_id"] != described["kp-admin-b"]["topic_id"]

        admin.delete_topics(["kp-admin-a", "kp-admin-b"], timeout_ms=TIMEOUT_MS)
        assert not {"kp-admin-a", "kp-admin-b"} & set(admin.list_topics())
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics(["kp-admin-a"], timeout_ms=TIMEOUT_MS)
    finally:
        admin.close()


def test_topic_authorized_operations(strom: StromProcess) -> None:
    admin = _admin(strom)
    try:
        admin.create_topics([NewTopic("kp-ops", 1, 1)], timeout_ms=TIMEOUT_MS)
        (described,) = admin.describe_topics(["kp-ops"])
        # Kafka's topic operations (AclEntry.supportedOperations(TOPIC)), all allowed without ACLs
        assert set(described["authorized_operations"]) == {
            "READ",
            "WRITE",
            "CREATE",
            "DELETE",
            "ALTER",
            "DESCRIBE",
            "DESCRIBE_CONFIGS",
            "ALTER_CONFIGS",
        }
    finally:
        admin.close()
