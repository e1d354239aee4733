"""Log compaction: latest value per key, tombstones, dirty ratio, atomic swaps."""

from __future__ import annotations

import os
import random

import pytest

from strom.protocol.compression import Compression
from strom.protocol.records import build_batch, build_control_batch
from strom.storage.cleaner import LogCleaner
from strom.storage.log import AppendOrigin, Log
from strom.storage.producer_state import DuplicateBatch

from .util import records_of

DAY = 86_400_000


def _put(log: Log, items, compression=Compression.NONE, ts: int = 1000) -> None:
    log.append(build_batch(items, compression=compression, timestamp=ts))


def _compacted(make_log, **kw) -> Log:
    props = dict(cleanup_policy="compact", segment_bytes=600, min_cleanable_dirty_ratio=0.01)
    props.update(kw)
    return make_log(**props)


def _latest(
    history: list[tuple[int, bytes, bytes | None]],
) -> dict[bytes, tuple[int, bytes | None]]:
    out: dict[bytes, tuple[int, bytes | None]] = {}
    for off, k, v in history:
        out[k] = (off, v)
    return out


def test_keeps_exactly_the_latest_value_per_key(make_log) -> None:
    log = _compacted(make_log)
    rng = random.Random(7)
    history = []
    for i in range(300):
        k = b"key-%d" % rng.randrange(12)
        v = b"value-%d" % i
        r = log.append(build_batch([(k, v)], timestamp=1000))
        history.append((r.first_offset, k, v))
    log.high_watermark = log.log_end_offset
    active_base = log.active_segment.base_offset
    stats = LogCleaner().clean(log, now_ms=2000)
    assert stats is not None and stats.records_out < stats.records_in
    after = records_of(log)
    cleaned = [(o, k, v) for o, k, v in after if o < active_base]
    # Below the active segment: one record per key, the latest one there, at its original
    # offset (the active segment is not in the offset map, so what it supersedes stays).
    latest_below = _latest([h for h in history if h[0] < active_base])
    assert cleaned == sorted((off, k, v) for k, (off, v) in latest_below.items())
    # The active segment is untouched.
    assert [h for h in after if h[0] >= active_base] == [h for h in history if h[0] >= active_base]
    # Reading the whole log and keeping the last value per key gives the same map as before.
    assert _latest(after) == _latest(history)
    assert log.log_end_offset == 300


def test_tombstones_stay_for_delete_retention_then_go(make_log) -> None:
    log = _compacted(make_log, delete_retention_ms=DAY)
    for i in range(20):
        _put(log, [(b"a", b"a%d" % i), (b"b", b"b%d" % i)])
    _put(log, [(b"a", None)])  # tombstone for a
    for i in range(20):
        _put(log, [(b"c", b"c%d" % i)])
    log.high_watermark = log.log_end_offset
    cleaner = LogCleaner()
    t0 = 10 * DAY
    assert cleaner.clean(log, now_ms=t0) is not None
    recs = records_of(log)
    keys = [(k, v) for _o, k, v in recs]
    assert (b"a", None) in keys  # the tombstone is kept...
    assert all(k != b"a" or v is None for k, v in keys)  # ...and every older value of a is gone
    assert (b"b", b"b19") in keys
    # More data so the cleaner has something dirty to do, before the retention passes.
    for i in range(20):
        _put(log, [(b"d", b"d%d" % i)])
    log.high_watermark = log.log_end_offset
    cleaner.clean(log, now_ms=t0 + DAY - 1)
    assert (b"a", None) in [(k, v) for _o, k, v in records_of(log)]
    # Once it has been clean for delete.retention.ms, it goes.
    for i in range(20):
        _put(log, [(b"e", b"e%d" % i)])
    log.high_watermark = log.log_end_offset
    stats = cleaner.clean(log, now_ms=t0 + DAY)
    assert stats is not None and stats.tombstones_dropped == 1
    assert all(k != b"a" for _o, k, _v in records_of(log))


