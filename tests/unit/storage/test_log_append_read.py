"""Append, read by offset, segment rolls and on-disk layout."""

from __future__ import annotations

import os
import struct

import pytest

from strom.protocol.compression import Compression
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import BatchView, build_batch
from strom.storage.log import Log

from .util import batches_of, make_batch, offsets, records_of


def test_offsets_are_assigned_in_order(make_log) -> None:
    log = make_log()
    r1 = log.append(make_batch(3))
    r2 = log.append(make_batch(2))
    assert (r1.first_offset, r1.last_offset) == (0, 2)
    assert (r2.first_offset, r2.last_offset) == (3, 4)
    assert r1.log_append_time == -1 and r1.log_start_offset == 0
    assert log.log_end_offset == 5
    assert records_of(log) == [
        (0, b"k0", b"v0"),
        (1, b"k1", b"v1"),
        (2, b"k2", b"v2"),
        (3, b"k0", b"v0"),
        (4, b"k1", b"v1"),
    ]


def test_several_batches_in_one_append_are_one_write(make_log, monkeypatch) -> None:
    log = make_log()
    writes = []
    real = os.pwrite
    monkeypatch.setattr(
        os, "pwrite", lambda fd, data, pos: writes.append(len(data)) or real(fd, data, pos)
    )
    data = make_batch(2) + make_batch(3) + make_batch(1)
    r = log.append(data)
    assert writes == [len(data)]
    assert (r.first_offset, r.last_offset) == (0, 5)
    assert [(b.base_offset, b.last_offset) for b in r.batches] == [(0, 1), (2, 4), (5, 5)]
    assert offsets(records_of(log)) == list(range(6))


def test_writable_buffer_is_stamped_in_place(make_log) -> None:
    log = make_log()
    log.append(make_batch(4))
    buf = bytearray(make_batch(2))
    log.append(buf)
    assert BatchView(buf).base_offset == 4  # stamped in the caller's buffer, CRC untouched
    assert BatchView(buf).crc_valid()
    ro = make_batch(2)
    log.append(ro)
    assert BatchView(ro).base_offset == 0  # read-only input is copied, not modified


def test_read_returns_whole_batches_from_the_one_holding_the_offset(make_log) -> None:
    log = make_log()
    for _ in range(10):
        log.append(make_batch(5))  # offsets 0..49, 10 batches
    r = log.read(12, 1 << 20)
    data = r.read_bytes()
    assert len(data) == r.length
    bs = batches_of(data)
    assert bs[0].base_offset == 10  # the batch holding 12; the client skips 10 and 11
    assert bs[-1].last_offset == 49
    assert r.first_offset == 10 and r.log_end_offset == 50
    assert r.path.endswith("00000000000000000000.log")
    with r.open() as fd:
        assert os.pread(fd, r.length, r.position) == data


