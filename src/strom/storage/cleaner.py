"""Log compaction: keep the latest record per key, drop expired tombstones, swap atomically."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from strom.protocol.errors import CorruptRecordError
from strom.protocol.records import HEADER_SIZE, LOG_OVERHEAD, BatchView, Record, build_batch
from strom.storage.checkpoints import (
    CLEANER_CHECKPOINT,
    CheckpointError,
    CleanerCheckpoint,
    CleanerPass,
)
from strom.storage.log import Log
from strom.storage.segment import CLEANED_SUFFIX, H_LENGTH, HEADER, INT32_MAX, Segment
from strom.storage.txn_index import AbortedTxn

logger = logging.getLogger(__name__)

_READ_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CleanableRange:
    """Where a compacted log stands: its clean and dirty bytes and the dirty offsets."""

    first_dirty_offset: int
    first_uncleanable_offset: int  # a segment boundary; nothing at or after it is touched
    clean_bytes: int
    dirty_bytes: int
    must_clean: bool  # max.compaction.lag.ms has passed for the oldest dirty data

    @property
    def dirty_ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0


@dataclass(frozen=True, slots=True)
class CleanerStats:
    """What one cleaning pass over a log did."""

    log: str
    first_dirty_offset: int
    end_offset: int
    segments_in: int
    segments_out: int
    bytes_in: int
    bytes_out: int
    records_in: int
    records_out: int
    tombstones_dropped: int
    seconds: float


class _Aborted(Exception):
    """The log changed under the cleaner (truncated, deleted, retention): give up this pass."""


def _read_batches(seg: Segment, end: int | None = None) -> Iterator[memoryview]:
    """Every whole batch of a segment's log file, read sequentially in large chunks."""
    size = seg.size if end is None else end
    pos = 0
    with seg.file as fd:
        while pos + HEADER_SIZE <= size:
            chunk = os.pread(fd, min(max(_READ_CHUNK, 0), size - pos), pos)
            if len(chunk) < HEADER_SIZE:
                return
            view = memoryview(chunk)
            off = 0
            while off + HEADER_SIZE <= len(view):
                bsize = HEADER.unpack_from(view, off)[H_LENGTH] + LOG_OVERHEAD
                if bsize < HEADER_SIZE:
                    return
                if off + bsize > len(view):
                    if off == 0:  # one batch bigger than the chunk
                        data = os.pread(fd, bsize, pos)
                        if len(data) < bsize:
                            return
                        yield memoryview(data)
                        off = bsize
                    break
                yield view[off : off + bsize]
                off += bsize
            if off == 0:
                return
            pos += off