def test_dirty_ratio_is_respected(make_log) -> None:
    log = _compacted(make_log, min_cleanable_dirty_ratio=0.5)
    for i in range(40):
        _put(log, [(b"k%d" % i, b"v" * 40)])
    log.roll()
    log.high_watermark = log.log_end_offset
    cleaner = LogCleaner()
    assert cleaner.clean(log, now_ms=1) is not None
    # Right after cleaning, a little new data is not enough to clean again.
    _put(log, [(b"k0", b"new")])
    log.roll()
    _put(log, [(b"k1", b"new")])
    log.high_watermark = log.log_end_offset
    rng = cleaner.cleanable_range(log, 1)
    assert 0 < rng.dirty_ratio < 0.5
    assert cleaner.needs_cleaning(log, 1) is None
    assert cleaner.clean(log, now_ms=1) is None
    assert cleaner.clean(log, now_ms=1, force=True) is not None


def test_never_touches_the_active_segment_or_above_the_high_watermark(make_log) -> None:
    log = _compacted(make_log, segment_bytes=10**6)
    for i in range(50):
        _put(log, [(b"same", b"%d" % i)])
    log.high_watermark = log.log_end_offset
    assert LogCleaner().clean(log, now_ms=1, force=True) is None  # a single active segment
    assert len(records_of(log)) == 50
    small = _compacted(make_log, name="small-0")
    for i in range(50):
        _put(small, [(b"same", b"%d" % i)])
    small.high_watermark = 0
    assert LogCleaner().clean(small, now_ms=1) is None
    assert len(records_of(small)) == 50


def test_partial_batches_keep_offsets_producer_and_compression(make_log) -> None:
    log = _compacted(make_log, segment_bytes=2000)
    items = [(b"k%d" % (i % 3), b"v%d" % i) for i in range(9)]
    log.append(
        build_batch(
            items,
            compression=Compression.LZ4,
            producer_id=42,
            producer_epoch=3,
            base_sequence=100,
            timestamp=5,
        )
    )
    _put(log, [(b"k0", b"newest")])
    log.roll()
    log.high_watermark = log.log_end_offset
    LogCleaner().clean(log, now_ms=10, force=True)
    recs = records_of(log)
    assert recs == [(7, b"k1", b"v7"), (8, b"k2", b"v8"), (9, b"k0", b"newest")]
    first = next(log.iter_batches())
    assert first.base_offset == 7 and first.compression == Compression.LZ4
    assert (first.producer_id, first.producer_epoch, first.base_sequence) == (42, 3, 107)
    assert first.crc_valid()


def test_keyless_records_are_dropped_and_reads_skip_empty_segments(make_log) -> None:
    log = make_log(segment_bytes=600)
    for i in range(30):
        _put(log, [(None if i < 10 else b"k", b"v%d" % i)])
    log.config = log.config.with_overrides({"cleanup.policy": "compact"})
    log.high_watermark = log.log_end_offset
    LogCleaner().clean(log, now_ms=1, force=True)
    recs = records_of(log)
    active_base = log.active_segment.base_offset
    below = [r for r in recs if r[0] < active_base]
    assert below == [] or all(k == b"k" for _o, k, _v in below)
    assert log.read(0, 1000).first_offset >= 10


def test_crash_before_commit_leaves_the_old_log(make_log, tmp_path) -> None:
    log = _compacted(make_log)
    for i in range(60):
        _put(log, [(b"k%d" % (i % 5), b"v%d" % i)])
    log.close()
    before = records_of(Log(str(tmp_path / "topic-0")))
    d = tmp_path / "topic-0"
    # A cleaning that died while writing its output.
    for ext in (".log", ".index", ".timeindex"):
        (d / f"{0:020d}{ext}.cleaned").write_bytes(b"partial")
    (d / f"{0:020d}.index.swap").write_bytes(b"partial")  # swap of indexes, log not committed
    log2 = Log(str(d), needs_recovery=True)
    assert records_of(log2) == before
    assert not [n for n in os.listdir(d) if n.endswith((".cleaned", ".swap"))]
    log2.close()


