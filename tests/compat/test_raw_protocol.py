"""Exact requests against a real broker: idempotent sequences, fetch sessions, long polls,
produce errors, LogAppendTime, ListOffsets and OffsetForLeaderEpoch."""

from __future__ import annotations

import threading
import time

import pytest

from strom.protocol.errors import ErrorCode
from strom.protocol.messages.create_topics import CreateTopicsRequest
from strom.protocol.messages.fetch import FetchRequest
from strom.protocol.messages.init_producer_id import InitProducerIdRequest
from strom.protocol.messages.list_offsets import ListOffsetsRequest
from strom.protocol.messages.offset_for_leader_epoch import OffsetForLeaderEpochRequest
from strom.protocol.messages.produce import ProduceRequest
from strom.protocol.records import BatchView, build_batch, iter_batches
from tests.rawclient import RawClient

PRODUCE_V = 9
FETCH_V = 12


def create_topic(c: RawClient, name: str, partitions: int, **configs: str) -> None:
    T = CreateTopicsRequest.CreatableTopic
    C = CreateTopicsRequest.CreatableTopicConfig
    resp = c.call(
        CreateTopicsRequest(
            topics=[
                T(
                    name=name,
                    num_partitions=partitions,
                    replication_factor=1,
                    configs=[C(name=k.replace("_", "."), value=v) for k, v in configs.items()],
                )
            ]
        ),
        7,
    )
    assert resp.topics[0].error_code == 0, resp


def produce(c: RawClient, topic: str, partition: int, records: bytes, acks: int = -1):  # noqa: ANN201
    P = ProduceRequest.PartitionProduceData
    req = ProduceRequest(
        acks=acks,
        timeout_ms=5000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic, partition_data=[P(index=partition, records=records)]
            )
        ],
    )
    return c.call(req, PRODUCE_V).responses[0].partition_responses[0]


def fetch_request(
    parts: list[tuple[str, int, int]],
    session_id: int = 0,
    epoch: int = -1,
    forgotten: list[tuple[str, int]] = (),
    max_wait: int = 0,
    min_bytes: int = 0,
) -> FetchRequest:
    topics: dict[str, list] = {}
    for topic, p, offset in parts:
        topics.setdefault(topic, []).append(
            FetchRequest.FetchPartition(
                partition=p, fetch_offset=offset, partition_max_bytes=1 << 20
            )
        )
    gone: dict[str, list[int]] = {}
    for topic, p in forgotten:
        gone.setdefault(topic, []).append(p)
    return FetchRequest(
        max_wait_ms=max_wait,
        min_bytes=min_bytes,
        max_bytes=8 << 20,
        session_id=session_id,
        session_epoch=epoch,
        topics=[FetchRequest.FetchTopic(topic=t, partitions=ps) for t, ps in topics.items()],
        forgotten_topics_data=[
            FetchRequest.ForgottenTopic(topic=t, partitions=ps) for t, ps in gone.items()
        ],
    )


def fetched(resp) -> dict[tuple[str, int], tuple[int, list[bytes]]]:  # noqa: ANN001
    """(topic, partition) -> (error, record values) of a fetch response."""
    out = {}
    for t in resp.responses:
        for p in t.partitions:
            values = []
            if p.records:
                for batch in iter_batches(bytes(p.records)):
                    values += [r.value for r in batch.records()]
            out[(t.topic, p.partition_index)] = (p.error_code, values)
    return out


def test_idempotent_sequences_epochs_and_restart(strom) -> None:  # noqa: ANN001
    with RawClient(strom.bootstrap) as c:
        create_topic(c, "idem", 1)
        init = c.call(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=0), 4)
        assert init.error_code == 0 and init.producer_id >= 0 and init.producer_epoch == 0
        pid = init.producer_id

        def batch(seq: int, epoch: int = 0, n: int = 3) -> bytes:
            return build_batch(
                [(b"k", b"%d" % (seq + i)) for i in range(n)],
                producer_id=pid,
                producer_epoch=epoch,
                base_sequence=seq,
            )

        assert (r := produce(c, "idem", 0, batch(0))).error_code == 0 and r.base_offset == 0
        # a retry of the same batch: answered with its first offset, not written again
        assert (r := produce(c, "idem", 0, batch(0))).error_code == 0 and r.base_offset == 0
        assert produce(c, "idem", 0, batch(5)).error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert (r := produce(c, "idem", 0, batch(3))).error_code == 0 and r.base_offset == 3
        # a new epoch must start at sequence 0; then the old epoch is fenced
        assert produce(c, "idem", 0, batch(2, epoch=1)).error_code == (
            ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        )
        assert (r := produce(c, "idem", 0, batch(0, epoch=1))).error_code == 0
        assert r.base_offset == 6
        assert produce(c, "idem", 0, batch(6)).error_code == ErrorCode.INVALID_PRODUCER_EPOCH
        values = fetched(c.call(fetch_request([("idem", 0, 0)]), FETCH_V))[("idem", 0)][1]
        assert values == [b"0", b"1", b"2", b"3", b"4", b"5", b"0", b"1", b"2"]

    # producer state survives a clean restart and a SIGKILL (rebuilt from the log)
    for stop in (strom.stop, strom.kill):
        stop()
        strom.start()
        with RawClient(strom.bootstrap) as c:
            r = produce(c, "idem", 0, batch(0, epoch=1))
            assert (r.error_code, r.base_offset) == (0, 6)
            assert produce(c, "idem", 0, batch(5, epoch=1)).error_code == (
                ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
            )
            hw = c.call(fetch_request([("idem", 0, 0)]), FETCH_V).responses[0].partitions[0]
            assert hw.high_watermark == 9


