"""One partition's log: append, read(offset, max_bytes), roll, truncate, retention, recover."""

from __future__ import annotations

import bisect
import enum
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from strom.protocol.errors import CorruptRecordError, ErrorCode, KafkaError
from strom.protocol.records import HEADER_SIZE, LOG_OVERHEAD, BatchView
from strom.storage.checkpoints import (
    CLEANER_CHECKPOINT,
    LEADER_EPOCH_CHECKPOINT,
    CheckpointError,
    CleanerCheckpoint,
    CleanerPass,
    EpochEntry,
    LeaderEpochCheckpoint,
)
from strom.storage.config import LogConfig
from strom.storage.files import CachedFile, FileCache, fsync_dir
from strom.storage.producer_state import BatchInfo, ProducerStateManager, is_abort_marker
from strom.storage.segment import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    H_ATTRS,
    H_BASE,
    H_COUNT,
    H_DELTA,
    H_EPOCH,
    H_LENGTH,
    H_MAX_TS,
    H_PEPOCH,
    H_PID,
    H_SEQ,
    HEADER,
    INDEX_SUFFIX,
    INT32_MAX,
    LOG_SUFFIX,
    NO_TIMESTAMP,
    SWAP_SUFFIX,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
    IndexCache,
    Segment,
    parse_base_offset,
    pread_exact,
    scan_headers,
)
from strom.storage.txn_index import AbortedTxn

logger = logging.getLogger(__name__)

#: ListOffsets special timestamps.
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1

_TRANSACTIONAL = 0x10
_CONTROL = 0x20
_INT64_MAX = (1 << 63) - 1


class AppendOrigin(enum.Enum):
    """Who is appending: decides offset assignment and how strict validation is."""

    CLIENT = "client"  # a producer: offsets assigned, every client rule checked
    COORDINATOR = "coordinator"  # the broker's own writers: offsets assigned, control allowed
    REPLICATION = "replication"  # a follower copying the leader: offsets kept as they are


@dataclass(slots=True)
class AppendResult:
    """The offsets an append got, and what a Produce response reports."""

    first_offset: int
    last_offset: int
    log_append_time: int  # -1 unless message.timestamp.type=LogAppendTime
    log_start_offset: int
    batches: list[BatchInfo] = field(default_factory=list)
    max_timestamp: int = NO_TIMESTAMP
    offset_of_max_timestamp: int = -1


@dataclass(slots=True)
class ReadResult:
    """Byte range of one segment file to send for a fetch (whole batches, possibly none)."""

    path: str
    position: int
    length: int
    first_offset: int  # base offset of the first batch in the range (-1 if empty)
    next_offset: int  # the offset after the last batch in the range (the next fetch offset)
    log_start_offset: int
    log_end_offset: int
    file: CachedFile | None = field(default=None, repr=False)

    @property
    def empty(self) -> bool:
        return self.length == 0

    @contextmanager
    def open(self) -> Iterator[int]:
        """A descriptor for `path`, kept open for the block (e.g. around os.sendfile)."""
        if self.file is None:
            raise KafkaError("empty read has no file", code=ErrorCode.UNKNOWN_SERVER_ERROR)
        fd = self.file.pin()
        try:
            yield fd
        finally:
            self.file.unpin()

    def read_bytes(self) -> bytes:
        """The bytes of the range (os.pread), for callers that cannot sendfile."""
        if self.length == 0 or self.file is None:
            return b""
        with self.open() as fd:
            return pread_exact(fd, self.length, self.position)


@dataclass(frozen=True, slots=True)
class TimestampOffset:
    """An offset and the timestamp it was found for (-1 when the lookup has none)."""

    offset: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class LogRecovery:
    """What recovery did to one log."""

    segments_scanned: int
    batches: int
    bytes_scanned: int
    truncated_bytes: int
    segments_deleted: int
    seconds: float


def parse_topic_partition(dirname: str) -> tuple[str, int] | None:
    """(topic, partition) from a `<topic>-<partition>` directory name, or None."""
    topic, sep, part = dirname.rpartition("-")
    if not sep or not topic or not part.isdigit():
        return None
    return topic, int(part)


def _storage_error(what: str, e: OSError) -> KafkaError:
    return KafkaError(f"{what}: {e}", code=ErrorCode.KAFKA_STORAGE_ERROR)


# -- leader epoch cache -----------------------------------------------------------------------