def test_crash_after_commit_completes_the_swap(make_log, tmp_path) -> None:
    d = tmp_path / "topic-0"
    log = _compacted(make_log)
    for i in range(60):
        _put(log, [(b"k%d" % (i % 5), b"v%d" % i)])
    log.high_watermark = log.log_end_offset
    segs = log.segments
    expected_latest = _latest(records_of(log))
    # Do a real cleaning, but stop right after the commit point (.swap in place).
    real = Log.replace_segments

    def crash_after_commit(self, old, new):
        from strom.storage.segment import CLEANED_SUFFIX, SWAP_SUFFIX

        new.rename_files(CLEANED_SUFFIX, SWAP_SUFFIX)
        old[0].rename_files("", ".deleted")  # part of the old files already gone
        raise KeyboardInterrupt("crash")

    Log.replace_segments = crash_after_commit
    try:
        LogCleaner().clean(log, now_ms=1, force=True)
    except KeyboardInterrupt:
        pass
    finally:
        Log.replace_segments = real
    assert any(n.endswith(".log.swap") for n in os.listdir(d))
    log2 = Log(str(d), needs_recovery=True)
    recs = records_of(log2)
    assert _latest(recs) == expected_latest
    assert [o for o, _k, _v in recs] == sorted(o for o, _k, _v in recs)
    assert not [n for n in os.listdir(d) if n.endswith((".swap", ".deleted"))]
    # The first group of segments became one cleaned segment.
    assert log2.segments[0].base_offset == segs[0].base_offset
    assert log2.segments[0].size < segs[0].size
    log2.close()


def test_cleaned_log_survives_reopen_and_recovery(tmp_path) -> None:
    from strom.storage.config import LogConfig

    config = LogConfig.from_props({"cleanup.policy": "compact", "segment.bytes": "600"})
    log = Log(str(tmp_path / "t-0"), config)
    for i in range(80):
        _put(log, [(b"k%d" % (i % 7), b"v%d" % i)])
    log.high_watermark = log.log_end_offset
    LogCleaner().clean(log, now_ms=1, force=True)
    after = records_of(log)
    log.close()
    for needs_recovery in (False, True):
        again = Log(str(tmp_path / "t-0"), config, needs_recovery=needs_recovery)
        assert records_of(again) == after
        again.close()


def _txn(log: Log, pid: int, items, seq: int) -> None:
    log.append(
        build_batch(items, producer_id=pid, producer_epoch=0, base_sequence=seq, transactional=True)
    )


def _end(log: Log, pid: int, commit: bool) -> None:
    log.append(
        build_control_batch(1 if commit else 0, producer_id=pid, producer_epoch=0),
        origin=AppendOrigin.COORDINATOR,
    )


def test_transactions_aborted_data_goes_open_ones_block(make_log) -> None:
    """An aborted value never replaces a key's committed one, and goes itself; an open
    transaction stops cleaning at its first offset (it may still abort)."""
    log = _compacted(make_log)
    _put(log, [(b"k", b"committed")])  # 0
    _txn(log, 7, [(b"k", b"aborted")], 0)  # 1
    _end(log, 7, commit=False)  # 2
    for i in range(40):
        _put(log, [(b"filler-%d" % i, b"x" * 40)])  # 3..42, several segments
    log.high_watermark = log.log_end_offset
    LogCleaner().clean(log, now_ms=2000, force=True)
    after = records_of(log)
    assert (0, b"k", b"committed") in after
    assert all(v != b"aborted" for _, _, v in after)
    assert log.aborted_transactions(0, log.log_end_offset)  # its marker and entry stay

    log2 = _compacted(make_log, name="other-0")
    _put(log2, [(b"k", b"v1")])  # 0
    _txn(log2, 9, [(b"k", b"open")], 0)  # 1: never ends
    for i in range(40):
        _put(log2, [(b"k", b"v%d" % (i + 2))])  # 2..41
    log2.high_watermark = log2.log_end_offset
    LogCleaner().clean(log2, now_ms=2000, force=True)
    kept = records_of(log2)
    assert (0, b"k", b"v1") in kept and (1, b"k", b"open") in kept  # below the LSO only


def _markers(log: Log) -> list[int]:
    return [b.base_offset for b in log.iter_batches() if b.is_control]


