"""confluent-kafka (librdkafka) against a real `strom serve`: admin, an idempotent producer whose
connections are cut mid-run, and a consumer using assign, seek and offsets_for_times."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import (
    OFFSET_END,
    TIMESTAMP_CREATE_TIME,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

from tests.conftest import free_port

from .util import AdvertisedStrom, TcpProxy, consumer, create_topic, read_all


@pytest.fixture
def proxied(tmp_path) -> Iterator[tuple[AdvertisedStrom, TcpProxy]]:  # noqa: ANN001
    """A broker that advertises a proxy's address, and the proxy in front of it."""
    proxy_port = free_port()
    broker = AdvertisedStrom(tmp_path / "data", advertised=f"127.0.0.1:{proxy_port}")
    broker.start()
    proxy = TcpProxy(("127.0.0.1", broker.port), proxy_port).start()
    try:
        yield broker, proxy
    finally:
        proxy.stop()
        broker.stop()


def _results(futures: dict, timeout: float = 15) -> dict:
    out = {}
    for key, f in futures.items():
        try:
            out[key] = f.result(timeout)
        except KafkaException as e:
            out[key] = e.args[0]
    return out


def test_admin_create_describe_delete_topics(strom) -> None:  # noqa: ANN001
    admin = AdminClient({"bootstrap.servers": strom.bootstrap})
    created = _results(
        admin.create_topics(
            [
                NewTopic("orders", 4, 1, config={"retention.ms": "3600000"}),
                NewTopic("audit", 1, 1, config={"cleanup.policy": "compact"}),
            ],
            request_timeout=15,
        )
    )
    assert created == {"orders": None, "audit": None}

    again = _results(
        admin.create_topics([NewTopic("orders", 4, 1), NewTopic("bad", 0, 1)], request_timeout=15)
    )
    assert again["orders"].code() == KafkaError.TOPIC_ALREADY_EXISTS
    assert again["bad"].code() == KafkaError.INVALID_PARTITIONS

    listed = admin.list_topics(timeout=10)
    assert {"orders", "audit"} <= set(listed.topics)
    assert sorted(listed.topics["orders"].partitions) == [0, 1, 2, 3]
    assert listed.brokers[0].port == strom.port
    for p in listed.topics["orders"].partitions.values():
        assert (p.leader, p.replicas, p.isrs) == (0, [0], [0])

    described = _results(
        admin.describe_topics(TopicCollection(["orders", "audit"]), request_timeout=15)
    )
    ids = set()
    for name, parts in (("orders", 4), ("audit", 1)):
        d = described[name]
        assert d.name == name and not d.is_internal
        assert [p.id for p in d.partitions] == list(range(parts))
        assert all(p.leader.id == 0 for p in d.partitions)
        ids.add(str(d.topic_id))
    assert len(ids) == 2

    configs = _results(
        admin.describe_configs(
            [ConfigResource("topic", "orders"), ConfigResource("topic", "audit")],
            request_timeout=15,
        )
    )
    orders = {c.name: c for c in configs[ConfigResource("topic", "orders")].values()}
    audit = {c.name: c for c in configs[ConfigResource("topic", "audit")].values()}
    assert orders["retention.ms"].value == "3600000"
    assert orders["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert orders["cleanup.policy"].value == "delete"
    assert audit["cleanup.policy"].value == "compact"

    deleted = _results(admin.delete_topics(["orders", "audit"], request_timeout=15))
    assert deleted == {"orders": None, "audit": None}
    assert not {"orders", "audit"} & set(admin.list_topics(timeout=10).topics)
    gone = _results(admin.delete_topics(["orders"], request_timeout=15))
    assert gone["orders"].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_idempotent_producer_across_cut_connections(proxied) -> None:  # noqa: ANN001
    """acks=all, idempotent; the proxy loses responses, then resets every connection, three
    times mid-run. The producer retries what it never heard back about; the broker must keep
    each record exactly once, in order, with no gap."""
    broker, proxy = proxied
    topic, partitions, total = "idem", 3, 3000
    create_topic(broker.bootstrap, topic, partitions)

    failed: list[str] = []
    acked = 0
    lock = threading.Lock()

    def on_delivery(err, msg) -> None:  # noqa: ANN001
        nonlocal acked
        with lock:
            if err is not None:
                failed.append(f"{msg.partition()}:{msg.value()!r}: {err}")
            else:
                acked += 1

    producer = Producer(
        {
            "bootstrap.servers": proxy.address,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "batch.num.messages": 40,
            "max.in.flight.requests.per.connection": 5,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 200,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 300,
            "message.timeout.ms": 60000,
            "request.timeout.ms": 5000,
        }
    )
    cutters: list[threading.Thread] = []
    sent = [0] * partitions
    for i in range(total):
        p = i % partitions
        producer.produce(
            topic,
            key=b"k%d" % i,
            value=b"%d:%d" % (p, sent[p]),
            partition=p,
            on_delivery=on_delivery,
        )
        sent[p] += 1
        producer.poll(0)
        if i % 1000 == 400:
            t = threading.Thread(target=proxy.cut)
            t.start()
            cutters.append(t)
        time.sleep(0.001)
    for t in cutters:
        t.join(10)
    assert producer.flush(60) == 0, "records still undelivered after 60 s"
    assert not failed, f"{len(failed)} deliveries failed, first: {failed[:3]}"
    assert acked == total
    assert proxy.dropped_bytes > 0, "no response was lost: the test cut nothing mid-request"
    assert proxy.accepted > 3

    got = read_all(broker.bootstrap, topic, partitions)
    for p in range(partitions):
        values = [m.value() for m in got[p]]
        assert len(values) == sent[p], f"partition {p}: {len(values)} records for {sent[p]} sent"
        assert values == [b"%d:%d" % (p, n) for n in range(sent[p])], f"partition {p}"


def test_consumer_assign_seek_offsets_for_times(strom) -> None:  # noqa: ANN001
    topic = "times"
    create_topic(strom.bootstrap, topic, 2)
    base = int(time.time() * 1000) - 3_600_000
    producer = Producer({"bootstrap.servers": strom.bootstrap, "linger.ms": 5})
    for i in range(20):
        # partition i % 2, timestamps a second apart: p0 has base+0,2000,..; p1 base+1000,3000,..
        producer.produce(
            topic,
            key=b"k%d" % i,
            value=b"v%d" % i,
            partition=i % 2,
            timestamp=base + 1000 * i,
            headers=[("n", b"%d" % i)],
        )
    assert producer.flush(15) == 0

    c = consumer(strom.bootstrap)
    try:
        found = c.offsets_for_times(
            [TopicPartition(topic, 0, base + 5000), TopicPartition(topic, 1, base + 5000)],
            timeout=10,
        )
        assert [(tp.partition, tp.offset) for tp in found] == [(0, 3), (1, 2)]
        beyond = c.offsets_for_times([TopicPartition(topic, 0, base + 999_999)], timeout=10)
        assert beyond[0].offset == OFFSET_END

        c.assign(found)
        got = _consume(c, 7 + 8)
        by_part = {p: [m for m in got if m.partition() == p] for p in (0, 1)}
        assert [m.offset() for m in by_part[0]] == list(range(3, 10))
        assert [m.value() for m in by_part[0]] == [b"v%d" % i for i in range(6, 20, 2)]
        assert [m.offset() for m in by_part[1]] == list(range(2, 10))
        assert [m.value() for m in by_part[1]] == [b"v%d" % i for i in range(5, 20, 2)]
        for m in got:
            i = int(m.value()[1:])
            assert m.key() == b"k%d" % i
            assert m.timestamp() == (TIMESTAMP_CREATE_TIME, base + 1000 * i)
            assert m.headers() == [("n", b"%d" % i)]

        c.seek(TopicPartition(topic, 0, 1))
        again = [m for m in _consume(c, 9) if m.partition() == 0]
        assert [m.offset() for m in again] == list(range(1, 10))
        assert again[0].value() == b"v2"

        # From the end: only records produced after the assignment arrive.
        c.assign([TopicPartition(topic, 1, OFFSET_END)])
        c.consume(1, timeout=1)
        producer.produce(topic, value=b"late", partition=1)
        assert producer.flush(15) == 0
        late = _consume(c, 1)
        assert [(m.partition(), m.offset(), m.value()) for m in late] == [(1, 10, b"late")]
    finally:
        c.close()


def test_record_edge_cases_and_large_records(strom) -> None:  # noqa: ANN001
    """Null vs empty keys and values, many headers, and records from 64 KiB (past the broker's
    read buffer) to 900 KiB (near message.max.bytes) come back byte for byte."""
    create_topic(strom.bootstrap, "edges", 1)
    big = bytes(range(256)) * (900 * 1024 // 256)
    cases = [
        (None, None, None),
        (b"", b"", None),
        (b"k", None, [("h", None), ("", b"")]),
        (None, b"v", [(f"h{i}", b"%d" % i) for i in range(50)]),
        (b"64k", big[: 64 * 1024 + 1], None),
        (b"300k", big[: 300 * 1024], [("size", b"300k")]),
        (b"900k", big, None),
        (b"after", b"small again", None),
    ]
    failed: list = []
    producer = Producer(
        {
            "bootstrap.servers": strom.bootstrap,
            "compression.type": "none",
            "on_delivery": lambda err, msg: failed.append(err) if err else None,
        }
    )
    for key, value, headers in cases:
        producer.produce("edges", key=key, value=value, headers=headers)
        producer.flush(15)  # one record a request: the big ones each fill a frame
    assert not failed, failed
    got = read_all(strom.bootstrap, "edges", 1)[0]
    assert [m.offset() for m in got] == list(range(len(cases)))
    for m, (key, value, headers) in zip(got, cases):
        assert (m.key(), m.value()) == (key, value)
        assert m.headers() == headers

    # a consumer assigned past the end is reset by auto.offset.reset (OFFSET_OUT_OF_RANGE)
    c = consumer(strom.bootstrap, **{"auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition("edges", 0, 500)])
        first = _consume(c, 1)[0]
        assert (first.offset(), first.key(), first.value()) == (0, None, None)
    finally:
        c.close()


def _consume(c, n: int, timeout: float = 15) -> list:  # noqa: ANN001
    out: list = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for m in c.consume(n - len(out), timeout=0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            out.append(m)
    assert len(out) == n, f"consumed {len(out)} of {n} records in {timeout}s"
    return out


def test_acks_all_with_min_insync_above_the_replicas(strom) -> None:  # noqa: ANN001
    """min.insync.replicas=2 on a one-replica topic: acks=all is refused with
    NOT_ENOUGH_REPLICAS and nothing is written; acks=1 still goes through."""
    create_topic(strom.bootstrap, "needs-two", 1, {"min.insync.replicas": "2"})
    results: list[KafkaError | None] = []

    def report(err, msg) -> None:  # noqa: ANN001
        results.append(err)

    strict = Producer({"bootstrap.servers": strom.bootstrap, "acks": "all", "retries": 0})
    strict.produce("needs-two", value=b"x", on_delivery=report)
    assert strict.flush(15) == 0
    assert results[0] is not None and results[0].code() == KafkaError.NOT_ENOUGH_REPLICAS
    loose = Producer({"bootstrap.servers": strom.bootstrap, "acks": 1})
    loose.produce("needs-two", value=b"y", on_delivery=report)
    assert loose.flush(15) == 0
    assert results[1] is None
    assert [m.value() for m in read_all(strom.bootstrap, "needs-two", 1)[0]] == [b"y"]