class LeaderEpochCache:
    """Leader epoch -> first offset of that epoch, persisted as leader-epoch-checkpoint."""

    def __init__(self, checkpoint: LeaderEpochCheckpoint | None, context: str = "") -> None:
        self._checkpoint = checkpoint
        self._entries: list[EpochEntry] = []
        self._context = context

    def load(self) -> None:
        if self._checkpoint is None:
            return
        try:
            self._entries = self._checkpoint.read()
        except CheckpointError as e:
            logger.warning("%s: ignoring unreadable leader epoch checkpoint: %s", self._context, e)
            self._entries = []

    @property
    def entries(self) -> list[EpochEntry]:
        return list(self._entries)

    @property
    def latest_epoch(self) -> int:
        return self._entries[-1].epoch if self._entries else UNDEFINED_EPOCH

    def _flush(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.write(self._entries)

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that `epoch` starts at `start_offset`; entries it contradicts are dropped."""
        if epoch < 0 or start_offset < 0:
            return False
        entries = self._entries
        if entries:
            last = entries[-1]
            if last.epoch == epoch and start_offset >= last.start_offset:
                return False
        kept = [e for e in entries if e.epoch < epoch and e.start_offset < start_offset]
        kept.append(EpochEntry(epoch, start_offset))
        self._entries = kept
        self._flush()
        return True

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) as OffsetForLeaderEpoch answers for a requested epoch."""
        entries = self._entries
        if epoch == UNDEFINED_EPOCH or not entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if epoch == entries[-1].epoch:
            return epoch, log_end_offset
        higher = next((e for e in entries if e.epoch > epoch), None)
        if higher is None:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        floor = None
        for e in entries:
            if e.epoch <= epoch:
                floor = e
            else:
                break
        if floor is None:
            return epoch, higher.start_offset
        return floor.epoch, higher.start_offset

    def truncate_from_end(self, end_offset: int) -> None:
        """Drop entries starting at or after `end_offset` (the log was truncated there)."""
        kept = [e for e in self._entries if e.start_offset < end_offset]
        if len(kept) != len(self._entries):
            self._entries = kept
            self._flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """The log now starts at `start_offset`: the epoch in force there starts there."""
        entries = self._entries
        below = [e for e in entries if e.start_offset < start_offset]
        if not below:
            return
        rest = [e for e in entries if e.start_offset >= start_offset]
        if rest and rest[0].start_offset == start_offset:
            self._entries = rest
        else:
            self._entries = [EpochEntry(below[-1].epoch, start_offset)] + rest
        self._flush()

    def clear(self) -> None:
        if self._entries:
            self._entries = []
            self._flush()


# -- the log ----------------------------------------------------------------------------------


class _MadeOnFirstUse:
    """A per-log attribute that exists once the log's state is made (Log._make_state).

    Start-up builds a Log for every partition directory before the broker answers anything,
    and most of a log's state is only needed once it is loaded; so it is made then (or when
    something reads it first), not in Log.__init__.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj: Log | None, owner: type | None = None) -> object:
        if obj is None:
            return self
        obj._make_state()  # sets the instance attribute, which from then on is read instead
        return getattr(obj, self._name)


class Log:
    """One partition's log on disk. Opening is lazy: nothing is read until first use, and
    recovery (if the last shutdown was unclean) runs then, before anything is served."""

    # Start-up builds a Log for every partition directory before the broker answers, so
    # building one allocates next to nothing: until the log loads, its segments are these
    # shared empty lists (structural changes publish new lists, never mutated afterwards, so
    # readers that take self._snap without the lock always see a consistent pair), and the
    # leader epoch cache and producer state are made when first read (by the load, usually).
    _segments: list[Segment] = []
    _bases: list[int] = []
    _snap: tuple[list[Segment], list[int]] = (_segments, _bases)
    _pending_deletes: tuple[tuple[int, list[str]], ...] | list[tuple[int, list[str]]] = ()
    _state_made = False
    _epochs: LeaderEpochCache = _MadeOnFirstUse()  # type: ignore[assignment]
    #: idempotent-producer state, loaded with the log
    producers: ProducerStateManager = _MadeOnFirstUse()  # type: ignore[assignment]

    def __init__(
        self,
        directory: str,
        config: LogConfig | None = None,
        *,
        files: FileCache | None = None,
        indexes: IndexCache | None = None,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        high_watermark: int = 0,
        needs_recovery: bool = False,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
    ) -> None:
        """`name` is the directory's base name (the manager passes it; else it is worked out)."""
        self.dir = directory
        if name is None:
            name = os.path.basename(os.path.normpath(directory))
        tp = parse_topic_partition(name)
        self.topic, self.partition = tp if tp is not None else (name, 0)
        self.name = name
        self.config = config if config is not None else LogConfig()
        self._files = files if files is not None else FileCache()
        self._indexes = indexes if indexes is not None else IndexCache()
        self._clock = clock
        self.recovery_point = recovery_point
        self.log_start_offset = log_start_offset
        self._high_watermark = high_watermark
        self.needs_recovery = needs_recovery
        self._lock = threading.RLock()
        self._loaded = False
        self._closed = False
        self.cleaner_passes: list | None = None  # the cleaner's state, loaded by the cleaner
        self._next_offset = 0
        self._unflushed_messages = 0
        self._last_flush_ms = int(clock() * 1000)
        self._rolled_unflushed = False
        self.last_recovery: LogRecovery | None = None

    def __repr__(self) -> str:
        return f"Log({self.name})"

    def _make_state(self) -> None:
        """Make the leader epoch cache and the producer state, empty (loading fills them).
        Once per log, under its lock: two threads reading them first get the same objects."""
        with self._lock:
            if not self._state_made:
                self._epochs = LeaderEpochCache(
                    LeaderEpochCheckpoint(os.path.join(self.dir, LEADER_EPOCH_CHECKPOINT)),
                    self.name,
                )
                self.producers = ProducerStateManager(self.dir, self.name)
                self.producers.on_abort = self._record_abort
                self._state_made = True

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- loading and recovery ----------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        """Open the segments now (and recover them if needed); otherwise done on first use."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._load()

    def _set_segments(self, segments: list[Segment]) -> None:
        bases = [s.base_offset for s in segments]
        self._segments = segments
        self._bases = bases
        self._snap = (segments, bases)

    def _ensure(self) -> None:
        if not self._loaded:
            self.load()
        if self._closed:
            raise KafkaError(f"log {self.name} is closed", code=ErrorCode.KAFKA_STORAGE_ERROR)

    def _segment(self, base: int) -> Segment:
        return Segment(
            self.dir,
            base,
            self._files,
            self._indexes,
            self.config.index_interval_bytes,
            self.name,
        )

    def _load(self) -> None:
        if self._closed:
            raise KafkaError(f"log {self.name} is closed", code=ErrorCode.KAFKA_STORAGE_ERROR)
        t0 = time.monotonic()
        self._make_state()
        self._pending_deletes = []
        try:
            os.makedirs(self.dir, exist_ok=True)
            bases = self._clean_directory()
        except OSError as e:
            raise _storage_error(f"cannot open log {self.name}", e) from e
        self._epochs.load()
        segments = [self._segment(b) for b in bases]
        if not segments:
            start = max(self.log_start_offset, 0)
            try:
                segments = [
                    Segment.create(
                        self.dir,
                        start,
                        self._files,
                        self._indexes,
                        self.config.index_interval_bytes,
                        self.name,
                        created_ms=self._now_ms(),
                    )
                ]
            except OSError as e:
                raise _storage_error(f"cannot create segment in {self.name}", e) from e
            self.needs_recovery = False
        self._set_segments(segments)
        if self.needs_recovery:
            self._recover(t0)
        else:
            active = segments[-1]
            if not active.open_active():
                logger.warning(
                    "%s: active segment %d does not end cleanly; recovering it",
                    self.name,
                    active.base_offset,
                )
                self._recover_segments(len(segments) - 1, t0)
        active = self._segments[-1]
        self._next_offset = (
            active.next_offset if active.next_offset is not None else active.base_offset
        )
        if self.log_start_offset > self._next_offset:
            logger.warning(
                "%s: log start offset %d beyond log end %d; starting empty at it",
                self.name,
                self.log_start_offset,
                self._next_offset,
            )
            self._truncate_fully_locked(self.log_start_offset)
        self.log_start_offset = max(self.log_start_offset, self._segments[0].base_offset)
        self.recovery_point = min(self.recovery_point, self._next_offset)
        self._high_watermark = min(
            max(self._high_watermark, self.log_start_offset), self._next_offset
        )
        self._epochs.truncate_from_end(self._next_offset)
        self._epochs.truncate_from_start(self.log_start_offset)
        self.needs_recovery = False
        self._loaded = True
        try:
            self._load_producers()
        except BaseException:
            self._loaded = False
            raise

    def _load_producers(self) -> None:
        """Producer state as of the log end: the newest snapshot, then the batches after it."""
        try:
            self.producers.load(
                self.log_start_offset,
                self._next_offset,
                lambda offset: self.iter_batches(start_offset=offset),
            )
        except OSError as e:
            raise _storage_error(f"cannot load producer state of {self.name}", e) from e

    def _clean_directory(self) -> list[int]:
        """Remove leftovers of deletes and interrupted cleanings; finish committed swaps.
        Returns the base offsets of the segments, sorted."""
        names = os.listdir(self.dir)
        bases: set[int] = set()
        log_swaps: list[int] = []
        index_swaps: list[str] = []
        for name in names:
            path = os.path.join(self.dir, name)
            if name.endswith((DELETED_SUFFIX, CLEANED_SUFFIX, ".tmp")):
                os.unlink(path)
                logger.info("%s: removed leftover file %s", self.name, name)
            elif name.endswith(LOG_SUFFIX + SWAP_SUFFIX):
                base = parse_base_offset(name[: -len(LOG_SUFFIX + SWAP_SUFFIX)])
                if base is not None:
                    log_swaps.append(base)
            elif name.endswith(SWAP_SUFFIX):
                index_swaps.append(name)
            elif name.endswith(LOG_SUFFIX):
                base = parse_base_offset(name[: -len(LOG_SUFFIX)])
                if base is not None:
                    bases.add(base)
        swap_stems = {f"{b:020d}" for b in log_swaps}
        for name in index_swaps:
            if name.split(".", 1)[0] not in swap_stems:
                os.unlink(os.path.join(self.dir, name))  # its cleaning never committed
        for swap_base in sorted(log_swaps):
            self._complete_swap(swap_base, bases)
        return sorted(bases)

    def _complete_swap(self, base: int, bases: set[int]) -> None:
        """A cleaning committed (.log.swap exists) but did not finish: replace the segments
        it covers with it."""
        stem = os.path.join(self.dir, f"{base:020d}")
        swap = stem + LOG_SUFFIX + SWAP_SUFFIX
        size = os.stat(swap).st_size
        next_offset = base
        fd = os.open(swap, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for _pos, h in scan_headers(fd, 0, size):
                next_offset = h[H_BASE] + h[H_DELTA] + 1
        finally:
            os.close(fd)
        for old in sorted(b for b in bases if base <= b < max(next_offset, base + 1)):
            old_stem = os.path.join(self.dir, f"{old:020d}")
            for ext in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX):
                with suppress(FileNotFoundError):
                    os.unlink(old_stem + ext)
            bases.discard(old)
        for ext in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            with suppress(FileNotFoundError):
                os.unlink(stem + ext + SWAP_SUFFIX)  # rebuilt from the log on first use
        with suppress(FileNotFoundError):  # the aborts the cleaned segment carries over
            os.replace(stem + TXN_INDEX_SUFFIX + SWAP_SUFFIX, stem + TXN_INDEX_SUFFIX)
        os.replace(swap, stem + LOG_SUFFIX)
        bases.add(base)
        logger.info(
            "%s: completed interrupted segment swap at offset %d (next offset %d)",
            self.name,
            base,
            next_offset,
        )

    def _recover(self, t0: float) -> None:
        segments = self._segments
        rp = self.recovery_point
        start = len(segments) - 1
        for i in range(len(segments) - 1):
            if segments[i + 1].base_offset > rp:
                start = i
                break
        self._recover_segments(start, t0)

    def _recover_segments(self, start: int, t0: float) -> None:
        """Verify segments[start:] batch by batch; cut the log at the first bad batch."""
        segments = self._segments
        scanned = batches = scanned_bytes = truncated = deleted = 0
        i = start
        while i < len(segments):
            seg = segments[i]
            try:
                result = seg.recover(max_batch_bytes=None)
            except OSError as e:
                raise _storage_error(
                    f"cannot recover segment {seg.base_offset} of {self.name}", e
                ) from e
            scanned += 1
            batches += result.batches
            scanned_bytes += result.valid_bytes + result.truncated_bytes
            truncated += result.truncated_bytes
            for epoch, offset in result.epochs:
                self._epochs.assign(epoch, offset)
            if result.truncated_bytes:
                logger.warning(
                    "%s: recovery truncated segment %d at position %d (%d bytes dropped: %s)",
                    self.name,
                    seg.base_offset,
                    result.valid_bytes,
                    result.truncated_bytes,
                    result.reason,
                )
            if result.truncated_bytes or result.reason:
                for dead in segments[i + 1 :]:
                    logger.warning(
                        "%s: recovery deletes segment %d after the corruption",
                        self.name,
                        dead.base_offset,
                    )
                    dead.delete_files()
                    deleted += 1
                segments = segments[: i + 1]
                break
            if i < len(segments) - 1:
                seg.seal()
            i += 1
        self._set_segments(segments)
        elapsed = time.monotonic() - t0
        self.last_recovery = LogRecovery(
            scanned, batches, scanned_bytes, truncated, deleted, elapsed
        )
        logger.info(
            "%s: recovered %d segment(s) from offset %d: %d batches, %d bytes verified, "
            "%d bytes truncated, %d segment(s) deleted, log end offset %d, %.3f s",
            self.name,
            scanned,
            segments[start].base_offset if start < len(segments) else -1,
            batches,
            scanned_bytes - truncated,
            truncated,
            deleted,
            segments[-1].next_offset,
            elapsed,
        )

    # -- state -------------------------------------------------------------------------------

    @property
    def log_end_offset(self) -> int:
        self._ensure()
        return self._next_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @high_watermark.setter
    def high_watermark(self, offset: int) -> None:
        self.update_high_watermark(offset)

    def update_high_watermark(self, offset: int) -> int:
        """Set the high watermark, clamped to [log start offset, log end offset]."""
        self._ensure()
        self._high_watermark = min(max(offset, self.log_start_offset), self._next_offset)
        return self._high_watermark

    @property
    def segments(self) -> list[Segment]:
        """The segments, oldest first (a copy of the list)."""
        self._ensure()
        return list(self._segments)

    @property
    def active_segment(self) -> Segment:
        self._ensure()
        return self._segments[-1]

    @property
    def size(self) -> int:
        """Bytes in all segment files."""
        self._ensure()
        return sum(s.size for s in self._segments)

    @property
    def latest_epoch(self) -> int:
        self._ensure()
        return self._epochs.latest_epoch

    @property
    def epochs(self) -> LeaderEpochCache:
        """The leader epoch cache (loaded with the log)."""
        self._ensure()
        return self._epochs

    @property
    def unflushed_messages(self) -> int:
        return self._unflushed_messages

    # -- append ------------------------------------------------------------------------------

    def append(
        self,
        records: bytes | bytearray | memoryview,
        *,
        origin: AppendOrigin = AppendOrigin.CLIENT,
        leader_epoch: int | None = None,
        now_ms: int | None = None,
        before_write: Callable[[list[BatchInfo]], None] | None = None,
    ) -> AppendResult:
        """Append one or more RecordBatch v2 batches laid back to back.

        Each batch's header, length and CRC are checked and max.message.bytes enforced
        (per batch, not per record); offsets are assigned in place (not for REPLICATION),
        the partition leader epoch stamped if given, LogAppendTime stamped if configured,
        then the whole buffer goes to the active segment in one write. A writable buffer is
        stamped in place; read-only bytes are copied once. A client append is checked against
        the producer state (DuplicateBatch for a retry); every append updates it. `before_write`
        sees every batch with its final offsets and may raise to refuse the append.
        Errors: CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, INVALID_RECORD,
        INVALID_TIMESTAMP, KAFKA_STORAGE_ERROR; on any of them the log is unchanged.
        """
        self._ensure()
        config = self.config
        now = self._now_ms() if now_ms is None else now_ms
        view = memoryview(records)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        total = len(view)
        if total == 0:
            return AppendResult(-1, -1, -1, self.log_start_offset)
        assign = origin is not AppendOrigin.REPLICATION
        client = origin is AppendOrigin.CLIENT
        stamp_time = assign and config.log_append_time
        if view.readonly and (assign or leader_epoch is not None):
            view = memoryview(bytearray(view))  # the one copy, so offsets can be stamped
        max_message = config.max_message_bytes
        unpack = HEADER.unpack_from
        parsed: list[tuple[int, tuple, BatchView]] = []
        pos = 0
        while pos < total:
            if total - pos < HEADER_SIZE:
                raise CorruptRecordError(
                    f"{total - pos} trailing bytes cannot hold a record batch header"
                )
            h = unpack(view, pos)
            size = h[H_LENGTH] + LOG_OVERHEAD
            if size < HEADER_SIZE or size > total - pos:
                raise CorruptRecordError(
                    f"impossible record batch length {h[H_LENGTH]} with {total - pos} bytes left"
                )
            batch = BatchView(view[pos : pos + size])
            batch.validate()
            if size > max_message:
                raise KafkaError(
                    f"record batch of {size} bytes exceeds max.message.bytes {max_message}",
                    code=ErrorCode.MESSAGE_TOO_LARGE,
                )
            if client:
                self._validate_client_batch(batch, h, now)
            parsed.append((pos, h, batch))
            pos += size
        if total > config.segment_bytes:
            raise KafkaError(
                f"{total} bytes of batches exceed segment.bytes {config.segment_bytes}",
                code=ErrorCode.RECORD_LIST_TOO_LARGE,
            )
        with self._lock:
            if self._closed:
                raise KafkaError(f"log {self.name} is closed", code=ErrorCode.KAFKA_STORAGE_ERROR)
            return self._append_locked(
                view, parsed, origin, stamp_time, leader_epoch, now, before_write
            )

    def _validate_client_batch(self, batch: BatchView, h: tuple, now: int) -> None:
        config = self.config
        count = h[H_COUNT]
        if count <= 0 or count != h[H_DELTA] + 1:
            raise KafkaError(
                f"batch has {count} records but last offset delta {h[H_DELTA]}",
                code=ErrorCode.INVALID_RECORD,
            )
        if h[H_ATTRS] & _CONTROL:
            raise KafkaError("clients may not write control batches", code=ErrorCode.INVALID_RECORD)
        before = config.message_timestamp_before_max_ms
        after = config.message_timestamp_after_max_ms
        diff = config.message_timestamp_difference_max_ms  # deprecated: the fallback for both
        if before == _INT64_MAX:
            before = diff
        if after == _INT64_MAX:
            after = diff
        if config.message_timestamp_type == "CreateTime" and (
            before != _INT64_MAX or after != _INT64_MAX
        ):
            first_ts, max_ts = h[7], h[H_MAX_TS]
            if now - min(first_ts, max_ts) > before or max_ts - now > after:
                raise KafkaError(
                    f"batch timestamps [{first_ts}, {max_ts}] out of the allowed range at {now}",
                    code=ErrorCode.INVALID_TIMESTAMP,
                )
        # the records must decode (within max.message.bytes once decompressed, a bomb stops
        # there) and be as many as the header says; one cheap pass, not a decode of each
        batch.verify_records(max(config.max_message_bytes, 1 << 20) * 4)
        if config.compact:
            for record in batch.records():
                if record.key is None:
                    raise KafkaError(
                        "compacted topic cannot accept a record without key",
                        code=ErrorCode.INVALID_RECORD,
                    )

    def _append_locked(
        self,
        view: memoryview,
        parsed: list[tuple[int, tuple, BatchView]],
        origin: AppendOrigin,
        stamp_time: bool,
        leader_epoch: int | None,
        now: int,
        before_write: Callable[[list[BatchInfo]], None] | None,
    ) -> AppendResult:
        assign = origin is not AppendOrigin.REPLICATION
        next_offset = self._next_offset
        infos: list[BatchInfo] = []
        index_entries: list[tuple[int, int, int]] = []
        max_ts = NO_TIMESTAMP
        offset_of_max = -1
        count = 0
        for _pos, h, batch in parsed:
            delta = h[H_DELTA]
            if assign:
                base = next_offset
                batch.set_base_offset(base)
            else:
                base = h[H_BASE]
                if base < next_offset:
                    raise KafkaError(
                        f"{self.name}: replicated batch at offset {base} is below the "
                        f"log end offset {next_offset}",
                        code=ErrorCode.UNKNOWN_SERVER_ERROR,
                    )
            if leader_epoch is not None:
                batch.set_partition_leader_epoch(leader_epoch)
            if stamp_time:
                batch.set_max_timestamp(now, log_append_time=True)
                batch_max_ts = now
            else:
                batch_max_ts = h[H_MAX_TS]
            last = base + delta
            next_offset = last + 1
            if batch_max_ts > max_ts:
                max_ts = batch_max_ts
                offset_of_max = last
            size = h[H_LENGTH] + LOG_OVERHEAD
            attrs = h[H_ATTRS]
            seq = h[H_SEQ]
            control = bool(attrs & _CONTROL)
            infos.append(
                BatchInfo(
                    base,
                    last,
                    h[H_PID],
                    h[H_PEPOCH],
                    seq,
                    -1 if seq < 0 else (seq + delta) & 0x7FFFFFFF,
                    bool(attrs & _TRANSACTIONAL),
                    control,
                    batch_max_ts,
                    h[H_COUNT],
                    size,
                    control and is_abort_marker(batch),
                )
            )
            index_entries.append((last, batch_max_ts, size))
            count += h[H_COUNT]
        first_offset = infos[0].base_offset
        last_offset = infos[-1].last_offset
        if origin is AppendOrigin.CLIENT:
            self.producers.check(infos)  # may raise DuplicateBatch: nothing is written then
        if before_write is not None:
            before_write(infos)
        segment = self._maybe_roll(len(view), max_ts, first_offset, last_offset, now)
        try:
            segment.append(view, index_entries)
        except OSError as e:
            logger.error(
                "%s: append of %d bytes at offset %d failed: %s",
                self.name,
                len(view),
                first_offset,
                e,
            )
            raise _storage_error(f"cannot append to {self.name}", e) from e
        self._next_offset = last_offset + 1
        self.producers.update(infos)
        if leader_epoch is not None:
            if leader_epoch > self._epochs.latest_epoch:
                self._epochs.assign(leader_epoch, first_offset)
        elif not assign:
            latest = self._epochs.latest_epoch
            for info, (_pos, h, _b) in zip(infos, parsed, strict=True):
                if h[H_EPOCH] > latest:
                    self._epochs.assign(h[H_EPOCH], info.base_offset)
                    latest = h[H_EPOCH]
        self._unflushed_messages += count
        if self._unflushed_messages >= self.config.flush_messages:
            self.flush(now)
        return AppendResult(
            first_offset,
            last_offset,
            now if stamp_time else -1,
            self.log_start_offset,
            infos,
            max_ts,
            offset_of_max,
        )

    # -- rolling -----------------------------------------------------------------------------

    def _maybe_roll(
        self, size: int, max_ts: int, first_offset: int, last_offset: int, now: int
    ) -> Segment:
        seg = self._segments[-1]
        config = self.config
        seg_size = seg.size
        if seg_size == 0:
            if last_offset - seg.base_offset > INT32_MAX or first_offset < seg.base_offset:
                return self._roll(first_offset, replace_empty=True)
            return seg
        reason = ""
        if seg_size > config.segment_bytes - size:
            reason = "segment.bytes"
        elif self._time_to_roll(seg, max_ts, now):
            reason = "segment.ms"
        elif seg.index_full(config.max_index_entries, max(1, config.segment_index_bytes // 12)):
            reason = "index full"
        elif last_offset - seg.base_offset > INT32_MAX:
            reason = "offset overflow"
        if not reason:
            return seg
        return self._roll(max(first_offset, self._next_offset), reason=reason)

    def _time_to_roll(self, seg: Segment, max_ts: int, now: int) -> bool:
        segment_ms = self.config.segment_ms - self._jitter_ms()
        base_ts = seg.rolling_base_timestamp
        if base_ts is not None and base_ts >= 0 and max_ts >= 0:
            return max_ts - base_ts > segment_ms
        return now - seg.created_ms > segment_ms

    def _jitter_ms(self) -> int:
        jitter = self.config.segment_jitter_ms
        if jitter <= 0:
            return 0
        return zlib.crc32(self.name.encode()) % min(jitter, self.config.segment_ms)

    def roll(self) -> Segment:
        """Start a new active segment at the log end offset (if the active one has data)."""
        self._ensure()
        with self._lock:
            if self._segments[-1].size == 0:
                return self._segments[-1]
            return self._roll(self._next_offset, reason="requested")

    def _roll(self, base: int, *, replace_empty: bool = False, reason: str = "") -> Segment:
        old = self._segments[-1]
        if replace_empty and old.size == 0:
            try:
                new = Segment.create(
                    self.dir,
                    base,
                    self._files,
                    self._indexes,
                    self.config.index_interval_bytes,
                    self.name,
                    created_ms=self._now_ms(),
                )
            except OSError as e:
                raise _storage_error(f"cannot create segment {base} in {self.name}", e) from e
            if old.base_offset != base:
                old.delete_files()
            self._set_segments(self._segments[:-1] + [new])
            return new
        try:
            new = Segment.create(
                self.dir,
                base,
                self._files,
                self._indexes,
                self.config.index_interval_bytes,
                self.name,
                created_ms=self._now_ms(),
            )
        except OSError as e:
            for path in (
                os.path.join(self.dir, f"{base:020d}{ext}")
                for ext in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX)
            ):
                with suppress(OSError):
                    os.unlink(path)
            raise _storage_error(f"cannot roll {self.name} to offset {base}", e) from e
        old.seal()
        self._set_segments(self._segments + [new])
        try:
            # producer state as of the new segment's start: recovery replays from here
            self.producers.write_snapshot(base, sync=False)
        except OSError as e:
            logger.warning("%s: cannot write producer snapshot at %d: %s", self.name, base, e)
        if old.unflushed:
            self._rolled_unflushed = True
        logger.info(
            "%s: rolled new segment at offset %d (%s; previous %d bytes)",
            self.name,
            base,
            reason or "roll",
            old.size,
        )
        return new

    # -- reads -------------------------------------------------------------------------------

    def read(
        self,
        offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        min_one_message: bool = True,
    ) -> ReadResult:
        """The byte range to send for a fetch from `offset`: whole batches from the one
        holding `offset`, at most `max_bytes` (but at least one batch if min_one_message),
        none at or past `max_offset` (e.g. the high watermark), all from one segment.
        Raises OFFSET_OUT_OF_RANGE outside [log start offset, log end offset]."""
        self._ensure()
        leo = self._next_offset
        lso = self.log_start_offset
        if offset < lso or offset > leo:
            raise KafkaError(
                f"offset {offset} out of range [{lso}, {leo}] for {self.name}",
                code=ErrorCode.OFFSET_OUT_OF_RANGE,
            )
        cap = leo if max_offset is None else min(max_offset, leo)
        if offset < cap:
            for _attempt in range(3):
                snap = self._snap
                try:
                    result = self._read_from(snap, offset, max_bytes, cap, min_one_message)
                except FileNotFoundError:
                    # A segment was swapped out (cleaner) or deleted (retention) under this
                    # snapshot of the segment list: look again in the current one.
                    if self._snap is snap:
                        raise KafkaError(
                            f"segment of {self.name} vanished", code=ErrorCode.KAFKA_STORAGE_ERROR
                        ) from None
                    continue
                except OSError as e:
                    raise _storage_error(f"cannot read {self.name}", e) from e
                if result is not None:
                    seg, (position, length, first, nxt) = result
                    return ReadResult(
                        seg.file.path,
                        position,
                        length,
                        first if length else -1,
                        nxt,
                        lso,
                        leo,
                        seg.file,
                    )
                break
        return ReadResult("", 0, 0, -1, offset, lso, leo, None)

    @staticmethod
    def _read_from(
        snap: tuple[list[Segment], list[int]],
        offset: int,
        max_bytes: int,
        cap: int,
        min_one_message: bool,
    ) -> tuple[Segment, tuple[int, int, int, int]] | None:
        segments, bases = snap
        i = max(bisect.bisect_right(bases, offset) - 1, 0)
        n = len(segments)
        while i < n:
            seg = segments[i]
            if seg.base_offset >= cap:
                break
            seg_cap: int | None = cap
            if i + 1 < n and bases[i + 1] <= cap:
                seg_cap = None  # the whole segment is below the cap
            found = seg.read(offset, max_bytes, seg_cap, min_one_message)
            if found is not None:
                return seg, found
            i += 1
        return None

    # -- aborted transactions ------------------------------------------------------------------

    def _record_abort(self, producer_id: int, first_offset: int, marker_offset: int) -> None:
        """An abort marker (appended, or replayed while loading) ended a transaction: the
        segment holding the marker keeps it in its .txnindex."""
        segments, bases = self._snap
        i = bisect.bisect_right(bases, marker_offset) - 1
        if i < 0:
            return
        lso = self.producers.first_unstable_offset()
        entry = AbortedTxn(
            producer_id, first_offset, marker_offset, marker_offset + 1 if lso is None else lso
        )
        try:
            segments[i].txn_index.append(entry)
        except OSError as e:  # the marker is written: keep going; the entry stays in memory
            logger.error("%s: cannot write the aborted-transaction index: %s", self.name, e)

    def aborted_transactions(self, start: int, end: int) -> list[AbortedTxn]:
        """Transactions aborted at or after `start` that began before `end` (a read_committed
        fetch of [start, end) drops their records)."""
        self._ensure()
        segments, bases = self._snap
        i = max(bisect.bisect_right(bases, start) - 1, 0)
        out: list[AbortedTxn] = []
        for seg in segments[i:]:
            complete = False
            for e in seg.txn_index.entries():
                if e.last_offset >= start and e.first_offset < end:
                    out.append(e)
                # stable past `end` at this abort: every transaction begun before `end` had
                # ended by then, so later segments hold none of them
                complete = complete or e.last_stable_offset > end
            if complete:
                break
        return out

    def iter_batches(
        self, start_offset: int | None = None, max_offset: int | None = None
    ) -> Iterator[BatchView]:
        """Every batch from `start_offset` (default: log start) up to `max_offset`, read
        segment by segment (for tests, tools and state loading, not for fetch)."""
        offset = self.log_start_offset if start_offset is None else start_offset
        cap = self.log_end_offset if max_offset is None else max_offset
        while offset < cap:
            result = self.read(offset, 1 << 20, max_offset=cap)
            if result.empty:
                return
            data = memoryview(result.read_bytes())
            pos = 0
            last = offset - 1
            while pos + HEADER_SIZE <= len(data):
                batch = BatchView(data[pos:])
                pos += batch.size
                last = batch.last_offset
                yield batch
            offset = last + 1

    def offset_for_timestamp(self, timestamp: int) -> TimestampOffset | None:
        """ListOffsets: the first record with timestamp >= `timestamp` (None if none), or
        for the special values -1 latest (log end), -2 / -4 earliest (log start), -3 the
        record with the largest timestamp. The broker caps -1 at the high watermark or LSO."""
        self._ensure()
        if timestamp == LATEST_TIMESTAMP:
            return TimestampOffset(self._next_offset, -1)
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            return TimestampOffset(self.log_start_offset, -1)
        segments = self._snap[0]
        try:
            if timestamp == MAX_TIMESTAMP:
                best: Segment | None = None
                for seg in segments:
                    if seg.size and (best is None or seg.max_timestamp > best.max_timestamp):
                        best = seg
                if best is None or best.max_timestamp < 0:
                    return None
                found = best.record_with_max_timestamp()
                if found is None or found[0] < self.log_start_offset:
                    return None
                return TimestampOffset(*found)
            if timestamp < 0:
                raise KafkaError(f"invalid timestamp {timestamp}", code=ErrorCode.INVALID_REQUEST)
            start = self.log_start_offset
            for seg in segments:
                if seg.size == 0 or seg.max_timestamp < timestamp:
                    continue
                found = seg.find_offset_by_timestamp(timestamp, start)
                if found is not None:
                    return TimestampOffset(*found)
        except OSError as e:
            raise _storage_error(f"cannot search {self.name}", e) from e
        return None

    # -- truncation and log start ------------------------------------------------------------

    def truncate_to(self, offset: int) -> bool:
        """Remove everything at and after `offset` (replication: back to the leader's log).
        Returns whether anything was removed."""
        self._ensure()
        with self._lock:
            if offset >= self._next_offset:
                return False
            if offset < 0:
                raise KafkaError(
                    f"cannot truncate to {offset}", code=ErrorCode.UNKNOWN_SERVER_ERROR
                )
            try:
                if offset <= self._segments[0].base_offset or offset < self.log_start_offset:
                    self._truncate_fully_locked(offset)
                else:
                    keep = [s for s in self._segments if s.base_offset < offset]
                    for dead in self._segments[len(keep) :]:
                        dead.delete_files()
                    keep[-1].truncate_to(offset)
                    self._set_segments(keep)
                    # Batches straddling `offset` go whole: the log ends after the last one left.
                    end = keep[-1].next_offset
                    self._next_offset = min(offset, end if end is not None else offset)
            except OSError as e:
                raise _storage_error(f"cannot truncate {self.name}", e) from e
            leo = self._next_offset
            self.recovery_point = min(self.recovery_point, leo)
            self._high_watermark = min(self._high_watermark, leo)
            self._epochs.truncate_from_end(leo)
            self._truncate_cleaner_checkpoint(leo)
            try:
                self.producers.delete_snapshots_after(leo)
            except OSError as e:
                raise _storage_error(f"cannot truncate producer state of {self.name}", e) from e
            self._load_producers()
            logger.info("%s: truncated to offset %d (log end offset %d)", self.name, offset, leo)
            return True

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete every segment and start an empty log at `offset`."""
        self._ensure()
        with self._lock:
            try:
                self._truncate_fully_locked(offset)
            except OSError as e:
                raise _storage_error(f"cannot truncate {self.name}", e) from e

    def _truncate_fully_locked(self, offset: int) -> None:
        for seg in self._segments:
            seg.delete_files()
        new = Segment.create(
            self.dir,
            offset,
            self._files,
            self._indexes,
            self.config.index_interval_bytes,
            self.name,
            created_ms=self._now_ms(),
        )
        self._set_segments([new])
        self._next_offset = offset
        self.log_start_offset = offset
        self.recovery_point = offset
        self._high_watermark = offset
        self._epochs.clear()
        self._truncate_cleaner_checkpoint(-1)
        self.producers.truncate()
        self._rolled_unflushed = False
        logger.info("%s: truncated fully, now starting at offset %d", self.name, offset)

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start offset up to `offset` (at most the high
        watermark); segments wholly below it go at the next retention run."""
        self._ensure()
        with self._lock:
            if offset > self._high_watermark or offset < 0:
                raise KafkaError(
                    f"cannot delete records before {offset}: high watermark is "
                    f"{self._high_watermark}",
                    code=ErrorCode.OFFSET_OUT_OF_RANGE,
                )
            if offset > self.log_start_offset:
                self.log_start_offset = offset
                self._epochs.truncate_from_start(offset)
                logger.info("%s: log start offset moved to %d", self.name, offset)
            return self.log_start_offset

    # -- leader epochs -----------------------------------------------------------------------

    def assign_epoch(self, epoch: int, start_offset: int) -> None:
        """Record that leader epoch `epoch` starts at `start_offset` (a new leader)."""
        self._ensure()
        with self._lock:
            self._epochs.assign(epoch, start_offset)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetForLeaderEpoch; (-1, -1) if unknown."""
        self._ensure()
        return self._epochs.end_offset_for(epoch, self._next_offset)

    # -- retention ---------------------------------------------------------------------------

    def delete_old_segments(self, now_ms: int | None = None) -> int:
        """Retention: delete whole segments below the log start offset and, with
        cleanup.policy=delete, past retention.ms or beyond retention.bytes. Only segments
        entirely below the high watermark go. Returns how many were deleted."""
        self._ensure()
        now = self._now_ms() if now_ms is None else now_ms
        with self._lock:
            deleted = self._delete_segments(
                lambda seg, nxt: nxt is not None and nxt.base_offset <= self.log_start_offset,
                "log start offset",
                now,
            )
            config = self.config
            if config.delete:
                retention_ms = config.retention_ms
                if retention_ms >= 0:
                    deleted += self._delete_segments(
                        lambda seg, nxt: now - seg.largest_timestamp() > retention_ms,
                        "retention.ms",
                        now,
                    )
                retention_bytes = config.retention_bytes
                if retention_bytes >= 0:
                    excess = [sum(s.size for s in self._segments) - retention_bytes]

                    def over_size(seg: Segment, nxt: Segment | None) -> bool:
                        if excess[0] - seg.size >= 0:
                            excess[0] -= seg.size
                            return True
                        return False

                    if excess[0] > 0:
                        deleted += self._delete_segments(over_size, "retention.bytes", now)
            return deleted

    def _delete_segments(
        self, predicate: Callable[[Segment, Segment | None], bool], reason: str, now: int
    ) -> int:
        segments = self._segments
        doomed: list[Segment] = []
        for i, seg in enumerate(segments):
            nxt = segments[i + 1] if i + 1 < len(segments) else None
            upper = nxt.base_offset if nxt is not None else self._next_offset
            if upper > self._high_watermark or (nxt is None and seg.size == 0):
                break
            if not predicate(seg, nxt):
                break
            doomed.append(seg)
        if not doomed:
            return 0
        if len(doomed) == len(segments):
            self._roll(self._next_offset, reason="retention deletes every segment")
        self._set_segments(self._segments[len(doomed) :])
        old_start = self.log_start_offset
        self.log_start_offset = max(self.log_start_offset, self._segments[0].base_offset)
        if self.log_start_offset != old_start:
            self._epochs.truncate_from_start(self.log_start_offset)
        self._high_watermark = max(self._high_watermark, self.log_start_offset)
        self.recovery_point = max(self.recovery_point, self.log_start_offset)
        for seg in doomed:
            self._schedule_delete(seg, now)
        logger.info(
            "%s: deleted %d segment(s) by %s; log start offset %d",
            self.name,
            len(doomed),
            reason,
            self.log_start_offset,
        )
        return len(doomed)

    def _schedule_delete(self, seg: Segment, now: int) -> None:
        delay = self.config.file_delete_delay_ms
        try:
            if delay <= 0:
                seg.delete_files()
                return
            seg.close()
            seg.rename_files("", DELETED_SUFFIX)
        except OSError as e:
            logger.warning("%s: cannot remove segment %d: %s", self.name, seg.base_offset, e)
            return
        self._pending_deletes.append((now + delay, seg.all_paths()))

    def delete_expired_files(self, now_ms: int | None = None, force: bool = False) -> int:
        """Unlink `.deleted` segment files whose file.delete.delay.ms has passed."""
        now = self._now_ms() if now_ms is None else now_ms
        with self._lock:
            due = [p for t, p in self._pending_deletes if force or t <= now]
            self._pending_deletes = [
                (t, p) for t, p in self._pending_deletes if not (force or t <= now)
            ]
        removed = 0
        for paths in due:
            for path in paths:
                try:
                    os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError as e:
                    logger.warning("%s: cannot delete %s: %s", self.name, path, e)
        return removed

    # -- compaction support (used by the cleaner) --------------------------------------------

    def replace_segments(self, old: list[Segment], new: Segment) -> bool:
        """Swap `old` (consecutive segments) for `new`, whose files carry the `.cleaned`
        suffix: commit by renaming to `.swap`, drop the old files, then rename into place.
        Returns False (and leaves the log alone) if the segments changed meanwhile."""
        with self._lock:
            if self._closed:
                return False
            try:
                start = self._segments.index(old[0])
            except ValueError:
                return False
            if self._segments[start : start + len(old)] != old or start + len(old) >= len(
                self._segments
            ):
                return False
            new.rename_files(CLEANED_SUFFIX, SWAP_SUFFIX)  # log renamed last: the commit point
            fsync_dir(self.dir)
            segments = self._segments
            self._set_segments(segments[:start] + [new] + segments[start + len(old) :])
            for seg in old:
                seg.close()
                seg.rename_files("", DELETED_SUFFIX)
            new.rename_files(SWAP_SUFFIX, "")
            fsync_dir(self.dir)
            now = self._now_ms()
            delay = self.config.file_delete_delay_ms
            for seg in old:
                if delay <= 0:
                    seg.delete_files()
                else:
                    self._pending_deletes.append((now + delay, seg.all_paths()))
            return True

    def new_segment_files(self, base: int, suffix: str) -> Segment:
        """A fresh active-style segment whose files carry `suffix` (for the cleaner)."""
        seg = Segment(
            self.dir, base, self._files, self._indexes, self.config.index_interval_bytes, self.name
        )
        for idx in (seg.offset_index, seg.time_index, seg.txn_index):
            idx.path += suffix
        seg.file.path += suffix
        for path in seg.all_paths():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            os.close(fd)
        seg._size = 0
        seg.active = True
        seg.next_offset = base
        seg.offset_index.reset()
        seg.time_index.reset()
        seg._max_ts = NO_TIMESTAMP
        return seg

    def _truncate_cleaner_checkpoint(self, offset: int) -> None:
        """Forget cleaning progress past `offset` (-1: all of it) after a truncation."""
        path = os.path.join(self.dir, CLEANER_CHECKPOINT)
        try:
            if offset < 0:
                self.cleaner_passes = []
                if os.path.exists(path):
                    os.unlink(path)
                return
            checkpoint = CleanerCheckpoint(path)
            passes = self.cleaner_passes if self.cleaner_passes is not None else checkpoint.read()
            if any(p.end_offset > offset for p in passes):
                passes = [CleanerPass(min(p.end_offset, offset), p.time_ms) for p in passes]
                checkpoint.write(passes)
            self.cleaner_passes = passes
        except (OSError, CheckpointError) as e:
            logger.warning("%s: cannot update cleaner checkpoint: %s", self.name, e)
            self.cleaner_passes = []

    # -- durability --------------------------------------------------------------------------

    def flush(self, now_ms: int | None = None) -> None:
        """fsync every segment with unflushed data (and its indexes); the recovery point
        moves to the log end offset as it was when the flush began. The fsyncs run without
        the log's lock, so appends (on the event loop) never wait for a disk."""
        if not self._loaded:
            return
        with self._lock:
            end = self._next_offset
            dirty = [seg for seg in self._segments if seg.unflushed]
            try:
                for seg in dirty:
                    seg.write_indexes()
            except OSError as e:
                raise _storage_error(f"cannot flush {self.name}", e) from e
            for seg in dirty:
                seg.unflushed = False
            self._unflushed_messages = 0
            self._rolled_unflushed = False
        self._sync(dirty, end, now_ms)

    def _sync(self, dirty: list[Segment], end: int, now_ms: int | None) -> None:
        try:
            for seg in dirty:
                seg.sync()
        except OSError as e:
            with self._lock:
                for seg in dirty:
                    seg.unflushed = True
            raise _storage_error(f"cannot flush {self.name}", e) from e
        with self._lock:
            self.recovery_point = max(self.recovery_point, min(end, self._next_offset))
            self._last_flush_ms = self._now_ms() if now_ms is None else now_ms

    def flush_due(self, now_ms: int | None = None) -> bool:
        """Flush what is due: segments that rolled (as Kafka does after a roll), and the
        active segment when flush.ms has passed. Returns whether anything was flushed."""
        if not self._loaded or self._closed:
            return False
        now = self._now_ms() if now_ms is None else now_ms
        if self._unflushed_messages and now - self._last_flush_ms >= self.config.flush_ms:
            self.flush(now)
            return True
        if self._rolled_unflushed:
            with self._lock:
                dirty = [seg for seg in self._segments[:-1] if seg.unflushed]
                for seg in dirty:
                    seg.unflushed = False
                self._rolled_unflushed = False
                end = self._segments[-1].base_offset
                last_flush = self._last_flush_ms
            self._sync(dirty, end, last_flush)
            return True
        return False

    def close(self, flush: bool = True) -> None:
        """Flush (unless told not to), write the active segment's indexes, close files."""
        with self._lock:
            if self._closed:
                return
            if self._loaded:
                if flush:
                    try:
                        self.flush()
                        self.producers.write_snapshot(self._next_offset)
                    except KafkaError as e:
                        logger.error("%s: flush on close failed: %s", self.name, e)
                    except OSError as e:
                        logger.error("%s: producer snapshot on close failed: %s", self.name, e)
                for seg in self._segments:
                    seg.close()
                self.delete_expired_files(force=True)
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def delete_directory_contents(self) -> None:
        """Close and forget the segments (used by the manager before removing the dir)."""
        with self._lock:
            for seg in self._segments:
                seg.delete_files()
            self._set_segments([])
            self._closed = True