def test_markers_go_after_delete_retention_once_their_transaction_is_gone(make_log) -> None:
    """An abort marker (its data is dropped) and a commit marker whose records were all
    superseded stay for delete.retention.ms after they become clean, then go with their
    aborted-transaction entry; a commit marker whose records survive stays."""
    log = _compacted(make_log, delete_retention_ms=DAY)
    _txn(log, 7, [(b"a", b"aborted")], 0)  # 0
    _end(log, 7, commit=False)  # 1
    _txn(log, 8, [(b"b", b"superseded")], 0)  # 2
    _end(log, 8, commit=True)  # 3
    _txn(log, 9, [(b"c", b"survives")], 0)  # 4
    _end(log, 9, commit=True)  # 5
    _put(log, [(b"b", b"newer")])  # 6
    # later transactions of 7 and 8, so the first ones' batches are not their last
    _txn(log, 7, [(b"d", b"later")], 1)  # 7
    _end(log, 7, commit=True)  # 8
    _txn(log, 8, [(b"e", b"later")], 1)  # 9
    _end(log, 8, commit=True)  # 10
    for i in range(40):
        _put(log, [(b"filler-%d" % i, b"x" * 40)])  # several segments
    log.high_watermark = log.log_end_offset
    cleaner = LogCleaner()
    cleaner.clean(log, now_ms=2000, force=True)
    assert _markers(log) == [1, 3, 5, 8, 10]  # clean since 2000: kept for a day
    assert [a.last_offset for a in log.aborted_transactions(0, log.log_end_offset)] == [1]
    cleaner.clean(log, now_ms=2000 + DAY // 2, force=True)
    assert _markers(log) == [1, 3, 5, 8, 10]
    cleaner.clean(log, now_ms=2000 + DAY + 1, force=True)
    assert _markers(log) == [5, 8, 10]
    assert log.aborted_transactions(0, log.log_end_offset) == []
    kept = records_of(log)
    assert (4, b"c", b"survives") in kept and (6, b"b", b"newer") in kept
    assert all(v not in (b"aborted", b"superseded") for _, _, v in kept)


def test_a_producers_last_batch_stays_emptied(make_log, tmp_path) -> None:
    """When compaction removes every record of an idempotent producer's newest batch, the
    batch stays as an empty header: a log rebuilt without its producer snapshots still knows
    the producer's epoch and last sequence (a retry is a duplicate, the next one follows)."""
    log = _compacted(make_log)
    log.append(build_batch([(b"k", b"v0")], producer_id=5, producer_epoch=2, base_sequence=0))
    log.append(build_batch([(b"k", b"v1")], producer_id=5, producer_epoch=2, base_sequence=1))
    _put(log, [(b"k", b"plain")])  # 2: supersedes both of the producer's records
    for i in range(40):
        _put(log, [(b"filler-%d" % i, b"x" * 40)])
    log.high_watermark = log.log_end_offset
    LogCleaner().clean(log, now_ms=2000, force=True)
    batches = [b for b in log.iter_batches() if b.producer_id == 5]
    assert [(b.base_offset, b.records_count, b.base_sequence) for b in batches] == [(1, 0, 1)]
    assert (2, b"k", b"plain") in records_of(log)
    end = log.log_end_offset
    log.close()
    for name in os.listdir(log.dir):
        if name.endswith(".snapshot"):
            os.remove(os.path.join(log.dir, name))
    again = Log(log.dir, log.config, needs_recovery=True)
    try:
        assert again.log_end_offset == end  # loads the log and its producer state
        assert again.producers.producers[5].epoch == 2
        assert again.producers.producers[5].last_seq == 1
        with pytest.raises(DuplicateBatch) as dup:
            again.append(
                build_batch([(b"k", b"v1")], producer_id=5, producer_epoch=2, base_sequence=1)
            )
        assert (dup.value.batch.first_offset, dup.value.batch.last_offset) == (1, 1)
        nxt = again.append(
            build_batch([(b"k", b"v2")], producer_id=5, producer_epoch=2, base_sequence=2)
        )
        assert nxt.first_offset == end
    finally:
        again.close()