class LogCleaner:
    """Compacts logs whose cleanup.policy includes compact.

    The dirty part of a log (from the first dirty offset to the first uncleanable one: the
    active segment, the high watermark, min.compaction.lag.ms) is scanned for the latest
    offset of every key; then every segment below the first uncleanable offset is rewritten
    keeping, per key, only records at or after that offset. Tombstones (null values) are
    kept until they have been in the clean part for delete.retention.ms. Groups of cleaned
    segments replace the originals through `.cleaned` -> `.swap` -> final renames, so a crash
    at any point leaves a readable log (see Log._clean_directory).
    """

    def __init__(self, max_map_entries: int = 4_000_000) -> None:
        self.max_map_entries = max_map_entries

    # -- state -------------------------------------------------------------------------------

    def _passes(self, log: Log) -> list[CleanerPass]:
        if log.cleaner_passes is None:
            try:
                log.cleaner_passes = CleanerCheckpoint(
                    os.path.join(log.dir, CLEANER_CHECKPOINT)
                ).read()
            except CheckpointError as e:
                logger.warning("%s: unreadable cleaner checkpoint, starting over: %s", log.name, e)
                log.cleaner_passes = []
        return log.cleaner_passes

    def first_dirty_offset(self, log: Log) -> int:
        """Where the part of the log not yet compacted starts."""
        passes = self._passes(log)
        last = passes[-1].end_offset if passes else 0
        return max(last, log.log_start_offset)

    # -- deciding ----------------------------------------------------------------------------

    def cleanable_range(self, log: Log, now_ms: int) -> CleanableRange:
        """The clean and dirty extents of `log` as of `now_ms`."""
        segments = log.segments
        config = log.config
        first_dirty = self.first_dirty_offset(log)
        uncleanable = min(segments[-1].base_offset, log.high_watermark)
        unstable = log.producers.first_unstable_offset()
        if unstable is not None:
            # an open transaction may still abort: nothing from its first offset on is
            # cleaned (a key's last committed value must not go for an uncommitted one)
            uncleanable = min(uncleanable, unstable)
        if config.min_compaction_lag_ms > 0:
            for seg in segments[:-1]:
                if seg.size and seg.largest_timestamp() > now_ms - config.min_compaction_lag_ms:
                    uncleanable = min(uncleanable, seg.base_offset)
                    break
        # Align down to a segment boundary: only whole segments are cleaned.
        boundary = segments[0].base_offset
        for nxt in segments[1:]:
            if nxt.base_offset <= uncleanable:
                boundary = nxt.base_offset
            else:
                break
        clean_bytes = dirty_bytes = 0
        oldest_dirty_ts = -1
        for i, seg in enumerate(segments[:-1]):
            end = segments[i + 1].base_offset
            if end > boundary:
                break
            if end <= first_dirty:
                clean_bytes += seg.size
            else:
                dirty_bytes += seg.size
                if oldest_dirty_ts < 0:
                    oldest_dirty_ts = self._first_timestamp(seg)
        must = (
            dirty_bytes > 0
            and oldest_dirty_ts >= 0
            and now_ms - oldest_dirty_ts > config.max_compaction_lag_ms
        )
        return CleanableRange(first_dirty, boundary, clean_bytes, dirty_bytes, must)

    @staticmethod
    def _first_timestamp(seg: Segment) -> int:
        for _pos, h in seg.batches():
            return h[8]
        return -1

    def needs_cleaning(self, log: Log, now_ms: int) -> CleanableRange | None:
        """The range to clean if `log` is compacted and dirty enough, else None."""
        if not log.config.compact:
            return None
        rng = self.cleanable_range(log, now_ms)
        if rng.dirty_bytes <= 0:
            return None
        if rng.must_clean or rng.dirty_ratio >= log.config.min_cleanable_dirty_ratio:
            return rng
        return None

    # -- cleaning ----------------------------------------------------------------------------

    def clean(
        self, log: Log, now_ms: int | None = None, force: bool = False
    ) -> CleanerStats | None:
        """Compact `log` if it needs it (or if `force`, whatever its dirty ratio)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if force:
            rng = self.cleanable_range(log, now)
            if rng.dirty_bytes <= 0 and rng.first_uncleanable_offset <= log.log_start_offset:
                return None
        else:
            rng = self.needs_cleaning(log, now)
            if rng is None:
                return None
        try:
            return self._clean(log, rng, now)
        except _Aborted as e:
            logger.info("%s: cleaning abandoned: %s", log.name, e)
            return None

    def _clean(self, log: Log, rng: CleanableRange, now: int) -> CleanerStats:
        t0 = time.monotonic()
        config = log.config
        segments = log.segments
        end = rng.first_uncleanable_offset
        to_clean = [s for i, s in enumerate(segments[:-1]) if segments[i + 1].base_offset <= end]
        if not to_clean:
            raise _Aborted("nothing below the first uncleanable offset")
        # Aborted transactions' records are dropped, and never count as a key's latest.
        aborted = _AbortedRanges(log.aborted_transactions(to_clean[0].base_offset, end))
        # 1. The latest offset of every key in the dirty part.
        latest: dict[bytes, int] = {}
        map_end = end
        for i, seg in enumerate(to_clean):
            seg_end = segments[i + 1].base_offset
            if seg_end <= rng.first_dirty_offset:
                continue
            if len(latest) >= self.max_map_entries and latest:
                map_end = seg.base_offset  # the map is full: clean up to here this time
                break
            for batch in self._batches(log, seg):
                if batch.is_control or aborted.holds(batch):
                    continue
                for record in self._records(log, batch):
                    if record.key is not None and record.offset >= rng.first_dirty_offset:
                        latest[record.key] = record.offset
        to_clean = [s for i, s in enumerate(to_clean) if segments[i + 1].base_offset <= map_end]
        # 2. When tombstones became clean: offsets below a pass's end were clean by its time.
        passes = self._passes(log)
        retention = config.delete_retention_ms

        def tombstone_expired(offset: int) -> bool:
            clean_since = now
            for p in passes:
                if offset < p.end_offset:
                    clean_since = p.time_ms
                    break
            return clean_since + retention <= now

        # 3. Rewrite groups of segments, in offset order (a transaction's data before its
        # marker, across groups too).
        state = _PassState(latest, tombstone_expired, aborted, _last_batches(log))
        for group in self._groups(to_clean, segments, config.segment_bytes):
            self._clean_group(log, group, state)
        stats = state.stats
        # 4. Remember this pass.
        expired = [p for p in passes if p.time_ms + retention <= now]
        kept = [p for p in passes if p.time_ms + retention > now]
        new_passes = ([expired[-1]] if expired else []) + kept
        if map_end > (new_passes[-1].end_offset if new_passes else -1):
            new_passes.append(CleanerPass(map_end, now))
        new_passes.sort(key=lambda p: p.end_offset)
        try:
            CleanerCheckpoint(os.path.join(log.dir, CLEANER_CHECKPOINT)).write(new_passes)
        except CheckpointError as e:
            logger.warning("%s: cannot write cleaner checkpoint: %s", log.name, e)
        log.cleaner_passes = new_passes
        result = CleanerStats(
            log.name,
            rng.first_dirty_offset,
            map_end,
            len(to_clean),
            stats[5],
            stats[0],
            stats[1],
            stats[2],
            stats[3],
            stats[4],
            time.monotonic() - t0,
        )
        logger.info(
            "%s: cleaned offsets up to %d: %d segment(s) -> %d, %d -> %d bytes, "
            "%d -> %d records, %d tombstone(s) dropped, %.3f s",
            log.name,
            map_end,
            result.segments_in,
            result.segments_out,
            result.bytes_in,
            result.bytes_out,
            result.records_in,
            result.records_out,
            result.tombstones_dropped,
            result.seconds,
        )
        return result

    @staticmethod
    def _groups(
        to_clean: list[Segment], segments: list[Segment], max_bytes: int
    ) -> Iterator[list[Segment]]:
        """Consecutive segments whose sizes add up to at most segment.bytes and whose offsets
        fit one segment's relative offsets."""
        group: list[Segment] = []
        group_size = 0
        for i, seg in enumerate(to_clean):
            seg_end = segments[i + 1].base_offset
            if group and (
                group_size + seg.size > max_bytes or seg_end - 1 - group[0].base_offset > INT32_MAX
            ):
                yield group
                group, group_size = [], 0
            group.append(seg)
            group_size += seg.size
        if group:
            yield group

    def _batches(self, log: Log, seg: Segment) -> Iterator[BatchView]:
        try:
            for data in _read_batches(seg):
                # the cleaner runs in a worker thread beside the event loop: hand over the
                # interpreter between batches, so the loop never waits for a forced switch
                time.sleep(0)
                yield BatchView(data)
        except FileNotFoundError as e:
            raise _Aborted(f"segment {seg.base_offset} went away") from e

    @staticmethod
    def _records(log: Log, batch: BatchView) -> list[Record]:
        try:
            return list(batch.records())
        except CorruptRecordError as e:
            logger.warning(
                "%s: undecodable batch at offset %d kept as is: %s", log.name, batch.base_offset, e
            )
            return []

    def _clean_group(self, log: Log, group: list[Segment], state: _PassState) -> None:
        stats = state.stats
        new = log.new_segment_files(group[0].base_offset, CLEANED_SUFFIX)
        try:
            for seg in group:
                dropped_markers: set[int] = set()
                for batch in self._batches(log, seg):
                    stats[0] += batch.size
                    if batch.is_control:
                        if state.marker_removable(batch):
                            dropped_markers.add(batch.base_offset)
                        else:
                            self._write(new, batch.raw())
                        continue
                    if state.aborted.holds(batch):
                        stats[2] += batch.records_count  # in, never out
                        self._keep_header_if_last(new, batch, state)
                        continue
                    records = self._records(log, batch)
                    if not records and batch.records_count:
                        self._write(new, batch.raw())  # undecodable: keep, never lose data
                        state.retained(batch)
                        continue
                    stats[2] += len(records)
                    keep = state.survivors(records)
                    stats[3] += len(keep)
                    if len(keep) == len(records):
                        self._write(new, batch.raw())
                        state.retained(batch)
                    elif keep:
                        for data in self._rebuild(batch, keep):
                            self._write(new, memoryview(data))
                        state.retained(batch)
                    else:
                        self._keep_header_if_last(new, batch, state)
                # aborted transactions stay indexed while their markers do
                for entry in seg.txn_index.entries():
                    if entry.last_offset not in dropped_markers:
                        new.txn_index.append(entry)
            new.seal()
            new.flush()
            stats[1] += new.size
        except BaseException:
            new.delete_files()
            raise
        if not log.replace_segments(group, new):
            new.delete_files()
            raise _Aborted("segments changed during cleaning")
        stats[5] += 1

    def _keep_header_if_last(self, new: Segment, batch: BatchView, state: _PassState) -> None:
        """A producer's last batch stays, emptied, when all its records go: rebuilding the
        producer state from the log must still find its epoch and last sequence."""
        if batch.last_offset in state.last_batches:
            self._write(new, memoryview(batch.emptied()))
            state.retained(batch)

    @staticmethod
    def _write(seg: Segment, data: memoryview) -> None:
        h = HEADER.unpack_from(data, 0)
        seg.append(data, [(h[0] + h[6], h[8], h[H_LENGTH] + LOG_OVERHEAD)])

    @staticmethod
    def _rebuild(batch: BatchView, keep: list[Record]) -> Iterator[bytes]:
        """New batches holding `keep`, with their original offsets: one batch per run of
        consecutive offsets (build_batch numbers records from base_offset)."""
        base = batch.base_offset
        seq = batch.base_sequence
        log_append = batch.timestamp_type == 1
        run: list[Record] = []
        for r in keep:
            if run and r.offset != run[-1].offset + 1:
                yield LogCleaner._encode(batch, run, base, seq, log_append)
                run = []
            run.append(r)
        if run:
            yield LogCleaner._encode(batch, run, base, seq, log_append)

    @staticmethod
    def _encode(
        batch: BatchView, run: list[Record], base: int, seq: int, log_append: bool
    ) -> bytes:
        first = run[0].offset
        return build_batch(
            run,
            base_offset=first,
            compression=batch.compression,
            timestamp=batch.max_timestamp if log_append else None,
            timestamp_type=1 if log_append else 0,
            producer_id=batch.producer_id,
            producer_epoch=batch.producer_epoch,
            base_sequence=-1 if seq < 0 else (seq + first - base) & 0x7FFFFFFF,
            partition_leader_epoch=batch.partition_leader_epoch,
            transactional=batch.is_transactional,
        )


