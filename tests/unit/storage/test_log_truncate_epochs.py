"""Truncation (replication), DeleteRecords and the leader epoch cache."""

from __future__ import annotations

import pytest

from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.checkpoints import EpochEntry
from strom.storage.log import Log

from .util import make_batch, offsets, records_of


def test_truncate_to_inside_and_across_segments(make_log) -> None:
    log = make_log(segment_bytes=600, index_interval_bytes=50)
    for _ in range(30):
        log.append(make_batch(2))  # 0..59
    n_segments = len(log.segments)
    assert n_segments > 3
    third = log.segments[2].base_offset
    assert log.truncate_to(third + 2)
    assert log.log_end_offset == third + 2
    assert offsets(records_of(log)) == list(range(third + 2))
    assert len(log.segments) == 3
    r = log.append(make_batch(3))
    assert r.first_offset == third + 2
    assert offsets(records_of(log)) == list(range(third + 5))
    assert not log.truncate_to(1000)


def test_truncate_updates_watermarks_and_survives_reopen(tmp_path) -> None:
    path = str(tmp_path / "t-0")
    log = Log(path)
    for _ in range(10):
        log.append(make_batch(1))
    log.high_watermark = 10
    log.flush()
    log.truncate_to(4)
    assert log.high_watermark == 4 and log.recovery_point == 4
    log.close()
    log = Log(path)
    assert log.log_end_offset == 4
    assert offsets(records_of(log)) == [0, 1, 2, 3]
    log.close()


def test_truncate_inside_a_batch_drops_the_whole_batch(make_log) -> None:
    log = make_log()
    log.append(make_batch(3))  # 0..2
    log.append(make_batch(4))  # 3..6
    log.truncate_to(5)
    assert log.log_end_offset == 3  # no partial batch: the log ends after batch 0..2
    assert offsets(records_of(log)) == [0, 1, 2]
    assert log.append(make_batch(1)).first_offset == 3


def test_truncate_fully(make_log) -> None:
    log = make_log()
    log.append(make_batch(5))
    log.truncate_fully_and_start_at(100)
    assert (log.log_start_offset, log.log_end_offset) == (100, 100)
    assert log.append(make_batch(1)).first_offset == 100


def test_delete_records_before(make_log) -> None:
    log = make_log(segment_bytes=400)
    for _ in range(20):
        log.append(make_batch(1))
    log.high_watermark = 15
    with pytest.raises(KafkaError) as exc:
        log.delete_records_before(16)  # beyond the high watermark
    assert exc.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert log.delete_records_before(7) == 7
    assert log.log_start_offset == 7
    with pytest.raises(KafkaError) as exc:
        log.read(6, 100)
    assert exc.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert offsets(records_of(log))[0] == 7
    # Whole segments below the new start go at the next retention run.
    before = len(log.segments)
    deleted = log.delete_old_segments(now_ms=2_000)  # nothing is past retention.ms yet
    assert deleted >= 1 and len(log.segments) == before - deleted
    segs = log.segments
    assert segs[0].base_offset <= 7 < segs[1].base_offset
    assert log.log_start_offset == 7


def test_leader_epoch_cache(tmp_path) -> None:
    path = str(tmp_path / "t-0")
    log = Log(path)
    log.append(make_batch(3), leader_epoch=0)  # 0..2 in epoch 0
    log.append(make_batch(2), leader_epoch=0)  # 3..4
    log.append(make_batch(2), leader_epoch=2)  # 5..6 in epoch 2
    log.assign_epoch(5, 7)
    log.append(make_batch(1), leader_epoch=5)  # 7
    assert log.epochs.entries == [EpochEntry(0, 0), EpochEntry(2, 5), EpochEntry(5, 7)]
    assert log.end_offset_for_epoch(0) == (0, 5)
    assert log.end_offset_for_epoch(1) == (0, 5)  # unknown epoch: the floor's end
    assert log.end_offset_for_epoch(2) == (2, 7)
    assert log.end_offset_for_epoch(5) == (5, 8)  # the latest: the log end offset
    assert log.end_offset_for_epoch(6) == (-1, -1)
    assert log.end_offset_for_epoch(-1) == (-1, -1)
    batches = list(log.iter_batches())
    assert [b.partition_leader_epoch for b in batches] == [0, 0, 2, 5]
    log.close()
    assert (tmp_path / "t-0" / "leader-epoch-checkpoint").read_text() == "0\n3\n0 0\n2 5\n5 7\n"
    log = Log(path)
    assert log.end_offset_for_epoch(2) == (2, 7)
    log.truncate_to(7)  # epoch 5's start is gone
    assert log.epochs.entries == [EpochEntry(0, 0), EpochEntry(2, 5)]
    assert log.log_end_offset == 7
    log.high_watermark = 7
    log.delete_records_before(3)
    assert log.epochs.entries == [EpochEntry(0, 3), EpochEntry(2, 5)]
    log.close()


def test_epoch_cache_drops_contradicted_entries(make_log) -> None:
    log = make_log()
    log.assign_epoch(1, 0)
    log.assign_epoch(3, 10)
    log.assign_epoch(3, 12)  # the same epoch again, later: nothing changes
    assert [(e.epoch, e.start_offset) for e in log.epochs.entries] == [(1, 0), (3, 10)]
    log.assign_epoch(4, 8)  # a new epoch starting earlier replaces later entries (as Kafka)
    assert [(e.epoch, e.start_offset) for e in log.epochs.entries] == [(1, 0), (4, 8)]
    log.assign_epoch(2, 9)  # entries with a higher or equal epoch are contradicted too
    assert [(e.epoch, e.start_offset) for e in log.epochs.entries] == [(1, 0), (2, 9)]
