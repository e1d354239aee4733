"""Retention by time and size: whole old segments go, never data above the high watermark."""

from __future__ import annotations

import os

from strom.storage.log import Log

from .util import make_batch, offsets, records_of

DAY = 86_400_000


def _fill(log: Log, n: int, ts0: int = 0, step: int = 1000) -> None:
    for i in range(n):
        log.append(make_batch([b"x" * 100], timestamp=ts0 + i * step))
    log.high_watermark = log.log_end_offset


def test_retention_by_time(make_log) -> None:
    log = make_log(segment_bytes=1000, retention_ms=10_000, file_delete_delay_ms=0)
    _fill(log, 40)  # timestamps 0..39s, ~6 batches per segment
    segs = log.segments
    assert len(segs) >= 5
    now = 30_000
    deleted = log.delete_old_segments(now)
    # Exactly the segments whose newest record is more than 10 s old are gone.
    gone = [s for s in segs if now - s.max_timestamp > 10_000]
    assert deleted == len(gone) > 0
    assert log.log_start_offset == log.segments[0].base_offset
    recs = records_of(log)
    assert offsets(recs) == list(range(log.log_start_offset, 40))
    for seg in gone:
        assert not os.path.exists(seg.log_path)
    assert log.segments[0].max_timestamp >= now - 10_000


def test_retention_by_time_can_empty_the_log(make_log) -> None:
    log = make_log(segment_bytes=1000, retention_ms=1000, file_delete_delay_ms=0)
    _fill(log, 20)
    log.delete_old_segments(10**9)
    assert log.log_start_offset == log.log_end_offset == 20
    assert records_of(log) == []
    assert log.append(make_batch(1)).first_offset == 20
    assert len(log.segments) == 1


def test_retention_by_size(make_log) -> None:
    log = make_log(segment_bytes=1000, retention_bytes=2500, retention_ms=-1)
    _fill(log, 40)
    total = log.size
    sizes = [s.size for s in log.segments]
    deleted = log.delete_old_segments(10**12)
    # The oldest segments go while what remains stays at or above retention.bytes.
    expect, excess = 0, total - 2500
    for size in sizes:
        if excess - size < 0:
            break
        excess -= size
        expect += 1
    assert deleted == expect > 0
    assert log.size >= 2500
    assert log.size - log.segments[0].size < 2500  # one more would go below the limit
    assert offsets(records_of(log))[-1] == 39


def test_retention_waits_for_the_high_watermark(make_log) -> None:
    log = make_log(segment_bytes=1000, retention_ms=1, file_delete_delay_ms=0)
    _fill(log, 30)
    log.high_watermark = log.segments[1].base_offset  # only the first segment is committed
    assert log.delete_old_segments(10**9) == 1
    assert log.log_start_offset == log.segments[0].base_offset


def test_compact_only_topic_ignores_retention(make_log) -> None:
    log = make_log(segment_bytes=1000, retention_ms=1, cleanup_policy="compact")
    _fill(log, 30)
    assert log.delete_old_segments(10**9) == 0
    both = make_log("both-0", segment_bytes=1000, retention_ms=1, cleanup_policy="compact,delete")
    _fill(both, 30)
    assert both.delete_old_segments(10**9) > 0


def test_deleted_files_wait_for_file_delete_delay(make_log, tmp_path) -> None:
    log = make_log(segment_bytes=1000, retention_ms=1, file_delete_delay_ms=5000)
    _fill(log, 30)
    first = log.segments[0]
    log.delete_old_segments(100_000)
    names = os.listdir(tmp_path / "topic-0")
    assert os.path.basename(first.log_path) in names and first.log_path.endswith(".deleted")
    assert log.delete_expired_files(now_ms=104_999) == 0
    assert log.delete_expired_files(now_ms=105_000) > 0
    assert not any(n.endswith(".deleted") for n in os.listdir(tmp_path / "topic-0"))


def test_deleted_leftovers_are_removed_on_open(tmp_path) -> None:
    log = Log(str(tmp_path / "t-0"))
    log.append(make_batch(1))
    log.close()
    (tmp_path / "t-0" / "00000000000000000099.log.deleted").write_bytes(b"junk")
    log = Log(str(tmp_path / "t-0"))
    assert offsets(records_of(log)) == [0]
    assert not (tmp_path / "t-0" / "00000000000000000099.log.deleted").exists()
    log.close()
