"""Tests for strom.protocol.records: RecordBatch v2 view, CRC, iteration, building, varints."""

# The oracles are kafka-python's own record batch code (DefaultRecordBatchBuilder and
# DefaultRecordBatch / MemoryRecords), both ways, and batches captured from librdkafka
# (confluent-kafka) by a minimal fake broker, for every codec.

from __future__ import annotations

import socket
import struct
import threading
import tracemalloc
import types
from collections.abc import Iterator

import cramjam
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record import util as kp_util
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from strom.protocol.compression import Compression, compress
from strom.protocol.errors import CorruptRecordError, ErrorCode, KafkaError
from strom.protocol.records import (
    ATTRIBUTES_OFFSET,
    CONTROL_TYPE_ABORT,
    CONTROL_TYPE_COMMIT,
    CRC_OFFSET,
    HEADER_SIZE,
    MAGIC,
    BatchView,
    ControlRecord,
    Record,
    build_batch,
    build_control_batch,
    crc32c,
    decode_varint,
    decode_varlong,
    encode_varint,
    iter_batches,
    size_of_varint,
)

CODECS = list(Compression)
MiB = 1024 * 1024

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
BLOBS = st.one_of(st.none(), st.binary(max_size=200))
HEADERS = st.lists(st.tuples(st.text(max_size=10), BLOBS), max_size=4)
RECORDS = st.lists(st.tuples(BLOBS, BLOBS, HEADERS), max_size=30)