def test_fetch_sessions(strom) -> None:  # noqa: ANN001
    with RawClient(strom.bootstrap) as c:
        create_topic(c, "sess", 2)
        for p in (0, 1):
            assert produce(c, "sess", p, build_batch([(None, b"p%d-a" % p)])).error_code == 0
        full = c.call(fetch_request([("sess", 0, 0), ("sess", 1, 0)], 0, 0), FETCH_V)
        assert full.error_code == 0 and full.session_id > 0
        sid = full.session_id
        assert fetched(full) == {("sess", 0): (0, [b"p0-a"]), ("sess", 1): (0, [b"p1-a"])}
        # both caught up: an incremental fetch answers with nothing changed
        inc = c.call(fetch_request([("sess", 0, 1), ("sess", 1, 1)], sid, 1), FETCH_V)
        assert inc.error_code == 0 and inc.session_id == sid and fetched(inc) == {}
        # new data on partition 0 only: only partition 0 comes back
        produce(c, "sess", 0, build_batch([(None, b"p0-b")]))
        inc = c.call(fetch_request([], sid, 2), FETCH_V)
        assert fetched(inc) == {("sess", 0): (0, [b"p0-b"])}
        # forget partition 1: data there no longer shows up in the session
        inc = c.call(fetch_request([("sess", 0, 2)], sid, 3, forgotten=[("sess", 1)]), FETCH_V)
        assert fetched(inc) == {}
        produce(c, "sess", 1, build_batch([(None, b"p1-b")]))
        assert fetched(c.call(fetch_request([], sid, 4), FETCH_V)) == {}
        # wrong epoch, unknown session, and a closed session are refused
        bad = c.call(fetch_request([], sid, 9), FETCH_V)
        assert bad.error_code == ErrorCode.INVALID_FETCH_SESSION_EPOCH
        bad = c.call(fetch_request([], sid + 1000, 1), FETCH_V)
        assert bad.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
        closed = c.call(fetch_request([("sess", 1, 1)], sid, -1), FETCH_V)
        assert closed.session_id == 0 and fetched(closed) == {("sess", 1): (0, [b"p1-b"])}
        bad = c.call(fetch_request([], sid, 5), FETCH_V)
        assert bad.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND


def test_fetch_long_poll_wakes_on_append(strom) -> None:  # noqa: ANN001
    with RawClient(strom.bootstrap) as c, RawClient(strom.bootstrap) as writer:
        create_topic(c, "poll", 1)

        def later() -> None:
            time.sleep(0.3)
            produce(writer, "poll", 0, build_batch([(None, b"late")]), acks=1)

        t = threading.Thread(target=later)
        t0 = time.monotonic()
        t.start()
        resp = c.call(fetch_request([("poll", 0, 0)], max_wait=5000, min_bytes=1), FETCH_V)
        waited = time.monotonic() - t0
        t.join()
        assert fetched(resp) == {("poll", 0): (0, [b"late"])}
        assert 0.25 < waited < 2.0
        # with nothing to read, the broker waits max_wait and answers empty
        t0 = time.monotonic()
        resp = c.call(fetch_request([("poll", 0, 1)], max_wait=400, min_bytes=1), FETCH_V)
        assert fetched(resp) == {("poll", 0): (0, [])}
        assert 0.35 < time.monotonic() - t0 < 2.0


