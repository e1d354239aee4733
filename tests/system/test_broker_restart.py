"""A broker stopped (SIGTERM) or killed (SIGKILL) and started again on the same data dir keeps
its topics, ids, configs, records, idempotent-producer state and last stable offset."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
)

from strom.protocol.messages.init_producer_id import (
    InitProducerIdRequest,
    InitProducerIdResponse,
)
from strom.protocol.messages.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from strom.protocol.messages.produce import ProduceRequest, ProduceResponse
from strom.protocol.records import build_batch
from tests.compat.util import RawClient, consumer, create_topic, read_all
from tests.conftest import StromProcess

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
BASE_TS = int(time.time() * 1000) - 3_600_000  # an hour ago: inside every retention.ms used


def _snapshot(strom: StromProcess, topics: dict[str, int]) -> dict:
    """What a client can see of these topics: ids, partition layout, config overrides,
    watermarks, every record, and the offsets a timestamp maps to."""
    admin = AdminClient({"bootstrap.servers": strom.bootstrap})
    described = {
        name: f.result(15)
        for name, f in admin.describe_topics(
            TopicCollection(list(topics)), request_timeout=15
        ).items()
    }
    configs = {}
    for res, f in admin.describe_configs(
        [ConfigResource("topic", t) for t in topics], request_timeout=15
    ).items():
        configs[res.name] = {
            k: v.value
            for k, v in f.result(15).items()
            if v.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        }
    c = consumer(strom.bootstrap)
    try:
        marks = {
            (t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10)
            for t, n in topics.items()
            for p in range(n)
        }
        by_time = c.offsets_for_times(
            [TopicPartition(t, p, BASE_TS + 25_000) for t, n in topics.items() for p in range(n)],
            timeout=10,
        )
    finally:
        c.close()
    records = {}
    for t, n in topics.items():
        for p, msgs in read_all(strom.bootstrap, t, n).items():
            records[(t, p)] = [
                (m.offset(), m.key(), m.value(), m.headers(), m.timestamp()) for m in msgs
            ]
    return {
        "ids": {t: str(d.topic_id) for t, d in described.items()},
        "partitions": {t: [p.id for p in d.partitions] for t, d in described.items()},
        "configs": configs,
        "watermarks": marks,
        "by_time": [(tp.topic, tp.partition, tp.offset) for tp in by_time],
        "records": records,
    }


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_restart_keeps_topics_records_and_configs(strom: StromProcess, how: str) -> None:
    """Topics (created, auto-created, grown, deleted), their ids, config overrides (at creation
    and altered since), every record and the time index are as before a restart, whether
    the broker was stopped cleanly or killed after everything was acknowledged."""
    topics = {"r-orders": 3, "r-compact": 1, "r-auto": 2}
    create_topic(
        strom.bootstrap, "r-orders", 3, {"retention.ms": "7200000", "segment.bytes": "65536"}
    )
    create_topic(
        strom.bootstrap,
        "r-compact",
        1,
        {"cleanup.policy": "compact", "max.message.bytes": "200000"},
    )
    create_topic(strom.bootstrap, "r-gone", 1)
    failed: list[str] = []

    def on_delivery(err, msg) -> None:  # noqa: ANN001
        if err is not None:
            failed.append(f"{msg.topic()}-{msg.partition()}: {err}")

    # batches under segment.bytes (a bigger one is refused: RECORD_LIST_TOO_LARGE, as in Kafka)
    conf = {"bootstrap.servers": strom.bootstrap, "acks": "all", "linger.ms": 5}
    producer = Producer({**conf, "batch.size": 16384, "on_delivery": on_delivery})
    for i in range(600):
        producer.produce(
            "r-orders",
            key=b"o%d" % (i % 37),
            value=b"order %d " % i + b"." * (i * 7 % 1000),  # ~100 KiB a partition: 2 segments
            timestamp=BASE_TS + i * 100,
            headers=[("i", b"%d" % i)],
            partition=i % 3,
        )
    for i in range(50):
        producer.produce("r-compact", key=b"c%d" % i, value=b"v%d" % i, timestamp=BASE_TS + i)
    producer.produce("r-auto", value=b"auto-created", timestamp=BASE_TS)  # Metadata auto-create
    producer.produce("r-gone", value=b"deleted before the restart")
    assert producer.flush(20) == 0

    admin = AdminClient({"bootstrap.servers": strom.bootstrap})
    altered = admin.incremental_alter_configs(
        [
            ConfigResource(
                "topic",
                "r-orders",
                incremental_configs=[
                    ConfigEntry(
                        "retention.bytes", "1073741824", incremental_operation=AlterConfigOpType.SET
                    )
                ],
            ),
            ConfigResource(
                "topic",
                "r-compact",
                incremental_configs=[
                    ConfigEntry(
                        "max.message.bytes", "", incremental_operation=AlterConfigOpType.DELETE
                    ),
                    ConfigEntry(
                        "min.compaction.lag.ms", "1000", incremental_operation=AlterConfigOpType.SET
                    ),
                ],
            ),
        ],
        request_timeout=15,
    )
    for f in altered.values():
        f.result(15)
    admin.create_partitions([NewPartitions("r-auto", 2)], request_timeout=15)["r-auto"].result(15)
    admin.delete_topics(["r-gone"], request_timeout=15)["r-gone"].result(15)
    producer = Producer({**conf, "on_delivery": on_delivery})  # fresh metadata: 2 partitions
    producer.produce("r-auto", value=b"in the new partition", partition=1, timestamp=BASE_TS + 1)
    assert producer.flush(15) == 0
    assert not failed, failed[:3]

    before = _snapshot(strom, topics)
    assert before["configs"]["r-orders"] == {
        "retention.ms": "7200000",
        "segment.bytes": "65536",
        "retention.bytes": "1073741824",
    }
    assert before["configs"]["r-compact"] == {
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "1000",
    }
    assert sum(len(v) for v in before["records"].values()) == 652
    assert len(set(before["ids"].values())) == 3
    assert len(list((strom.data_dir / "r-orders-0").glob("*.log"))) > 1, "no segment roll"

    _restart(strom, how)
    after = _snapshot(strom, topics)
    for key in before:
        assert after[key] == before[key], key
    assert "r-gone" not in admin.list_topics(timeout=10).topics
    reopened = strom.log().rsplit("opened data dir", 1)[1].split("\n", 1)[0]
    assert f" logs, {'clean' if how == 'stop' else 'unclean'} shutdown" in reopened, reopened

    # appends continue after the restored end, not over it
    producer = Producer({"bootstrap.servers": strom.bootstrap, "acks": "all"})
    producer.produce("r-orders", value=b"after", partition=0)
    assert producer.flush(15) == 0
    assert [m.offset() for m in read_all(strom.bootstrap, "r-orders", 3)[0]][-1] == 200


def test_sigkill_mid_run_loses_no_acknowledged_record(strom: StromProcess) -> None:
    """Idempotent, acks=all; SIGKILL while batches are in flight, restart, keep producing.
    Every key a delivery callback acknowledged is there exactly once (and nothing twice)."""
    topic, partitions = "crash", 3
    create_topic(strom.bootstrap, topic, partitions)
    acked: list[bytes] = []
    failed: list[str] = []
    lock = threading.Lock()

    def on_delivery(err, msg) -> None:  # noqa: ANN001
        with lock:
            if err is None:
                acked.append(msg.key())
            else:
                failed.append(f"{msg.key()!r}: {err}")

    producer = Producer(
        {
            "bootstrap.servers": strom.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "batch.num.messages": 50,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 300,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 300,
            "message.timeout.ms": 60000,
        }
    )
    sent = 0
    killed_at: int | None = None
    killed_time = 0.0
    acked_before_kill = 0
    restarted = False
    deadline = time.monotonic() + 30
    while not restarted or sent < (killed_at or 0) + 1500:
        assert time.monotonic() < deadline, f"{len(acked)} acknowledged of {sent} in 30 s"
        producer.produce(
            topic,
            key=b"k%06d" % sent,
            value=b"%d" % sent,
            partition=sent % partitions,
            on_delivery=on_delivery,
        )
        sent += 1
        producer.poll(0)
        time.sleep(0.0005)
        if killed_at is None:
            with lock:
                acked_before_kill = len(acked)
            if acked_before_kill >= 500:
                strom.kill()  # with batches in flight: produced, not yet acknowledged
                killed_at, killed_time = sent, time.monotonic()
        elif not restarted and time.monotonic() - killed_time > 0.5:
            strom.start()
            restarted = True
    assert producer.flush(60) == 0, "records still undelivered 60 s after the restart"
    assert killed_at is not None and killed_at > acked_before_kill, "nothing was in flight"
    assert not failed, f"{len(failed)} deliveries failed after the restart, first: {failed[:3]}"

    got = read_all(strom.bootstrap, topic, partitions)
    keys = [m.key() for p in range(partitions) for m in got[p]]
    assert len(keys) == len(set(keys)), "a record was written twice"
    missing = set(acked) - set(keys)
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    for p in range(partitions):
        # the idempotent producer also keeps the order per partition
        seqs = [int(m.value()) for m in got[p]]
        assert seqs == sorted(seqs), f"partition {p} out of order"
    assert len(acked) == sent


def _restart(strom: StromProcess, how: str) -> None:
    """Stop cleanly (SIGTERM) or kill (SIGKILL) the broker, then start it on the same data."""
    if how == "stop":
        assert strom.stop() == 0
    else:
        strom.kill()
    strom.start()


def _init_producer_id(client: RawClient) -> tuple[int, int]:
    r = client.call(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4)
    assert isinstance(r, InitProducerIdResponse) and r.error_code == 0
    return r.producer_id, r.producer_epoch


def _produce(client: RawClient, topic: str, batch: bytes) -> tuple[int, int]:
    req = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=10000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)],
            )
        ],
    )
    r = client.call(req, 9)
    assert isinstance(r, ProduceResponse)
    part = r.responses[0].partition_responses[0]
    return part.error_code, part.base_offset


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_producer_state_survives_restart(strom: StromProcess, how: str) -> None:
    """An idempotent producer's next batch after a restart is accepted in sequence; a resent
    batch is recognised as a duplicate; a gap is still OUT_OF_ORDER_SEQUENCE_NUMBER."""
    create_topic(strom.bootstrap, "pstate", 1)
    client = RawClient(strom.bootstrap)
    pid, epoch = _init_producer_id(client)

    def batch(seq: int, n: int = 5) -> bytes:
        return build_batch(
            [(b"k%d" % s, b"v%d" % s) for s in range(seq, seq + n)],
            producer_id=pid,
            producer_epoch=epoch,
            base_sequence=seq,
        )

    assert _produce(client, "pstate", batch(0)) == (0, 0)
    assert _produce(client, "pstate", batch(5)) == (0, 5)
    client.close()
    _restart(strom, how)

    client = RawClient(strom.bootstrap)
    try:
        assert _produce(client, "pstate", batch(10)) == (0, 10), "next batch after restart"
        assert _produce(client, "pstate", batch(5)) == (0, 5), "resent batch: a duplicate"
        err, _ = _produce(client, "pstate", batch(40))
        assert err == OUT_OF_ORDER_SEQUENCE_NUMBER
    finally:
        client.close()
    values = [m.value() for m in read_all(strom.bootstrap, "pstate", 1)[0]]
    assert values == [b"v%d" % s for s in range(15)]


def test_idempotent_producer_continues_after_clean_restart(strom: StromProcess) -> None:
    """The same confluent-kafka idempotent producer keeps producing across a clean restart:
    nothing is refused, nothing duplicated, nothing lost."""
    create_topic(strom.bootstrap, "pcont", 2)
    errors: list[str] = []
    producer = Producer(
        {
            "bootstrap.servers": strom.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 300,
            "error_cb": lambda e: errors.append(str(e)) if e.fatal() else None,
        }
    )
    failed: list[str] = []

    def on_delivery(err, msg) -> None:  # noqa: ANN001
        if err is not None:
            failed.append(str(err))

    for i in range(100):
        producer.produce("pcont", value=b"%d" % i, partition=i % 2, on_delivery=on_delivery)
    assert producer.flush(15) == 0
    log_before = len(strom.log())
    assert strom.stop() == 0
    strom.start()
    for i in range(100, 200):
        producer.produce("pcont", value=b"%d" % i, partition=i % 2, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert not failed and not errors, (failed[:3], errors[:3])
    got = read_all(strom.bootstrap, "pcont", 2)
    for p in (0, 1):
        assert [int(m.value()) for m in got[p]] == list(range(p, 200, 2))
    after = strom.log()[log_before:]
    assert "refused" not in after, after


def _stable_end(client: RawClient, topic: str) -> tuple[int, int]:
    """(last stable offset, high watermark) by ListOffsets LATEST, read_committed and not."""
    found = []
    for isolation in (1, 0):
        req = ListOffsetsRequest(
            replica_id=-1,
            isolation_level=isolation,
            topics=[
                ListOffsetsRequest.ListOffsetsTopic(
                    name=topic,
                    partitions=[
                        ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=-1)
                    ],
                )
            ],
        )
        r = client.call(req, 5)
        assert isinstance(r, ListOffsetsResponse)
        part = r.topics[0].partitions[0]
        assert part.error_code == 0
        found.append(part.offset)
    return found[0], found[1]


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_last_stable_offset_survives_restart(strom: StromProcess, how: str) -> None:
    """A transaction left open at offset 4 holds the last stable offset there; after a restart
    (clean or kill -9) the first answer is still 4, never the high watermark and never 0."""
    create_topic(strom.bootstrap, "lso", 1)
    client = RawClient(strom.bootstrap)
    plain = build_batch([(b"k%d" % i, b"v") for i in range(4)])
    assert _produce(client, "lso", plain) == (0, 0)
    producer = Producer(
        {
            "bootstrap.servers": strom.bootstrap,
            "transactional.id": "lso-left-open",
            "transaction.timeout.ms": 300_000,
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce("lso", b"open", key=b"t")
    assert producer.flush(30) == 0  # appended at offset 4; the transaction stays open
    assert _produce(client, "lso", build_batch([(b"k", b"after")])) == (0, 5)
    assert _stable_end(client, "lso") == (4, 6)
    client.close()
    _restart(strom, how)
    client = RawClient(strom.bootstrap)
    try:
        assert _stable_end(client, "lso") == (4, 6)
    finally:
        client.close()
