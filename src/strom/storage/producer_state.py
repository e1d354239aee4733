"""Idempotent producer state of one partition: epochs, last five batch sequences, snapshots."""

from __future__ import annotations

import logging
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from strom.protocol.errors import CorruptRecordError, ErrorCode, KafkaError
from strom.protocol.records import CONTROL_TYPE_ABORT
from strom.storage.files import atomic_write

if TYPE_CHECKING:
    from strom.protocol.records import BatchView

log = logging.getLogger(__name__)

NO_PRODUCER_ID = -1
NO_EPOCH = -1
NO_SEQUENCE = -1
MAX_CACHED_BATCHES = 5  # max.in.flight.requests.per.connection an idempotent producer may use
INT_MAX = (1 << 31) - 1
SNAPSHOT_SUFFIX = ".snapshot"


@dataclass(slots=True)
class BatchInfo:
    """What producer-state tracking needs to know about one appended batch."""

    base_offset: int
    last_offset: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    last_sequence: int
    is_transactional: bool
    is_control: bool
    max_timestamp: int
    records_count: int
    size: int
    is_abort: bool = False  # a control batch holding an abort marker


@dataclass(slots=True)
class CachedBatch:
    """One recent batch of a producer: enough to spot a retry and answer it again."""

    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    max_timestamp: int


@dataclass
class ProducerEntry:
    producer_id: int
    epoch: int = NO_EPOCH
    batches: deque[CachedBatch] = field(default_factory=lambda: deque(maxlen=MAX_CACHED_BATCHES))
    last_timestamp: int = -1
    coordinator_epoch: int = -1
    current_txn_first_offset: int = -1  # first offset of the open transaction, -1 if none

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> CachedBatch | None:
        if epoch != self.epoch:
            return None
        for b in self.batches:
            if b.first_seq == first_seq and b.last_seq == last_seq:
                return b
        return None


class DuplicateBatch(Exception):  # noqa: N818 - an outcome, not a failure
    """A retried batch already in the log: answered with its first offsets, not written again."""

    def __init__(self, batch: CachedBatch) -> None:
        super().__init__(f"duplicate of offsets {batch.first_offset}..{batch.last_offset}")
        self.batch = batch


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (last_seq == INT_MAX and next_seq == 0)


