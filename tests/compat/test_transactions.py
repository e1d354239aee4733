"""Transactions against a real `strom serve`, with confluent-kafka's transactional producer."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from strom.protocol.errors import ErrorCode
from strom.protocol.messages.init_producer_id import InitProducerIdRequest
from strom.protocol.messages.produce import ProduceRequest
from strom.protocol.records import build_batch
from tests.compat.util import RawClient


def _topic(strom, partitions: int = 1) -> str:  # noqa: ANN001
    name = f"txn-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": strom.bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(10)
    return name


def _producer(strom, txn_id: str) -> Producer:  # noqa: ANN001
    return Producer(
        {
            "bootstrap.servers": strom.bootstrap,
            "transactional.id": txn_id,
            "transaction.timeout.ms": 20_000,
        }
    )


def _consume(strom, topic: str, isolation: str, expect: int) -> list[bytes]:  # noqa: ANN001
    c = Consumer(
        {
            "bootstrap.servers": strom.bootstrap,
            "group.id": f"g-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    out: list[bytes] = []
    try:
        for _ in range(60):
            for m in c.consume(100, 0.5):
                if m.error() is None:
                    out.append(m.value())
            if len(out) >= expect:
                break
    finally:
        c.close()
    return out


def test_committed_transaction_is_read_committed(strom) -> None:  # noqa: ANN001
    topic = _topic(strom)
    p = _producer(strom, f"t-{uuid.uuid4().hex[:6]}")
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, f"c{i}".encode())
    p.commit_transaction(30)
    assert _consume(strom, topic, "read_committed", 10) == [f"c{i}".encode() for i in range(10)]
    # the end offset counts the commit marker
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": "watermarks"})
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), 10)
    finally:
        c.close()
    assert (low, high) == (0, 11)


def test_second_producer_fences_the_first(strom) -> None:  # noqa: ANN001
    topic = _topic(strom)
    txn_id = f"t-{uuid.uuid4().hex[:6]}"
    first = _producer(strom, txn_id)
    first.init_transactions(30)
    first.begin_transaction()
    first.produce(topic, b"from-first")
    first.flush(10)
    second = _producer(strom, txn_id)
    second.init_transactions(30)  # aborts the first's open transaction, bumps the epoch
    with pytest.raises(KafkaException) as raised:
        first.commit_transaction(30)
    assert raised.value.args[0].fatal() or "fenced" in str(raised.value).lower()
    second.begin_transaction()
    second.produce(topic, b"from-second")
    second.commit_transaction(30)
    got = _consume(strom, topic, "read_committed", 1)
    assert b"from-second" in got


def _raw_produce(client: RawClient, topic: str, batch: bytes, txn_id: str | None) -> int:
    req = ProduceRequest(
        transactional_id=txn_id,
        acks=-1,
        timeout_ms=10000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)],
            )
        ],
    )
    return client.call(req, 9).responses[0].partition_responses[0].error_code


def test_stray_transactional_batch_is_refused(strom) -> None:  # noqa: ANN001
    """A batch with the transactional bit whose producer has no ongoing transaction holding
    the partition is refused (KIP-890 verification) and leaves nothing behind."""
    topic = _topic(strom)
    client = RawClient(strom.bootstrap)
    try:
        init = client.call(
            InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=0), 4
        )
        stray = build_batch(
            [(b"k", b"stray")],
            producer_id=init.producer_id,
            producer_epoch=init.producer_epoch,
            base_sequence=0,
            transactional=True,
        )
        assert _raw_produce(client, topic, stray, None) == ErrorCode.INVALID_TXN_STATE
        # once the transaction coordinator runs, an id it does not know is refused outright
        _producer(strom, f"starter-{topic}").init_transactions(30)
        assert _raw_produce(client, topic, stray, "nobody") == ErrorCode.INVALID_PRODUCER_ID_MAPPING
        assert _raw_produce(client, topic, build_batch([(b"k", b"plain")]), None) == 0
    finally:
        client.close()
    # nothing pins the last stable offset: read_committed sees the plain record at offset 0
    assert _consume(strom, topic, "read_committed", 1) == [b"plain"]


def test_aborted_transaction_is_hidden_from_read_committed(strom) -> None:  # noqa: ANN001
    topic = _topic(strom)
    p = _producer(strom, f"t-{uuid.uuid4().hex[:6]}")
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, f"c{i}".encode())
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(4):
        p.produce(topic, f"a{i}".encode())
    assert p.flush(30) == 0  # written to the log before the abort
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(topic, b"last")
    p.commit_transaction(30)
    committed = [b"c0", b"c1", b"c2", b"last"]
    assert _consume(strom, topic, "read_committed", len(committed)) == committed
    # read_uncommitted sees the aborted records too (never the markers)
    everything = [b"c0", b"c1", b"c2", b"a0", b"a1", b"a2", b"a3", b"last"]
    assert _consume(strom, topic, "read_uncommitted", len(everything)) == everything


def _committed(strom, group: str, topic: str) -> int:  # noqa: ANN001
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": group})
    try:
        return c.committed([TopicPartition(topic, 0)], 10)[0].offset
    finally:
        c.close()


def test_offsets_sent_in_a_transaction_commit_with_it(strom) -> None:  # noqa: ANN001
    """consume-transform-produce: offsets sent with send_offsets_to_transaction become the
    group's committed offsets when the transaction commits, and not when it aborts."""
    source, sink = _topic(strom), _topic(strom)
    plain = Producer({"bootstrap.servers": strom.bootstrap})
    for i in range(10):
        plain.produce(source, f"in{i}".encode())
    plain.flush(10)
    group = f"ctp-{uuid.uuid4().hex[:6]}"
    consumer = Consumer(
        {
            "bootstrap.servers": strom.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([source])
    p = _producer(strom, f"ctp-{uuid.uuid4().hex[:6]}")
    p.init_transactions(30)
    try:
        got = []
        for _ in range(60):
            got += [m for m in consumer.consume(10, 0.5) if m.error() is None]
            if len(got) >= 5:
                break
        batch = got[:5]
        # an aborted attempt: neither its output nor its offsets count
        p.begin_transaction()
        for m in batch:
            p.produce(sink, m.value().upper())
        p.send_offsets_to_transaction(
            [TopicPartition(source, 0, batch[-1].offset() + 1)], consumer.consumer_group_metadata()
        )
        p.flush(30)
        p.abort_transaction(30)
        assert _committed(strom, group, source) < 0  # nothing committed yet
        # the committed attempt
        p.begin_transaction()
        for m in batch:
            p.produce(sink, m.value().upper())
        p.send_offsets_to_transaction(
            [TopicPartition(source, 0, batch[-1].offset() + 1)], consumer.consumer_group_metadata()
        )
        p.commit_transaction(30)
        assert _committed(strom, group, source) == 5
    finally:
        consumer.close()
    assert _consume(strom, sink, "read_committed", 5) == [f"IN{i}".encode() for i in range(5)]


def test_kafka_python_transactional_producer(strom) -> None:  # noqa: ANN001
    from kafka import KafkaProducer

    topic = _topic(strom)
    p = KafkaProducer(bootstrap_servers=strom.bootstrap, transactional_id=f"kp-{topic}")
    try:
        p.init_transactions()
        p.begin_transaction()
        for i in range(3):
            p.send(topic, f"k{i}".encode())
        p.commit_transaction()
        p.begin_transaction()
        p.send(topic, b"dropped")
        p.flush()
        p.abort_transaction()
    finally:
        p.close()
    assert _consume(strom, topic, "read_committed", 3) == [b"k0", b"k1", b"k2"]


def test_aiokafka_transactional_producer(strom) -> None:  # noqa: ANN001
    import asyncio

    from aiokafka import AIOKafkaProducer

    topic = _topic(strom)

    async def run() -> None:
        p = AIOKafkaProducer(bootstrap_servers=strom.bootstrap, transactional_id=f"ak-{topic}")
        await p.start()
        try:
            async with p.transaction():
                for i in range(3):
                    await p.send(topic, f"a{i}".encode())
            await p.begin_transaction()
            await (await p.send(topic, b"dropped"))
            await p.abort_transaction()
        finally:
            await p.stop()

    asyncio.run(run())
    assert _consume(strom, topic, "read_committed", 3) == [b"a0", b"a1", b"a2"]


def test_describe_producers_shows_an_open_transaction(strom) -> None:  # noqa: ANN001
    from strom.protocol.messages.describe_producers import DescribeProducersRequest

    topic = _topic(strom)
    plain = Producer({"bootstrap.servers": strom.bootstrap})
    plain.produce(topic, b"first")
    plain.flush(10)
    p = _producer(strom, f"dp-{topic}")
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, b"open")
    assert p.flush(30) == 0
    client = RawClient(strom.bootstrap)
    try:
        req = DescribeProducersRequest(
            topics=[DescribeProducersRequest.TopicRequest(name=topic, partition_indexes=[0, 9])]
        )
        r = client.call(req, 0)
    finally:
        client.close()
    found, missing = r.topics[0].partitions
    assert missing.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    open_txns = [s for s in found.active_producers if s.current_txn_start_offset >= 0]
    assert [(s.current_txn_start_offset, s.last_sequence) for s in open_txns] == [(1, 0)]
    p.abort_transaction(30)


def _log_batches(data_dir, topic: str) -> list:  # noqa: ANN001
    from strom.protocol.records import iter_batches

    out = []
    for path in sorted((data_dir / f"{topic}-0").glob("*.log")):
        out.extend(iter_batches(path.read_bytes()))
    return out


def test_cleaned_transactional_topic_reads_to_its_end(strom_factory) -> None:  # noqa: ANN001
    """Compaction of a transactional topic drops aborted data and (with delete.retention.ms=0)
    the marker of the transaction with nothing left, and leaves an idempotent producer's
    superseded last batch as an empty header: confluent-kafka, kafka-python and aiokafka
    read_committed consumers still read every surviving record and reach the end."""
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from kafka import KafkaConsumer

    strom = strom_factory({"log.cleaner.backoff.ms": "200"})
    topic = f"ctxn-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": strom.bootstrap})
    configs = {
        "cleanup.policy": "compact",
        "segment.bytes": "2000",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "0",
    }
    admin.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(10)
    p = _producer(strom, f"ctxn-{topic}")
    p.init_transactions(10)
    p.begin_transaction()
    p.produce(topic, key=b"t1", value=b"committed")
    p.produce(topic, key=b"gone", value=b"committed-then-superseded")
    p.commit_transaction(10)
    p.begin_transaction()
    p.produce(topic, key=b"t1", value=b"aborted")
    p.flush(10)
    p.abort_transaction(10)
    p.begin_transaction()  # so the aborted batch is not the producer's last: it can go
    p.produce(topic, key=b"t2", value=b"committed")
    p.commit_transaction(10)
    idem = Producer({"bootstrap.servers": strom.bootstrap, "enable.idempotence": True})
    idem.produce(topic, key=b"i1", value=b"idempotent-superseded")
    idem.flush(10)
    plain = Producer({"bootstrap.servers": strom.bootstrap, "linger.ms": 0})
    plain.produce(topic, key=b"gone", value=b"newer")
    plain.produce(topic, key=b"i1", value=b"newer")
    for i in range(60):  # rolls several segments, so the transactions become cleanable
        plain.produce(topic, key=b"fill-%d" % i, value=b"x" * 100)
        plain.flush(10)
    expected = {b"t1": b"committed", b"t2": b"committed", b"gone": b"newer", b"i1": b"newer"}
    expected.update({b"fill-%d" % i: b"x" * 100 for i in range(60)})
    gone = {b"aborted", b"committed-then-superseded", b"idempotent-superseded"}

    data_dir = strom.data_dir
    deadline = time.monotonic() + 30
    while True:
        batches = _log_batches(data_dir, topic)
        values = {r.value for b in batches if not b.is_control for r in b.records()}
        markers = [b for b in batches if b.is_control]
        if not values & gone and len(markers) == 2:  # the commits; the abort's is gone
            break
        assert time.monotonic() < deadline, "the cleaner did not clean the topic"
        time.sleep(0.2)
    emptied = [b for b in batches if b.records_count == 0]
    assert len(emptied) == 1 and not emptied[0].is_transactional  # the idempotent producer's
    end = batches[-1].last_offset + 1

    def latest(pairs) -> dict:  # noqa: ANN001
        out: dict = {}
        for k, v in pairs:
            out[k] = v
        return out

    c = Consumer(
        {
            "bootstrap.servers": strom.bootstrap,
            "group.id": f"g-{topic}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    for _ in range(40):
        got += [(m.key(), m.value()) for m in c.consume(100, 0.5) if m.error() is None]
        if c.position([TopicPartition(topic, 0)])[0].offset >= end:
            break
    c.close()
    assert latest(got) == expected

    kc = KafkaConsumer(
        bootstrap_servers=strom.bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    from kafka import TopicPartition as KTP

    kc.assign([KTP(topic, 0)])
    kc.seek(KTP(topic, 0), 0)
    got = []
    for _ in range(40):
        for records in kc.poll(500).values():
            got += [(r.key, r.value) for r in records]
        if kc.position(KTP(topic, 0)) >= end:
            break
    kc.close()
    assert latest(got) == expected

    async def aio() -> list:
        from aiokafka import TopicPartition as ATP

        ac = AIOKafkaConsumer(
            bootstrap_servers=strom.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
        )
        await ac.start()
        try:
            ac.assign([ATP(topic, 0)])
            ac.seek(ATP(topic, 0), 0)
            out = []
            for _ in range(40):
                for records in (await ac.getmany(timeout_ms=500)).values():
                    out += [(r.key, r.value) for r in records]
                if await ac.position(ATP(topic, 0)) >= end:
                    break
            return out
        finally:
            await ac.stop()

    assert latest(asyncio.run(aio())) == expected