def test_produce_errors_leave_the_log_unchanged(strom) -> None:  # noqa: ANN001
    with RawClient(strom.bootstrap) as c:
        create_topic(c, "errs", 1, max_message_bytes="2000")
        good = build_batch([(b"k", b"v")])
        assert produce(c, "errs", 0, good).error_code == 0
        corrupt = bytearray(good)
        corrupt[-1] ^= 0xFF
        assert produce(c, "errs", 0, bytes(corrupt)).error_code == ErrorCode.CORRUPT_MESSAGE
        truncated = good[:-3]
        assert produce(c, "errs", 0, truncated).error_code == ErrorCode.CORRUPT_MESSAGE
        big = build_batch([(None, b"x" * 5000)])
        assert produce(c, "errs", 0, big).error_code == ErrorCode.MESSAGE_TOO_LARGE
        assert produce(c, "nope", 0, good).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert produce(c, "errs", 7, good).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert produce(c, "errs", 0, good, acks=2).error_code == ErrorCode.INVALID_REQUIRED_ACKS
        old_magic = bytearray(good)
        old_magic[16] = 1
        assert produce(c, "errs", 0, bytes(old_magic)).error_code == (
            ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT
        )
        resp = c.call(fetch_request([("errs", 0, 0)]), FETCH_V)
        assert fetched(resp) == {("errs", 0): (0, [b"v"])}
        assert resp.responses[0].partitions[0].high_watermark == 1


def test_log_append_time_and_list_offsets(strom) -> None:  # noqa: ANN001
    with RawClient(strom.bootstrap) as c:
        create_topic(c, "lat", 1, message_timestamp_type="LogAppendTime")
        create_topic(c, "ct", 1)
        old = 1_000_000_000_000
        before = int(time.time() * 1000)
        r = produce(c, "lat", 0, build_batch([(None, b"a")], timestamp=old))
        assert r.error_code == 0 and r.log_append_time_ms >= before
        batch = BatchView(
            c.call(fetch_request([("lat", 0, 0)]), FETCH_V).responses[0].partitions[0].records
        )
        assert batch.timestamp_type == 1 and batch.crc_valid()
        assert [rec.timestamp for rec in batch.records()] == [r.log_append_time_ms]

        for i, ts in enumerate((1000, 2000, 3000, 2500)):
            produce(c, "ct", 0, build_batch([(None, b"%d" % i)], timestamp=ts))

        def offsets(*timestamps: int) -> list[tuple[int, int]]:
            P = ListOffsetsRequest.ListOffsetsPartition
            req = ListOffsetsRequest(
                replica_id=-1,
                topics=[
                    ListOffsetsRequest.ListOffsetsTopic(
                        name="ct", partitions=[P(partition_index=0, timestamp=ts)]
                    )
                    for ts in timestamps
                ],
            )
            resp = c.call(req, 8)
            return [(t.partitions[0].offset, t.partitions[0].timestamp) for t in resp.topics]

        assert offsets(-2, -1, -3) == [(0, -1), (4, -1), (2, 3000)]
        assert offsets(1500, 2600, 9999) == [(1, 2000), (2, 3000), (-1, -1)]

        P = OffsetForLeaderEpochRequest.OffsetForLeaderPartition
        resp = c.call(
            OffsetForLeaderEpochRequest(
                topics=[
                    OffsetForLeaderEpochRequest.OffsetForLeaderTopic(
                        topic="ct", partitions=[P(partition=0, leader_epoch=0)]
                    )
                ]
            ),
            4,
        )
        part = resp.topics[0].partitions[0]
        assert (part.error_code, part.leader_epoch, part.end_offset) == (0, 0, 4)


@pytest.mark.parametrize("version", [4, 11, 12, 13, 16])
def test_fetch_versions(strom, version: int) -> None:  # noqa: ANN001
    """Old (topic names) and new (topic ids) fetch versions read the same records."""
    from strom.protocol.messages.metadata import MetadataRequest

    with RawClient(strom.bootstrap) as c:
        create_topic(c, f"v{version}", 1)
        produce(c, f"v{version}", 0, build_batch([(None, b"x"), (None, b"y")]))
        md = c.call(
            MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=f"v{version}")]),
            12,
        )
        tid = md.topics[0].topic_id
        req = fetch_request([(f"v{version}", 0, 0)])
        req.topics[0].topic_id = tid
        resp = c.call(req, version)
        part = resp.responses[0].partitions[0]
        assert part.error_code == 0 and part.high_watermark == 2
        values = [r.value for b in iter_batches(bytes(part.records)) for r in b.records()]
        assert values == [b"x", b"y"]
        if version >= 13:
            assert resp.responses[0].topic_id == tid
            req.topics[0].topic_id = bytes(range(16))
            bad = c.call(req, version).responses[0].partitions[0]
            assert bad.error_code == ErrorCode.UNKNOWN_TOPIC_ID