@pytest.fixture
def kafka_snappy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give kafka-python's codec module a snappy (python-snappy is not installed) via cramjam;
    its own xerial framing code then runs unchanged."""
    import kafka.codec

    shim = types.SimpleNamespace(
        compress=lambda b: bytes(cramjam.snappy.compress_raw(bytes(b))),
        decompress=lambda b: bytes(cramjam.snappy.decompress_raw(bytes(b))),
    )
    monkeypatch.setattr(kafka.codec, "snappy", shim)


def kp_build(
    records: list[tuple[int, bytes | None, bytes | None, list]],
    codec: int,
    *,
    producer: tuple[int, int, int] = (-1, -1, -1),
    transactional: bool = False,
) -> bytes:
    """A batch built by kafka-python: records are (timestamp, key, value, headers)."""
    pid, epoch, seq = producer
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=transactional,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        batch_size=64 * MiB,
    )
    for i, (ts, key, value, headers) in enumerate(records):
        assert builder.append(i, timestamp=ts, key=key, value=value, headers=headers) is not None
    return bytes(builder.build())


def compressible_records(n: int = 40) -> list[tuple[int, bytes | None, bytes | None, list]]:
    out = []
    for i in range(n):
        key = None if i % 7 == 3 else b"key-%d" % (i % 5)
        value = None if i % 11 == 5 else b"value %d " % i * 20
        headers = [("trace", b"abc%d" % i), ("empty", b""), ("null", None)][: i % 4]
        out.append((1_700_000_000_000 + i * 3 - (i % 4) * 5, key, value, headers))
    return out


def with_crc(batch: bytes | bytearray) -> bytes:
    """Recompute the CRC after an edit."""
    buf = bytearray(batch)
    struct.pack_into(">I", buf, CRC_OFFSET, zlib_crc32c(bytes(buf[ATTRIBUTES_OFFSET:])))
    return bytes(buf)


def zlib_crc32c(data: bytes) -> int:
    return kp_util.calc_crc32c(data)  # kafka-python's (independent, pure Python) CRC32C


# --- varints ----------------------------------------------------------------------------------


@given(INT32)
def test_varint_round_trip_matches_kafka_python(n: int) -> None:
    encoded = encode_varint(n)
    theirs = bytearray()
    kp_util.encode_varint(n, theirs.append)
    assert encoded == bytes(theirs)
    assert size_of_varint(n) == len(encoded) == kp_util.size_of_varint(n)
    assert decode_varint(encoded + b"\xff", 0) == (n, len(encoded))
    assert decode_varint(b"ab" + encoded, 2) == (n, 2 + len(encoded))
    assert decode_varlong(encoded) == (n, len(encoded))
    for cut in range(len(encoded)):
        with pytest.raises(CorruptRecordError):
            decode_varint(encoded[:cut])


@given(INT64)
def test_varlong_round_trip(n: int) -> None:
    encoded = encode_varint(n)
    assert len(encoded) <= 10
    assert decode_varlong(encoded) == (n, len(encoded))
    assert kp_util.decode_varint(bytearray(encoded), 0) == (n, len(encoded))
    if len(encoded) > 5:
        with pytest.raises(CorruptRecordError):
            decode_varint(encoded)


def test_varint_known_values() -> None:
    assert encode_varint(0) == b"\x00"
    assert encode_varint(-1) == b"\x01"
    assert encode_varint(1) == b"\x02"
    assert encode_varint(63) == b"\x7e"
    assert encode_varint(-64) == b"\x7f"
    assert encode_varint(64) == b"\x80\x01"
    assert encode_varint(2**31 - 1) == b"\xfe\xff\xff\xff\x0f"
    assert encode_varint(-(2**31)) == b"\xff\xff\xff\xff\x0f"


def test_varint_too_long_or_out_of_range() -> None:
    with pytest.raises(CorruptRecordError):
        decode_varint(b"\x80\x80\x80\x80\x80\x00")  # six bytes
    with pytest.raises(CorruptRecordError):
        decode_varint(b"\x80\x80\x80\x80\x10")  # five bytes, but a 33rd bit
    with pytest.raises(CorruptRecordError):
        decode_varlong(b"\x80" * 10 + b"\x00")  # eleven bytes
    with pytest.raises(CorruptRecordError):
        decode_varlong(b"\x80" * 9 + b"\x02")  # a 65th bit
    with pytest.raises(CorruptRecordError):
        decode_varint(b"", 0)
    with pytest.raises(CorruptRecordError):
        decode_varint(b"\x02", 5)
    with pytest.raises(KafkaError):
        encode_varint(2**63)


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@given(records=RECORDS, base_offset=st.integers(0, 2**62), ts=st.integers(0, 2**41))
@settings(max_examples=40, deadline=None)
def test_build_parse_round_trip(
    codec: Compression, records: list, base_offset: int, ts: int
) -> None:
    raw = build_batch(records, base_offset=base_offset, compression=codec, timestamp=ts)
    view = BatchView(raw)
    view.validate()
    assert view.size == len(raw) == 12 + view.batch_length
    assert view.magic == MAGIC
    assert view.base_offset == base_offset
    assert view.records_count == len(records)
    assert view.last_offset_delta == max(len(records) - 1, 0)
    assert view.base_timestamp == view.max_timestamp == ts
    assert view.compression == codec
    assert view.raw() == raw
    got = list(view.records())
    assert [(r.key, r.value, r.headers) for r in got] == [(k, v, list(h)) for k, v, h in records]
    assert [r.offset for r in got] == [base_offset + i for i in range(len(records))]
    assert all(r.timestamp == ts for r in got)


@given(
    stamps=st.lists(st.integers(0, 2**42), min_size=1, max_size=20),
    codec=st.sampled_from(CODECS),
)
@settings(max_examples=40, deadline=None)
def test_record_objects_keep_timestamps(stamps: list[int], codec: Compression) -> None:
    records = [Record(999, ts, b"k", b"v%d" % i, [("h", None)]) for i, ts in enumerate(stamps)]
    view = BatchView(build_batch(records, base_offset=10, compression=codec))
    view.validate()
    assert view.base_timestamp == stamps[0]
    assert view.max_timestamp == max(stamps)
    got = list(view.records())
    assert [r.timestamp for r in got] == stamps
    assert [r.offset for r in got] == list(range(10, 10 + len(stamps)))  # positions, not 999


def test_build_header_fields() -> None:
    raw = build_batch(
        [(b"a", b"b"), (None, None)],
        base_offset=7,
        timestamp=123,
        producer_id=4242,
        producer_epoch=3,
        base_sequence=17,
        partition_leader_epoch=9,
        transactional=True,
    )
    view = BatchView(raw)
    view.validate()
    assert (view.base_offset, view.last_offset, view.last_offset_delta) == (7, 8, 1)
    assert (view.producer_id, view.producer_epoch) == (4242, 3)
    assert (view.base_sequence, view.last_sequence) == (17, 18)
    assert view.partition_leader_epoch == 9
    assert view.is_transactional and not view.is_control
    assert view.timestamp_type == 0
    assert view.attributes == 0x10
    assert view.control_record() is None


def test_empty_batch() -> None:
    view = BatchView(build_batch([], timestamp=5))
    view.validate()
    assert view.records_count == 0 and list(view.records()) == []
    assert view.size == HEADER_SIZE


def test_log_append_time_build() -> None:
    recs = [Record(0, 100, b"k", b"v"), Record(1, 50, b"k", b"v")]
    view = BatchView(build_batch(recs, timestamp=1000, timestamp_type=1))
    view.validate()
    assert view.timestamp_type == 1 and view.max_timestamp == 1000
    assert [r.timestamp for r in view.records()] == [1000, 1000]


def test_last_sequence_wraps() -> None:
    view = BatchView(build_batch([(None, b"")] * 5, base_sequence=2**31 - 3))
    assert view.last_offset_delta == 4
    assert view.last_sequence == 1  # 2^31-3 + 4 wraps to 1, as Kafka's incrementSequence
    assert BatchView(build_batch([(None, b"")] * 5)).last_sequence == -1
    assert (
        BatchView(build_batch([(None, b"")] * 3, base_sequence=2**31 - 3)).last_sequence
        == 2**31 - 1
    )


def test_build_rejects_bad_input() -> None:
    with pytest.raises(KafkaError):
        build_batch([("text key", b"v")])
    with pytest.raises(KafkaError):
        build_batch([(b"k",)])
    with pytest.raises(KafkaError):
        build_batch([(b"k", b"v")], producer_id=2**63)
    with pytest.raises(KafkaError) as err:
        build_batch([(b"k", b"v")], compression=6)
    assert err.value.code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


# --- interop with kafka-python ----------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.usefixtures("kafka_snappy")
def test_kafka_python_batches_parse(codec: Compression) -> None:
    records = compressible_records()
    raw = kp_build(records, codec, producer=(777, 2, 1000), transactional=True)
    theirs = DefaultRecordBatch(raw)
    assert theirs.compression_type == codec  # compressible, so kafka-python kept the codec
    view = BatchView(raw)
    view.validate()
    assert view.crc_valid() and view.compute_crc() == view.crc == theirs.crc
    assert view.compression == codec
    assert (view.producer_id, view.producer_epoch, view.base_sequence) == (777, 2, 1000)
    assert view.last_sequence == theirs.last_sequence == 1000 + len(records) - 1
    assert view.is_transactional == theirs.is_transactional is True
    assert view.base_timestamp == theirs.first_timestamp == records[0][0]
    assert view.max_timestamp == theirs.max_timestamp == max(r[0] for r in records)
    assert view.last_offset_delta == theirs.last_offset_delta == len(records) - 1
    got = list(view.records())
    assert [(r.timestamp, r.key, r.value, r.headers) for r in got] == records
    assert [r.offset for r in got] == list(range(len(records)))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.usefixtures("kafka_snappy")
@given(records=st.lists(st.tuples(st.integers(0, 2**41), BLOBS, BLOBS, HEADERS), max_size=12))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_kafka_python_random_batches_parse(codec: Compression, records: list) -> None:
    if not records:
        return
    view = BatchView(kp_build(records, codec))  # kafka-python may fall back to no compression
    view.validate()
    got = list(view.records())
    assert [(r.timestamp, r.key, r.value, r.headers) for r in got] == records


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.usefixtures("kafka_snappy")
def test_strom_batches_parse_in_kafka_python(codec: Compression) -> None:
    records = compressible_records()
    raws = [
        build_batch(
            [Record(0, ts, k, v, h) for ts, k, v, h in records],
            base_offset=100,
            compression=codec,
            producer_id=55,
            producer_epoch=1,
            base_sequence=0,
            partition_leader_epoch=4,
        ),
        build_batch(
            [(b"k", b"v" * 500, [("x", b"y")])] * 3, base_offset=140, compression=codec, timestamp=9
        ),
    ]
    memory = MemoryRecords(b"".join(raws))
    batches = []
    while memory.has_next():
        batches.append(memory.next_batch())
    assert len(batches) == 2
    first, second = batches
    assert first.validate_crc() and second.validate_crc()
    assert first.compression_type == codec
    assert (first.base_offset, first.leader_epoch, first.producer_id) == (100, 4, 55)
    assert first.max_timestamp == max(r[0] for r in records)
    got = [(r.timestamp, r.key, r.value, list(r.headers)) for r in first]
    assert got == records
    assert [r.offset for r in DefaultRecordBatch(raws[0])] == list(range(100, 140))
    assert [(r.offset, r.timestamp, r.value) for r in second] == [
        (140 + i, 9, b"v" * 500) for i in range(3)
    ]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.usefixtures("kafka_snappy")
@given(records=RECORDS)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_strom_random_batches_parse_in_kafka_python(codec: Compression, records: list) -> None:
    raw = build_batch(records, compression=codec, timestamp=1234)
    theirs = DefaultRecordBatch(raw)
    assert theirs.validate_crc()
    got = [(r.key, r.value, list(r.headers)) for r in theirs]
    assert got == [(k, v, list(h)) for k, v, h in records]


def test_crc_helper_matches_kafka_python() -> None:
    data = bytes(range(256)) * 4000
    expected = zlib_crc32c(data)
    assert crc32c(data) == expected
    assert crc32c(bytearray(data)) == expected
    assert crc32c(memoryview(data)) == expected
    assert crc32c(memoryview(bytearray(data))[:]) == expected  # past the 256 KiB chunking
    assert crc32c(memoryview(data)[10:20]) == zlib_crc32c(data[10:20])


# --- stamping ---------------------------------------------------------------------------------


def test_stamping_outside_crc_keeps_it_valid() -> None:
    buf = bytearray(build_batch([(b"k", b"v")] * 3, timestamp=10))
    crc = BatchView(buf).crc
    view = BatchView(memoryview(buf))
    view.set_base_offset(2**40 + 5)
    view.set_partition_leader_epoch(77)
    assert view.crc == crc and view.crc_valid()
    view.validate()
    assert (view.base_offset, view.partition_leader_epoch) == (2**40 + 5, 77)
    assert [r.offset for r in view.records()] == [2**40 + 5, 2**40 + 6, 2**40 + 7]
    assert DefaultRecordBatch(bytes(buf)).validate_crc()


def test_set_max_timestamp_recomputes_crc() -> None:
    buf = bytearray(build_batch([(b"k", b"v")] * 3, timestamp=10, compression=Compression.LZ4))
    view = BatchView(buf)
    old_crc = view.crc
    view.set_max_timestamp(5555, log_append_time=True)
    assert view.crc != old_crc and view.crc_valid()
    view.validate()
    assert view.timestamp_type == 1 and view.max_timestamp == 5555
    assert view.compression == Compression.LZ4  # other attribute bits untouched
    assert [r.timestamp for r in view.records()] == [5555] * 3
    theirs = DefaultRecordBatch(bytes(buf))
    assert theirs.validate_crc() and theirs.timestamp_type == 1
    view.set_max_timestamp(10, log_append_time=False)
    view.validate()
    assert view.timestamp_type == 0 and [r.timestamp for r in view.records()] == [10] * 3


def test_setters_on_read_only_buffer() -> None:
    view = BatchView(build_batch([(b"k", b"v")]))
    with pytest.raises(TypeError):
        view.set_base_offset(1)


def test_view_stops_at_batch_end() -> None:
    one = build_batch([(b"a", b"b")], base_offset=1)
    two = build_batch([(b"c", b"d")], base_offset=2)
    view = BatchView(one + two)
    assert view.raw() == one and view.size == len(one)
    view.validate()
    assert [r.key for r in view.records()] == [b"a"]


# --- iter_batches -----------------------------------------------------------------------------


def make_log() -> tuple[bytes, list[bytes]]:
    batches = [
        build_batch([(b"k%d" % i, b"v" * i)] * (i + 1), base_offset=10 * i, compression=c)
        for i, c in enumerate(CODECS)
    ]
    return b"".join(batches), batches


def test_iter_batches_walks_all() -> None:
    log, batches = make_log()
    views = list(iter_batches(log, verify=True))
    assert [bytes(v.raw()) for v in views] == batches
    assert [v.base_offset for v in views] == [0, 10, 20, 30, 40]
    assert list(iter_batches(b"")) == []
    assert [v.base_offset for v in iter_batches(bytearray(log))] == [0, 10, 20, 30, 40]


def test_iter_batches_truncation_everywhere() -> None:
    log, batches = make_log()
    ends = {0}
    for b in batches:
        ends.add(max(ends) + len(b))
    for cut in range(len(log)):
        prefix = log[:cut]
        complete = sorted(e for e in ends if e <= cut)
        if cut in ends:
            assert len(list(iter_batches(prefix, verify=True))) == len(complete) - 1
        else:
            with pytest.raises(CorruptRecordError):
                list(iter_batches(prefix))
        partial = list(iter_batches(prefix, allow_partial_tail=True, verify=True))
        assert len(partial) == len(complete) - 1
        assert sum(v.size for v in partial) == complete[-1]


def test_iter_batches_verify_catches_bad_crc() -> None:
    log, batches = make_log()
    bad = bytearray(log)
    bad[len(batches[0]) + HEADER_SIZE + 2] ^= 0x01
    assert len(list(iter_batches(bad))) == 5  # lengths alone look fine
    with pytest.raises(CorruptRecordError, match="CRC"):
        list(iter_batches(bad, verify=True))


def test_iter_batches_rejects_short_length_and_magic() -> None:
    good = build_batch([(b"k", b"v")])
    short = bytearray(good)
    struct.pack_into(">i", short, 8, 40)
    with pytest.raises(CorruptRecordError):
        list(iter_batches(bytes(short) + good, allow_partial_tail=True))
    old_magic = bytearray(good)
    old_magic[16] = 1
    with pytest.raises(CorruptRecordError, match="magic"):
        list(iter_batches(old_magic))


# --- corruption -------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_any_flipped_byte_in_crc_region_fails_validate(codec: Compression) -> None:
    raw = build_batch(
        [(b"key", b"value " * 10, [("h", b"1")]), (None, b"x")], compression=codec, timestamp=1
    )
    BatchView(raw).validate()
    for i in range(ATTRIBUTES_OFFSET, len(raw)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(raw)
            bad[i] ^= flip
            with pytest.raises(CorruptRecordError):
                BatchView(bad).validate()


def test_header_bytes_outside_crc() -> None:
    raw = build_batch([(b"k", b"v")], timestamp=1)
    for i in range(CRC_OFFSET + 4):
        bad = bytearray(raw)
        bad[i] ^= 0x40
        if i < 8 or 12 <= i < 16:  # base offset, leader epoch: not covered, still valid
            BatchView(bad).validate()
        else:  # length, magic, crc
            with pytest.raises(CorruptRecordError):
                BatchView(bad).validate()


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_batch_raises_everywhere(codec: Compression) -> None:
    raw = build_batch([(b"key", b"value", [("h", None)])] * 4, compression=codec)
    for cut in range(len(raw)):
        with pytest.raises(CorruptRecordError):
            view = BatchView(raw[:cut])
            view.validate()
        if cut >= HEADER_SIZE:
            with pytest.raises(CorruptRecordError):
                list(BatchView(raw[:cut]).records())
            with pytest.raises(CorruptRecordError):
                BatchView(raw[:cut]).raw()


def test_validate_header_sanity() -> None:
    raw = build_batch([(b"k", b"v")])
    for offset, fmt, value in [
        (57, ">i", -1),  # records count
        (23, ">i", -1),  # last offset delta
        (57, ">i", 2**31 - 1),  # more records than could fit
    ]:
        bad = bytearray(raw)
        struct.pack_into(fmt, bad, offset, value)
        with pytest.raises(CorruptRecordError):
            BatchView(with_crc(bad)).validate()
    bad = bytearray(raw)
    bad[ATTRIBUTES_OFFSET + 1] |= 0x07  # compression 7
    view = BatchView(with_crc(bad))
    with pytest.raises(KafkaError) as err:
        view.validate()
    assert err.value.code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    with pytest.raises(KafkaError):
        _ = view.compression


def _one_record_batch(body: bytes, count: int = 1, codec: Compression = Compression.NONE) -> bytes:
    """A valid-CRC batch around a hand-made records section."""
    template = bytearray(build_batch([(b"k", b"v")], timestamp=1))
    del template[HEADER_SIZE:]
    payload = body if codec == Compression.NONE else compress(codec, body)
    template += payload
    struct.pack_into(">i", template, 8, len(template) - 12)
    struct.pack_into(">i", template, 57, count)
    template[ATTRIBUTES_OFFSET + 1] = (template[ATTRIBUTES_OFFSET + 1] & ~0x07) | codec
    return with_crc(template)


def _record(body: bytes) -> bytes:
    return encode_varint(len(body)) + body


HOSTILE_BODIES = {
    "key length 2^31-1": _record(b"\x00\x00\x00" + encode_varint(2**31 - 1) + b"abc"),
    "value length 2^31-1": _record(b"\x00\x00\x00\x01" + encode_varint(2**31 - 1) + b"abc"),
    "header count 2^31-1": _record(b"\x00\x00\x00\x01\x01" + encode_varint(2**31 - 1) + b"ab"),
    "header key 2^31-1": _record(b"\x00\x00\x00\x01\x01\x02" + encode_varint(2**31 - 1) + b"ab"),
    "header value 2^31-1": _record(b"\x00\x00\x00\x01\x01\x02\x02h" + encode_varint(2**31 - 1)),
    "record length 2^31-1": encode_varint(2**31 - 1) + b"\x00\x00\x00\x01\x01\x00",
    "negative record length": encode_varint(-5) + b"\x00\x00\x00\x01\x01\x00",
    "key length -2": _record(b"\x00\x00\x00" + encode_varint(-2) + b"\x01\x00"),
    "negative header count": _record(b"\x00\x00\x00\x01\x01" + encode_varint(-3)),
    "endless varint": _record(b"\x00" + b"\xff" * 12),
    "record longer than its fields": _record(b"\x00\x00\x00\x01\x01\x00" + b"extra"),
    "bad utf-8 header key": _record(b"\x00\x00\x00\x01\x01\x02\x04\xff\xfe\x01"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
@pytest.mark.parametrize("codec", [Compression.NONE, Compression.ZSTD])
def test_hostile_lengths_raise_without_allocating(name: str, codec: Compression) -> None:
    view = BatchView(_one_record_batch(HOSTILE_BODIES[name], codec=codec))
    view.validate()  # the CRC is right: only the contents are hostile
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecordError):
            list(view.records())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, peak


def test_hostile_record_count_does_not_preallocate() -> None:
    one = _record(b"\x00\x00\x00\x01\x01\x00")
    for codec in (Compression.NONE, Compression.GZIP):
        view = BatchView(_one_record_batch(one, count=2**31 - 1, codec=codec))
        tracemalloc.start()
        try:
            with pytest.raises(CorruptRecordError):
                list(view.records())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 64 * 1024
    fewer = BatchView(_one_record_batch(one + one, count=1))
    with pytest.raises(CorruptRecordError, match="after the last"):
        list(fewer.records())


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_fuzzed_batches_raise_only_kafka_errors(data: st.DataObject) -> None:
    codec = data.draw(st.sampled_from(CODECS))
    raw = bytearray(
        build_batch(
            [(b"key", b"value", [("h", b"v")]), (None, None), (b"", b"x" * 30)],
            compression=codec,
            timestamp=5,
        )
    )
    for _ in range(data.draw(st.integers(1, 5))):
        i = data.draw(st.integers(ATTRIBUTES_OFFSET, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    raw = bytearray(with_crc(raw))
    try:
        view = BatchView(raw)
        view.validate()
        for record in view.records(max_decompressed=1 << 16):
            assert isinstance(record, Record)
        view.control_record()
    except KafkaError:  # CorruptRecordError, or an unknown compression type
        pass


# --- decompression bombs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "codec", [Compression.ZSTD, Compression.GZIP, Compression.LZ4, Compression.SNAPPY]
)
def test_decompression_bomb(codec: Compression) -> None:
    zeros = b"\0" * (32 * MiB)
    if codec == Compression.ZSTD:
        cobj = zstandard.ZstdCompressor().compressobj()  # streamed: no declared size
        payload = cobj.compress(zeros) + cobj.flush()
    else:
        payload = compress(codec, zeros)
    batch = bytearray(build_batch([(b"k", b"v")], timestamp=1))
    del batch[HEADER_SIZE:]
    batch += payload
    struct.pack_into(">i", batch, 8, len(batch) - 12)
    batch[ATTRIBUTES_OFFSET + 1] |= codec
    view = BatchView(with_crc(batch))
    view.validate()
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecordError, match="exceeds the limit"):
            list(view.records(max_decompressed=MiB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB


def test_max_decompressed_boundary() -> None:
    records = [(b"k", b"v" * 1000)] * 50
    view = BatchView(build_batch(records, compression=Compression.ZSTD))
    exact = len(build_batch(records)) - HEADER_SIZE
    assert len(list(view.records(max_decompressed=exact))) == 50
    with pytest.raises(CorruptRecordError):
        list(view.records(max_decompressed=exact - 1))


# --- control batches --------------------------------------------------------------------------


@pytest.mark.parametrize("ctype", [CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT])
def test_control_batches(ctype: int) -> None:
    raw = build_control_batch(
        ctype, producer_id=99, producer_epoch=4, coordinator_epoch=12, base_offset=500, timestamp=77
    )
    view = BatchView(raw)
    view.validate()
    assert view.is_control and view.is_transactional
    assert (view.producer_id, view.producer_epoch, view.base_sequence) == (99, 4, -1)
    assert view.base_offset == view.last_offset == 500 and view.records_count == 1
    assert view.control_record() == ControlRecord(type=ctype, coordinator_epoch=12)
    (record,) = view.records()
    assert record.key == struct.pack(">hh", 0, ctype)
    assert record.value == struct.pack(">hi", 0, 12)
    theirs = DefaultRecordBatch(raw)
    assert theirs.validate_crc() and theirs.is_control_batch and theirs.is_transactional
    (marker,) = list(theirs)
    assert marker.type == ctype and (marker.commit if ctype else marker.abort)


def test_control_record_of_data_batch_and_bad_markers() -> None:
    assert BatchView(build_batch([(b"k", b"v")])).control_record() is None
    control = bytearray(build_control_batch(1, producer_id=1, producer_epoch=0))
    # A control batch whose marker key is too short.
    short_key = bytearray(build_batch([(b"\x00", b"\x00" * 6)], transactional=True, producer_id=1))
    short_key[ATTRIBUTES_OFFSET + 1] |= 0x20
    with pytest.raises(CorruptRecordError):
        BatchView(with_crc(short_key)).control_record()
    # Another control type (e.g. KRaft's LeaderChange = 2) has no coordinator epoch.
    other = bytearray(build_batch([(struct.pack(">hh", 0, 2), b"...")], producer_id=1))
    other[ATTRIBUTES_OFFSET + 1] |= 0x20
    assert BatchView(with_crc(other)).control_record() == ControlRecord(
        type=2, coordinator_epoch=-1
    )
    assert BatchView(control).is_control


# --- interop with librdkafka (confluent-kafka) ------------------------------------------------


class _CaptureBroker:
    """Just enough of a Kafka broker for a librdkafka producer with acks=0: it answers
    ApiVersions and Metadata (one topic "t", one partition, led by itself) and keeps the record
    set of every Produce request. No Strom code is involved in speaking the protocol."""

    # (api key, min, max): Produce 3-7 and Fetch 4-10 unlock librdkafka's MsgVer2 and zstd.
    APIS = [(0, 3, 7), (1, 4, 11), (3, 1, 1), (10, 0, 0), (18, 0, 3)]

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.record_sets: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _recv(conn: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _answer(self, key: int, version: int, req: bytes, pos: int) -> bytes | None:
        if key == 18:  # ApiVersions
            if version >= 3:  # flexible: compact array, tagged fields
                entries = b"".join(struct.pack(">hhh", *a) + b"\0" for a in self.APIS)
                return b"\0\0" + bytes([len(self.APIS) + 1]) + entries + b"\0\0\0\0\0"
            entries = b"".join(struct.pack(">hhh", *a) for a in self.APIS)
            tail = b"\0\0\0\0" if version >= 1 else b""
            return b"\0\0" + struct.pack(">i", len(self.APIS)) + entries + tail
        if key == 3:  # Metadata v1
            host = b"127.0.0.1"
            broker = struct.pack(">ih", 1, len(host)) + host + struct.pack(">ih", self.port, -1)
            partition = struct.pack(">hiiiiii", 0, 0, 1, 1, 1, 1, 1)
            topic = struct.pack(">hh", 0, 1) + b"t" + b"\0" + struct.pack(">i", 1) + partition
            return struct.pack(">i", 1) + broker + struct.pack(">ii", 1, 1) + topic
        if key == 0:  # Produce v3-v7, acks=0: keep the records, send nothing
            (tx_len,) = struct.unpack_from(">h", req, pos)
            pos += 2 + max(tx_len, 0)
            acks, _timeout, topics = struct.unpack_from(">hii", req, pos)
            assert acks == 0
            pos += 10
            for _ in range(topics):
                (name_len,) = struct.unpack_from(">h", req, pos)
                pos += 2 + name_len
                (partitions,) = struct.unpack_from(">i", req, pos)
                pos += 4
                for _ in range(partitions):
                    _index, size = struct.unpack_from(">ii", req, pos)
                    self.record_sets.append(req[pos + 8 : pos + 8 + size])
                    pos += 8 + size
            return None
        raise AssertionError(f"unexpected request: api key {key} v{version}")

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                while True:
                    (size,) = struct.unpack(">i", self._recv(conn, 4))
                    req = self._recv(conn, size)
                    key, version, correlation, client_len = struct.unpack_from(">hhih", req, 0)
                    body = self._answer(key, version, req, 10 + max(client_len, 0))
                    if body is not None:
                        resp = struct.pack(">i", correlation) + body
                        conn.sendall(struct.pack(">i", len(resp)) + resp)
            except (EOFError, OSError):
                pass


@pytest.fixture(scope="module")
def capture_broker() -> Iterator[_CaptureBroker]:
    broker = _CaptureBroker()
    yield broker
    broker.close()


@pytest.mark.parametrize("codec", CODECS)
def test_librdkafka_batches_parse(codec: Compression, capture_broker: _CaptureBroker) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    records = compressible_records(60)
    capture_broker.record_sets.clear()
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{capture_broker.port}",
            "acks": 0,
            "compression.type": codec.name.lower(),
            "linger.ms": 20,
            "enable.idempotence": False,
        }
    )
    for ts, key, value, headers in records:
        producer.produce("t", key=key, value=value, headers=headers, timestamp=ts)
    assert producer.flush(20) == 0
    del producer
    views = [v for raw in capture_broker.record_sets for v in iter_batches(raw, verify=True)]
    assert views and all(v.compression == codec for v in views)
    got = [r for v in views for r in v.records()]
    assert [(r.timestamp, r.key, r.value, r.headers) for r in got] == [
        (ts, k, v, h) for ts, k, v, h in records
    ]


@pytest.mark.parametrize("codec", list(Compression))
def test_verify_records_accepts_real_batches(codec: Compression) -> None:
    big = [(None, b"v" * 300), (b"k", None), (b"k" * 200, b"x" * 70000)]
    for records in ([(b"k", b"v")], big, [(None, b"%d" % i) for i in range(500)]):
        BatchView(build_batch(records, compression=codec)).verify_records()


def _recount(batch: bytes, count: int) -> BatchView:
    """The same batch claiming another record count (CRC recomputed, so only records differ)."""
    raw = bytearray(batch)
    struct.pack_into(">i", raw, 23, count - 1)  # lastOffsetDelta
    struct.pack_into(">i", raw, 57, count)  # recordsCount
    view = BatchView(raw)
    struct.pack_into(">I", raw, 17, view.compute_crc())
    return view


def test_verify_records_refuses_miscounted_and_garbled_records() -> None:
    good = build_batch([(b"k", b"v%d" % i) for i in range(5)])
    with pytest.raises(CorruptRecordError):
        _recount(good, 6).verify_records()
    with pytest.raises(CorruptRecordError):
        _recount(good, 4).verify_records()
    noise = bytearray(good)
    noise[HEADER_SIZE:] = bytes(range(len(good) - HEADER_SIZE))
    view = BatchView(noise)
    struct.pack_into(">I", noise, 17, view.compute_crc())
    with pytest.raises(CorruptRecordError):
        view.verify_records()


def test_verify_records_stops_a_decompression_bomb() -> None:
    bomb = build_batch([(None, bytes(8 << 20))], compression=Compression.ZSTD)
    assert len(bomb) < 64 << 10
    with pytest.raises(CorruptRecordError):
        BatchView(bomb).verify_records(max_decompressed=1 << 20)


@pytest.mark.parametrize("value_size", [5, 100, 300])
def test_verify_records_runs_of_equal_records(value_size: int) -> None:
    """Equal-size records are walked in strides (one- and two-byte lengths): the count still
    has to match exactly, and a changed length inside a long run is noticed."""
    records = [(b"k", b"v" * value_size)] * 1000
    good = build_batch(records)
    BatchView(good).verify_records()
    for count in (999, 1001, 1):
        with pytest.raises(CorruptRecordError):
            _recount(good, count).verify_records()
    # change the length prefix of record 700: the walk must fall out of step
    raw = bytearray(good)
    pos = HEADER_SIZE
    for _ in range(700):  # each record: a zigzag varint length, then that many bytes
        shift = raw_len = 0
        while True:
            b = raw[pos]
            pos += 1
            raw_len |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        pos += (raw_len >> 1) ^ -(raw_len & 1)
    if raw[pos] < 0x80:
        raw[pos] = (raw[pos] + 2) & 0x7F
    else:  # a two-byte length: change its second byte
        raw[pos + 1] = (raw[pos + 1] + 1) & 0x7F
    view = BatchView(raw)
    struct.pack_into(">I", raw, 17, view.compute_crc())
    with pytest.raises(CorruptRecordError):
        view.verify_records()