def test_max_bytes_is_batch_aligned_and_min_one_message(make_log) -> None:
    log = make_log()
    sizes = []
    for i in range(6):
        sizes.append(len(make_batch(3, prefix=b"x" * (i + 1))))
        log.append(make_batch(3, prefix=b"x" * (i + 1)))
    # Room for two and a half batches -> exactly two.
    r = log.read(0, sizes[0] + sizes[1] + sizes[2] // 2)
    assert r.length == sizes[0] + sizes[1]
    assert [b.base_offset for b in batches_of(r.read_bytes())] == [0, 3]
    # Less than one batch: the first whole batch anyway (min_one_message)...
    r = log.read(3, 10)
    assert r.length == sizes[1] and batches_of(r.read_bytes())[0].base_offset == 3
    # ...unless the caller says otherwise.
    r = log.read(3, 10, min_one_message=False)
    assert r.empty and r.read_bytes() == b"" and r.next_offset == 3


def test_max_offset_caps_the_read(make_log) -> None:
    log = make_log()
    for _ in range(5):
        log.append(make_batch(2))  # 0..9
    r = log.read(0, 1 << 20, max_offset=6)
    assert [b.last_offset for b in batches_of(r.read_bytes())] == [1, 3, 5]
    assert log.read(6, 1 << 20, max_offset=6).empty
    assert log.read(4, 1 << 20, max_offset=5).empty  # the batch 4..5 is not all below 5


def test_out_of_range_offsets(make_log) -> None:
    log = make_log()
    log.append(make_batch(3))
    assert log.read(3, 100).empty  # the log end offset itself: nothing yet
    for bad in (-1, 4, 100):
        with pytest.raises(KafkaError) as exc:
            log.read(bad, 100)
        assert exc.value.code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_rolls_on_segment_bytes_and_reads_across_segments(make_log) -> None:
    log = make_log(segment_bytes=1000, index_interval_bytes=100)
    expected = []
    for i in range(60):
        values = [f"value-{i}-{j}".encode() * 3 for j in range(2)]
        log.append(make_batch(values))
        expected += [(2 * i + j, b"k" + str(j).encode(), values[j]) for j in range(2)]
    segs = log.segments
    assert len(segs) > 5
    assert all(s.size <= 1000 for s in segs)
    assert [s.base_offset for s in segs] == sorted(s.base_offset for s in segs)
    assert records_of(log) == expected
    # Every offset is found, including the first and last of each segment.
    for seg in segs:
        for off in (seg.base_offset, seg.base_offset + 1):
            if off < 120:
                first = batches_of(log.read(off, 1).read_bytes())[0]
                assert first.base_offset <= off <= first.last_offset
    # A read never spans two segments.
    r = log.read(0, 1 << 20)
    assert r.length == segs[0].size
    assert r.next_offset == segs[1].base_offset
    # next_offset is always the offset after the last batch in the range.
    for off in range(0, 120, 3):
        for max_bytes in (1, 150, 333, 700):
            r = log.read(off, max_bytes)
            bs = batches_of(r.read_bytes())
            assert r.next_offset == bs[-1].last_offset + 1
            assert bs[0].base_offset <= off <= bs[0].last_offset


def test_segment_files_and_index_entries_are_kafka_shaped(make_log, tmp_path) -> None:
    log = make_log(segment_bytes=20000, index_interval_bytes=1000)
    for _ in range(100):
        log.append(make_batch(1, prefix=b"p" * 300))
    log.close()
    names = sorted(os.listdir(tmp_path / "topic-0"))
    stems = sorted({n.split(".")[0] for n in names if n.endswith(".log")})
    assert all(len(s) == 20 and s.isdigit() for s in stems)
    for stem in stems:
        assert f"{stem}.index" in names and f"{stem}.timeindex" in names
    first = tmp_path / "topic-0" / f"{stems[0]}.index"
    data = first.read_bytes()
    assert len(data) % 8 == 0 and len(data) > 0
    log_bytes = (tmp_path / "topic-0" / f"{stems[0]}.log").read_bytes()
    prev = -1
    for rel, pos in struct.iter_unpack(">ii", data):
        batch = BatchView(log_bytes[pos:])
        assert batch.last_offset == rel  # Kafka indexes a batch by its last offset
        assert rel > prev
        prev = rel
    # About one entry per index.interval.bytes of log.
    batch_size = len(make_batch(1, prefix=b"p" * 300))
    per_entry = (1000 // batch_size) + 1
    assert abs(len(data) // 8 - len(log_bytes) // batch_size // per_entry) <= 1
    tdata = (tmp_path / "topic-0" / f"{stems[0]}.timeindex").read_bytes()
    assert len(tdata) % 12 == 0 and len(tdata) > 0


def test_segment_ms_rolls_by_record_timestamps(make_log) -> None:
    log = make_log(segment_ms=1000)
    log.append(make_batch(1, timestamp=10_000), now_ms=10_000)
    log.append(make_batch(1, timestamp=10_900), now_ms=10_900)
    assert len(log.segments) == 1
    log.append(make_batch(1, timestamp=11_001), now_ms=11_001)
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_roll_when_index_is_full(make_log) -> None:
    log = make_log(segment_index_bytes=32, index_interval_bytes=0)  # 4 offset entries
    for _ in range(20):
        log.append(make_batch(1))
    segs = log.segments
    assert len(segs) > 2
    assert all(s.offset_index.count <= 4 for s in segs)
    assert offsets(records_of(log)) == list(range(20))


def test_log_append_time_is_stamped(make_log) -> None:
    log = make_log(message_timestamp_type="LogAppendTime")
    r = log.append(make_batch(2, timestamp=5), now_ms=123_456)
    assert r.log_append_time == 123_456
    batch = batches_of(log.read(0, 1000).read_bytes())[0]
    assert batch.timestamp_type == 1 and batch.max_timestamp == 123_456 and batch.crc_valid()
    assert [rec.timestamp for rec in batch.records()] == [123_456, 123_456]


def test_compressed_batches_round_trip(make_log) -> None:
    log = make_log()
    for codec in (Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD):
        log.append(make_batch([b"a" * 100, b"b" * 100], compression=codec))
    recs = records_of(log)
    assert offsets(recs) == list(range(8))
    assert [v for _o, _k, v in recs] == [b"a" * 100, b"b" * 100] * 4


def test_reopen_after_clean_close_continues(tmp_path) -> None:
    path = str(tmp_path / "t-0")
    log = Log(path)
    log.append(make_batch(3))
    log.close()
    log = Log(path)
    r = log.append(make_batch(2))
    assert (r.first_offset, r.last_offset) == (3, 4)
    assert offsets(records_of(log)) == [0, 1, 2, 3, 4]
    log.close()


def test_append_result_has_producer_info(make_log) -> None:
    log = make_log()
    data = build_batch([(b"k", b"v")] * 3, producer_id=77, producer_epoch=2, base_sequence=10)
    seen = []
    r = log.append(data, before_write=seen.append)
    (info,) = r.batches
    assert seen == [r.batches]
    assert (info.producer_id, info.producer_epoch, info.base_sequence, info.last_sequence) == (
        77,
        2,
        10,
        12,
    )
    assert (info.base_offset, info.last_offset, info.records_count) == (0, 2, 3)


def test_before_write_can_refuse(make_log) -> None:
    log = make_log()
    log.append(make_batch(1))

    def refuse(infos) -> None:
        raise KafkaError("dup", code=ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)

    with pytest.raises(KafkaError):
        log.append(make_batch(2), before_write=refuse)
    assert log.log_end_offset == 1 and log.active_segment.size == len(make_batch(1))