class ProducerStateManager:
    """Per-partition producer state, checked before an append and updated after it.

    The log owns it (strom.storage.log.Log.producers): loaded with the log, snapshotted at
    each segment roll and at close, truncated with the log, updated by every append."""

    def __init__(self, directory: str, name: str = "") -> None:
        self.dir = directory
        self.name = name or os.path.basename(directory)
        self.producers: dict[int, ProducerEntry] = {}
        self.last_snapshot_offset = -1
        # open transactions: producer id -> first offset; their minimum is kept, not searched
        self._ongoing: dict[int, int] = {}
        self._first_unstable: int | None = None
        #: told of each transaction an abort marker ends: (producer id, first offset, marker
        #: offset); the log keeps them in its aborted-transaction indexes
        self.on_abort: Callable[[int, int, int], None] | None = None

    # -- the produce path ----------------------------------------------------------------------

    def check(self, batches: list[BatchInfo]) -> None:
        """Refuse stale epochs and sequence gaps; raise DuplicateBatch for a retried batch.

        Called by Log.append with the batches' final offsets just before they are written.
        """
        # (epoch, last sequence) per producer as this append's earlier batches leave them
        seen: dict[int, tuple[int, int]] = {}
        for b in batches:
            if b.producer_id == NO_PRODUCER_ID or b.is_control:
                continue
            entry = self.producers.get(b.producer_id)
            if entry is None and b.producer_id not in seen:
                seen[b.producer_id] = (b.producer_epoch, b.last_sequence)
                continue  # unknown producer: any sequence is accepted, as Kafka does
            epoch, last_seq = seen.get(b.producer_id) or (entry.epoch, entry.last_seq)
            if b.producer_epoch < epoch:
                raise KafkaError(
                    f"producer {b.producer_id} epoch {b.producer_epoch} is older than "
                    f"{epoch} on {self.name}",
                    ErrorCode.INVALID_PRODUCER_EPOCH,
                )
            if b.base_sequence == NO_SEQUENCE:
                continue
            if entry is not None and b.producer_id not in seen:
                dup = entry.find_duplicate(b.producer_epoch, b.base_sequence, b.last_sequence)
                if dup is not None:
                    raise DuplicateBatch(dup)
            if b.producer_epoch != epoch:
                if b.base_sequence != 0 and epoch != NO_EPOCH:
                    raise KafkaError(
                        f"producer {b.producer_id} starts epoch {b.producer_epoch} at sequence "
                        f"{b.base_sequence}, not 0, on {self.name}",
                        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    )
            elif last_seq != NO_SEQUENCE and not _in_sequence(last_seq, b.base_sequence):
                raise KafkaError(
                    f"producer {b.producer_id} sent sequence {b.base_sequence} after "
                    f"{last_seq} on {self.name}",
                    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                )
            seen[b.producer_id] = (b.producer_epoch, b.last_sequence)

    def update(self, batches: list[BatchInfo]) -> None:
        """Record appended batches (client writes, replication and log loading alike)."""
        for b in batches:
            if b.producer_id == NO_PRODUCER_ID:
                continue
            entry = self.producers.get(b.producer_id)
            if entry is None:
                entry = self.producers[b.producer_id] = ProducerEntry(b.producer_id)
            if b.producer_epoch != entry.epoch:
                entry.epoch = b.producer_epoch
                entry.batches.clear()
            entry.last_timestamp = max(entry.last_timestamp, b.max_timestamp)
            if b.is_control:
                first = entry.current_txn_first_offset
                if first >= 0:
                    entry.current_txn_first_offset = -1
                    self._txn_ended(b.producer_id)
                    if b.is_abort and self.on_abort is not None:
                        self.on_abort(b.producer_id, first, b.base_offset)
                continue
            if b.is_transactional and entry.current_txn_first_offset < 0:
                entry.current_txn_first_offset = b.base_offset
                self._txn_started(b.producer_id, b.base_offset)
            if b.base_sequence != NO_SEQUENCE:
                entry.batches.append(
                    CachedBatch(
                        b.base_sequence,
                        b.last_sequence,
                        b.base_offset,
                        b.last_offset,
                        b.max_timestamp,
                    )
                )

    def _txn_started(self, producer_id: int, offset: int) -> None:
        self._ongoing[producer_id] = offset
        if self._first_unstable is None or offset < self._first_unstable:
            self._first_unstable = offset

    def _txn_ended(self, producer_id: int) -> None:
        offset = self._ongoing.pop(producer_id, None)
        if offset is not None and offset == self._first_unstable:
            self._first_unstable = min(self._ongoing.values()) if self._ongoing else None

    def _reindex_ongoing(self) -> None:
        self._ongoing = {
            pid: e.current_txn_first_offset
            for pid, e in self.producers.items()
            if e.current_txn_first_offset >= 0
        }
        self._first_unstable = min(self._ongoing.values()) if self._ongoing else None

    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest open transaction, if any (bounds the last stable
        offset); kept up to date by every change, not searched for."""
        return self._first_unstable

    def expire(self, now_ms: int, expiration_ms: int) -> int:
        """Forget producers idle longer than producer.id.expiration.ms with no open txn."""
        gone = [
            pid
            for pid, e in self.producers.items()
            if e.current_txn_first_offset < 0 and now_ms - e.last_timestamp > expiration_ms
        ]
        for pid in gone:
            del self.producers[pid]
        return len(gone)

    def truncate(self) -> None:
        """Forget everything and every snapshot (the log was emptied)."""
        self.producers.clear()
        self._reindex_ongoing()
        for path in self._snapshot_files():
            os.unlink(path)
        self.last_snapshot_offset = -1

    def delete_snapshots_after(self, offset: int) -> None:
        """Remove snapshots taken past `offset` (the log was truncated to it)."""
        for path in self._snapshot_files():
            if _snapshot_offset(path) > offset:
                os.unlink(path)
        if self.last_snapshot_offset > offset:
            self.last_snapshot_offset = -1

    # -- persistence ---------------------------------------------------------------------------

    def _snapshot_files(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(os.path.join(self.dir, n) for n in names if n.endswith(SNAPSHOT_SUFFIX))

    def write_snapshot(self, offset: int, sync: bool = True) -> None:
        """Persist the state as of `offset` (the log end offset) atomically; keep one older.
        Without `sync` the file is not fsynced (taken at a segment roll on the append path:
        a snapshot lost in a crash only means a longer replay from an older one)."""
        if offset == self.last_snapshot_offset:
            return
        state = [
            [
                e.producer_id,
                e.epoch,
                e.last_timestamp,
                e.coordinator_epoch,
                e.current_txn_first_offset,
                [
                    [c.first_seq, c.last_seq, c.first_offset, c.last_offset, c.max_timestamp]
                    for c in e.batches
                ],
            ]
            for e in self.producers.values()
        ]
        import json  # here, not at the top: `strom serve` starts without it

        body = json.dumps({"offset": offset, "producers": state}, separators=(",", ":")).encode()
        data = b"%08x\n" % zlib.crc32(body) + body
        path = os.path.join(self.dir, f"{offset:020d}{SNAPSHOT_SUFFIX}")
        atomic_write(path, data, fsync=sync, fsync_dir=sync)
        self.last_snapshot_offset = offset
        for old in self._snapshot_files()[:-2]:
            os.unlink(old)

    def _read_snapshot(self, path: str) -> tuple[int, dict[int, ProducerEntry]] | None:
        try:
            with open(path, "rb") as f:
                raw = f.read()
            crc, body = raw.split(b"\n", 1)
            if int(crc, 16) != zlib.crc32(body):
                raise ValueError("checksum mismatch")
            import json

            doc = json.loads(body)
            producers = {}
            for pid, epoch, ts, coord, txn, batches in doc["producers"]:
                e = ProducerEntry(
                    pid,
                    epoch,
                    last_timestamp=ts,
                    coordinator_epoch=coord,
                    current_txn_first_offset=txn,
                )
                e.batches.extend(CachedBatch(*b) for b in batches)
                producers[pid] = e
            return int(doc["offset"]), producers
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring unreadable producer snapshot %s: %s", path, e)
            return None

    def load(
        self, log_start: int, log_end: int, batches_from: Callable[[int], Iterable[BatchView]]
    ) -> None:
        """Rebuild from the newest good snapshot in [log_start, log_end], then the batches
        after it (`batches_from(offset)` yields the log's batches from an offset on)."""
        start = log_start
        self.producers = {}
        self.last_snapshot_offset = -1
        for path in reversed(self._snapshot_files()):
            snap = self._read_snapshot(path)
            if snap is not None and log_start <= snap[0] <= log_end:
                start, self.producers = snap
                if snap[0] == log_end:
                    self.last_snapshot_offset = log_end
                break
        self._reindex_ongoing()
        replayed = 0
        for batch in batches_from(start):
            self.update([batch_info(batch)])
            replayed += 1
        if replayed:
            log.info(
                "%s: producer state rebuilt from offset %d (%d batches)", self.name, start, replayed
            )


def _snapshot_offset(path: str) -> int:
    name = os.path.basename(path)
    try:
        return int(name[: -len(SNAPSHOT_SUFFIX)])
    except ValueError:
        return -1


def batch_info(batch: BatchView) -> BatchInfo:
    """The BatchInfo of a stored batch (as the log reports it for appends)."""
    return BatchInfo(
        base_offset=batch.base_offset,
        last_offset=batch.last_offset,
        producer_id=batch.producer_id,
        producer_epoch=batch.producer_epoch,
        base_sequence=batch.base_sequence,
        last_sequence=batch.last_sequence,
        is_transactional=batch.is_transactional,
        is_control=batch.is_control,
        max_timestamp=batch.max_timestamp,
        records_count=batch.records_count,
        size=batch.size,
        is_abort=is_abort_marker(batch),
    )


def is_abort_marker(batch: BatchView) -> bool:
    """A control batch whose marker aborts its producer's transaction."""
    if not batch.is_control:
        return False
    try:
        control = batch.control_record()
    except CorruptRecordError:
        return False
    return control is not None and control.type == CONTROL_TYPE_ABORT
