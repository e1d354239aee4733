"""Lookups by timestamp (ListOffsets) through the time index."""

from __future__ import annotations

import pytest

from strom.protocol.compression import Compression
from strom.protocol.records import Record, build_batch
from strom.storage.log import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    Log,
    TimestampOffset,
)


def _fill(log: Log) -> None:
    # 40 batches of 3 records; record i has timestamp 10_000 + 10 * i.
    for b in range(40):
        recs = [Record(0, 10_000 + 10 * (3 * b + j), b"k%d" % j, b"x" * 50) for j in range(3)]
        log.append(build_batch(recs))


@pytest.mark.parametrize("interval", [0, 300, 4096])
def test_first_offset_at_or_after_timestamp_across_segments(make_log, interval) -> None:
    log = make_log(segment_bytes=1500, index_interval_bytes=interval)
    _fill(log)
    assert len(log.segments) > 3
    for i in range(120):
        ts = 10_000 + 10 * i
        assert log.offset_for_timestamp(ts) == TimestampOffset(i, ts)
        assert log.offset_for_timestamp(ts - 5) == TimestampOffset(i, ts)  # between records
    assert log.offset_for_timestamp(0) == TimestampOffset(0, 10_000)
    assert log.offset_for_timestamp(10_000 + 10 * 120) is None


def test_special_timestamps(make_log) -> None:
    log = make_log(segment_bytes=1500)
    assert log.offset_for_timestamp(MAX_TIMESTAMP) is None
    _fill(log)
    assert log.offset_for_timestamp(LATEST_TIMESTAMP) == TimestampOffset(120, -1)
    assert log.offset_for_timestamp(EARLIEST_TIMESTAMP) == TimestampOffset(0, -1)
    assert log.offset_for_timestamp(MAX_TIMESTAMP) == TimestampOffset(119, 10_000 + 1190)


def test_out_of_order_timestamps(make_log) -> None:
    log = make_log(index_interval_bytes=0)
    for ts in (100, 500, 200, 700, 300):
        log.append(build_batch([(b"k", b"v")], timestamp=ts))
    assert log.offset_for_timestamp(150) == TimestampOffset(1, 500)
    assert log.offset_for_timestamp(600) == TimestampOffset(3, 700)
    assert log.offset_for_timestamp(250) == TimestampOffset(1, 500)
    assert log.offset_for_timestamp(MAX_TIMESTAMP) == TimestampOffset(3, 700)


def test_max_timestamp_inside_a_compressed_batch(make_log) -> None:
    log = make_log()
    recs = [Record(0, ts, b"k", b"v") for ts in (5, 90, 40)]
    log.append(build_batch([(b"a", b"b")], timestamp=1))
    log.append(build_batch(recs, compression=Compression.ZSTD))
    assert log.offset_for_timestamp(MAX_TIMESTAMP) == TimestampOffset(2, 90)
    assert log.offset_for_timestamp(30) == TimestampOffset(2, 90)


def test_timestamps_after_reopen(tmp_path) -> None:
    log = Log(str(tmp_path / "t-0"))
    _fill(log)
    log.close()
    log = Log(str(tmp_path / "t-0"))
    assert log.offset_for_timestamp(10_555) == TimestampOffset(56, 10_560)
    assert log.offset_for_timestamp(MAX_TIMESTAMP) == TimestampOffset(119, 11_190)
    log.close()