def _last_batches(log: Log) -> set[int]:
    """The last offsets of each producer's newest batch (the producer state, as of now)."""
    return {
        entry.batches[-1].last_offset
        for entry in list(log.producers.producers.values())  # list(): the loop may add some
        if entry.batches
    }


@dataclass
class _PassState:
    """What one cleaning pass knows while it rewrites the groups in offset order."""

    latest: dict[bytes, int]  # key -> offset of its newest record
    expired: Callable[[int], bool]  # offset -> clean for longer than delete.retention.ms
    aborted: _AbortedRanges
    last_batches: set[int]
    #: producer id -> whether its current transaction kept any batch so far
    txn_kept: dict[int, bool] = field(default_factory=dict)
    #: bytes in/out, records in/out, tombstones dropped, groups
    stats: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0, 0])

    def survivors(self, records: list[Record]) -> list[Record]:
        """The records of one batch that compaction keeps."""
        keep: list[Record] = []
        for r in records:
            key = r.key
            if key is None:
                continue
            newest = self.latest.get(key)
            if newest is not None and r.offset < newest:
                continue
            if r.value is None and self.expired(r.offset):
                self.stats[4] += 1
                continue
            keep.append(r)
        return keep

    def retained(self, batch: BatchView) -> None:
        if batch.is_transactional:
            self.txn_kept[batch.producer_id] = True

    def marker_removable(self, batch: BatchView) -> bool:
        """A transaction marker goes once none of its transaction's batches is left and it
        has been clean for delete.retention.ms (as a tombstone does)."""
        kept = self.txn_kept.pop(batch.producer_id, False)
        return not kept and self.expired(batch.base_offset)


class _AbortedRanges:
    """The offsets of aborted transactions, by producer: their batches are dropped."""

    def __init__(self, aborted: list[AbortedTxn]) -> None:
        self._ranges: dict[int, list[tuple[int, int]]] = {}
        for a in aborted:
            self._ranges.setdefault(a.producer_id, []).append((a.first_offset, a.last_offset))

    def holds(self, batch: BatchView) -> bool:
        if not self._ranges or not batch.is_transactional:
            return False
        ranges = self._ranges.get(batch.producer_id)
        offset = batch.base_offset
        return ranges is not None and any(first <= offset < last for first, last in ranges)
