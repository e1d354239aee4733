"""One log segment: a .log file of record batches with its sparse .index and .timeindex."""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from strom.protocol.errors import CorruptRecordError
from strom.protocol.records import HEADER_SIZE, LOG_OVERHEAD, MAGIC, BatchView, Record
from strom.storage.files import CachedFile, FileCache
from strom.storage.txn_index import TxnIndex

logger = logging.getLogger(__name__)

#: The RecordBatch v2 header: base offset, batch length, partition leader epoch, magic, crc,
#: attributes, last offset delta, base timestamp, max timestamp, producer id, producer epoch,
#: base sequence, records count.
HEADER = struct.Struct(">qiibIhiqqqhii")
H_BASE, H_LENGTH, H_EPOCH, H_MAGIC, H_CRC, H_ATTRS, H_DELTA = 0, 1, 2, 3, 4, 5, 6
H_BASE_TS, H_MAX_TS, H_PID, H_PEPOCH, H_SEQ, H_COUNT = 7, 8, 9, 10, 11, 12

#: .index entry: offset relative to the segment's base offset, byte position in the .log.
OFFSET_ENTRY = struct.Struct(">ii")
#: .timeindex entry: timestamp, relative offset.
TIME_ENTRY = struct.Struct(">qi")

NO_TIMESTAMP = -1
INT32_MAX = (1 << 31) - 1

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
TXN_INDEX_SUFFIX = ".txnindex"
DELETED_SUFFIX = ".deleted"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"

_SCAN_CHUNK = 16 * 1024
_RECOVER_CHUNK = 8 * 1024 * 1024


def segment_name(base_offset: int) -> str:
    """The 20-digit zero-padded file name stem Kafka gives a segment."""
    return f"{base_offset:020d}"


def parse_base_offset(stem: str) -> int | None:
    """The base offset in a segment file stem, or None if it is not one."""
    if len(stem) == 20 and stem.isdigit():
        return int(stem)
    return None


class IndexCorruptError(Exception):
    """An index file whose size or entries cannot be right."""


@dataclass(frozen=True, slots=True)
class SegmentRecovery:
    """What recovering one segment found."""

    batches: int
    valid_bytes: int
    truncated_bytes: int
    next_offset: int
    reason: str  # why the tail was truncated, "" if nothing was
    epochs: list[tuple[int, int]]  # (leader epoch, first offset) where the epoch rises


# -- sparse index entries in a buffer --------------------------------------------------------


def _floor(buf: bytes | bytearray | mmap.mmap, entry: struct.Struct, key: int, field: int) -> int:
    """Index of the last entry whose `field` is <= key (fields are non-decreasing), or -1."""
    size = entry.size
    unpack = entry.unpack_from
    lo, hi = 0, len(buf) // size - 1
    found = -1
    while lo <= hi:
        mid = (lo + hi) >> 1
        if unpack(buf, mid * size)[field] <= key:
            found = mid
            lo = mid + 1
        else:
            hi = mid - 1
    return found


class SparseIndex:
    """One index file's entries: a bytearray while its segment is active, else a read-only
    mmap loaded on first use and released when the index cache evicts it."""

    __slots__ = ("path", "entry", "buf", "persisted")

    def __init__(self, path: str, entry: struct.Struct) -> None:
        self.path = path
        self.entry = entry
        self.buf: bytearray | bytes | mmap.mmap | None = None
        self.persisted = 0  # leading entries known to be in the file already

    @property
    def count(self) -> int:
        buf = self.buf
        return 0 if buf is None else len(buf) // self.entry.size

    def load(self, writable: bool) -> bytearray | bytes | mmap.mmap:
        """Read the file (FileNotFoundError if missing; IndexCorruptError on a bad size)."""
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size % self.entry.size:
                raise IndexCorruptError(f"{self.path}: size {size} is not whole entries")
            if writable:
                buf: bytearray | bytes | mmap.mmap = bytearray(f.read())
            elif size == 0:
                buf = b""
            else:
                buf = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
        self.buf = buf
        self.persisted = size // self.entry.size
        return buf

    def reset(self) -> bytearray:
        """Start over empty (the file is rewritten on the next persist)."""
        buf = bytearray()
        self.buf = buf
        self.persisted = 0
        return buf

    def writable(self) -> bytearray:
        """The entries as a bytearray that appends can extend."""
        buf = self.buf
        if not isinstance(buf, bytearray):
            buf = bytearray(buf if buf is not None else b"")
            self.buf = buf
        return buf

    def last(self) -> tuple[int, int] | None:
        buf = self.buf
        if not buf:
            return None
        return self.entry.unpack_from(buf, len(buf) - self.entry.size)

    def truncate_entries(self, keep: int) -> None:
        buf = self.writable()
        del buf[keep * self.entry.size :]
        self.persisted = min(self.persisted, keep)

    def persist(self, fsync: bool) -> None:
        """Write the entries not yet in the file, and trim the file to the entries held."""
        buf = self.buf
        if buf is None:
            return
        esize = self.entry.size
        n = len(buf) // esize
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            start = self.persisted * esize
            if n > self.persisted:
                _pwrite_all(fd, memoryview(buf)[start : n * esize], start)
            if os.fstat(fd).st_size != n * esize:
                os.ftruncate(fd, n * esize)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self.persisted = n

    def release(self) -> None:
        """Drop the loaded entries (an mmap is unmapped once no lookup still holds it)."""
        self.buf = None
        self.persisted = 0


class IndexCache:
    """Bounds how many sealed segments keep their indexes loaded (mmaps are a finite resource)."""

    def __init__(self, max_loaded: int = 4096) -> None:
        self.max_loaded = max_loaded
        self._lock = threading.Lock()
        self._loaded: OrderedDict[Segment, None] = OrderedDict()

    def touch(self, segment: Segment) -> None:
        victims = []
        with self._lock:
            loaded = self._loaded
            if segment in loaded:
                loaded.move_to_end(segment)
                return
            loaded[segment] = None
            while len(loaded) > self.max_loaded:
                victims.append(loaded.popitem(last=False)[0])
        for victim in victims:
            victim._release_indexes()

    def forget(self, segment: Segment) -> None:
        with self._lock:
            self._loaded.pop(segment, None)

    @property
    def loaded_count(self) -> int:
        return len(self._loaded)


# -- file helpers -----------------------------------------------------------------------------


def _pwrite_all(fd: int, data: memoryview, position: int) -> None:
    """pwrite until every byte is written (a full disk may write part, then raise)."""
    view = data
    while view:
        n = os.pwrite(fd, view, position)
        if n <= 0:
            raise OSError(28, "no progress writing")  # treat like ENOSPC
        view = view[n:]
        position += n


def pread_exact(fd: int, length: int, position: int) -> bytes:
    """pread exactly `length` bytes (fewer only at end of file)."""
    data = os.pread(fd, length, position)
    if len(data) == length or not data:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        more = os.pread(fd, length - got, position + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def scan_headers(fd: int, start: int, end: int) -> Iterator[tuple[int, tuple]]:
    """(position, header fields) of each whole batch laid out from `start` up to `end`.

    Stops quietly at the first header that is cut off, claims an impossible length, has the
    wrong magic, or whose batch would run past `end`. Only headers are read, in small chunks.
    """
    unpack = HEADER.unpack_from
    pos = start
    buf = b""
    buf_pos = start
    while pos + HEADER_SIZE <= end:
        off = pos - buf_pos
        if off + HEADER_SIZE > len(buf):
            buf = os.pread(fd, min(_SCAN_CHUNK, end - pos), pos)
            buf_pos = pos
            off = 0
            if len(buf) < HEADER_SIZE:
                return
        h = unpack(buf, off)
        size = h[H_LENGTH] + LOG_OVERHEAD
        if size < HEADER_SIZE or pos + size > end or h[H_MAGIC] != MAGIC:
            return
        yield pos, h
        pos += size


# -- the segment ------------------------------------------------------------------------------


class Segment:
    """A .log file of batches with its sparse offset and time indexes.

    The active (last) segment keeps its index entries in memory and writes them out on
    flush, roll and close; sealed segments load theirs lazily (mmap) on the first lookup.
    """

    def __init__(
        self,
        directory: str,
        base_offset: int,
        files: FileCache,
        indexes: IndexCache,
        index_interval_bytes: int = 4096,
        context: str = "",
        created_ms: int | None = None,
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        stem = os.path.join(directory, segment_name(base_offset))
        self.file: CachedFile = files.file(stem + LOG_SUFFIX)
        self.offset_index = SparseIndex(stem + INDEX_SUFFIX, OFFSET_ENTRY)
        self.time_index = SparseIndex(stem + TIME_INDEX_SUFFIX, TIME_ENTRY)
        self.txn_index = TxnIndex(stem + TXN_INDEX_SUFFIX)
        self._indexes = indexes
        self.index_interval_bytes = index_interval_bytes
        self.context = context or directory
        self.active = False
        self.unflushed = False
        self._size: int | None = None
        self._lock = threading.Lock()  # guards lazy index loading and rebuilds
        # Known for the active segment, or once loaded/rebuilt for a sealed one.
        self.next_offset: int | None = None
        self._max_ts: int | None = None
        self._offset_of_max_ts = -1
        self._last_time_entry_ts = NO_TIMESTAMP
        self.rolling_base_timestamp: int | None = None
        self.bytes_since_index = 0
        self.created_ms = int(time.time() * 1000) if created_ms is None else created_ms

    def __repr__(self) -> str:
        return f"Segment({self.context} base={self.base_offset} size={self._size})"

    # -- paths -------------------------------------------------------------------------------

    @property
    def log_path(self) -> str:
        return self.file.path

    def all_paths(self) -> list[str]:
        return [self.file.path, self.offset_index.path, self.time_index.path, self.txn_index.path]

    # -- creating and opening ----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: str,
        base_offset: int,
        files: FileCache,
        indexes: IndexCache,
        index_interval_bytes: int,
        context: str = "",
        created_ms: int | None = None,
    ) -> Segment:
        """A new, empty, active segment (its files are created on disk now)."""
        seg = cls(directory, base_offset, files, indexes, index_interval_bytes, context, created_ms)
        for path in seg.all_paths():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            os.close(fd)
        seg._size = 0
        seg.active = True
        seg.next_offset = base_offset
        seg.offset_index.reset()
        seg.time_index.reset()
        seg._max_ts = NO_TIMESTAMP
        seg._offset_of_max_ts = -1
        seg._last_time_entry_ts = NO_TIMESTAMP
        return seg

    @property
    def size(self) -> int:
        """Bytes in the .log file."""
        size = self._size
        if size is None:
            size = self._size = os.stat(self.file.path).st_size
        return size

    def open_active(self) -> bool:
        """Make this (last) segment the active one after a clean shutdown: load its indexes,
        find its end offset. Returns False if its tail is not clean (it needs recover())."""
        self.active = True
        self._indexes.forget(self)
        size = self._size = os.stat(self.file.path).st_size
        try:
            self._load_indexes(writable=True)
        except (OSError, IndexCorruptError) as e:
            logger.warning(
                "%s: rebuilding indexes of active segment %d: %s", self.context, self.base_offset, e
            )
            return self._rebuild_indexes(size)
        return self._restore_tail_state(size)

    def _load_indexes(self, writable: bool) -> None:
        """Load both index files and sanity check them (raises OSError / IndexCorruptError)."""
        oidx = self.offset_index.load(writable)
        tidx = self.time_index.load(writable)
        base = self.base_offset
        size = self.size
        n = len(oidx) // 8
        if n:
            first_rel, first_pos = OFFSET_ENTRY.unpack_from(oidx, 0)
            last_rel, last_pos = OFFSET_ENTRY.unpack_from(oidx, (n - 1) * 8)
            if first_rel < 0 or last_rel < first_rel or last_pos < first_pos or last_pos >= size:
                raise IndexCorruptError(f"{self.offset_index.path}: entries out of range")
        m = len(tidx) // 12
        if m:
            first_ts, first_rel = TIME_ENTRY.unpack_from(tidx, 0)
            last_ts, last_rel = TIME_ENTRY.unpack_from(tidx, (m - 1) * 12)
            if first_rel < 0 or last_rel < first_rel or last_ts < first_ts:
                raise IndexCorruptError(f"{self.time_index.path}: entries out of range")
            if self._max_ts is None or not self.active:
                self._max_ts = last_ts
                self._offset_of_max_ts = base + last_rel
            self._last_time_entry_ts = last_ts
        else:
            self._last_time_entry_ts = NO_TIMESTAMP
            if self._max_ts is None:
                self._max_ts = NO_TIMESTAMP
                self._offset_of_max_ts = -1
        self._verify_last_entries(oidx, tidx, size)

    def _verify_last_entries(
        self, oidx: bytearray | bytes | mmap.mmap, tidx: bytearray | bytes | mmap.mmap, size: int
    ) -> None:
        """The last offset entry must point at a batch ending at its offset, and the last time
        entry at a batch with that max timestamp (else IndexCorruptError)."""
        base = self.base_offset
        n = len(oidx) // 8
        m = len(tidx) // 12
        if not n and not m:
            return
        with self.file as fd:
            if n:
                rel, pos = OFFSET_ENTRY.unpack_from(oidx, (n - 1) * 8)
                head = pread_exact(fd, HEADER_SIZE, pos)
                if len(head) < HEADER_SIZE:
                    raise IndexCorruptError(f"{self.offset_index.path}: last entry past the log")
                h = HEADER.unpack_from(head, 0)
                if h[H_MAGIC] != MAGIC or h[H_BASE] + h[H_DELTA] != base + rel:
                    raise IndexCorruptError(f"{self.offset_index.path}: last entry mismatch")
            if m:
                ts, rel = TIME_ENTRY.unpack_from(tidx, (m - 1) * 12)
                i = _floor(oidx, OFFSET_ENTRY, rel, 0)
                start = OFFSET_ENTRY.unpack_from(oidx, i * 8)[1] if i >= 0 else 0
                for _pos, h in scan_headers(fd, start, size):
                    last_offset = h[H_BASE] + h[H_DELTA]
                    if last_offset >= base + rel:
                        if last_offset == base + rel and h[H_MAX_TS] == ts:
                            return
                        break
                raise IndexCorruptError(f"{self.time_index.path}: last entry mismatch")

    def _restore_tail_state(self, size: int) -> bool:
        """Recompute the active state by scanning from the last offset index entry."""
        last = self.offset_index.last()
        start = last[1] if last is not None else 0
        max_ts = self._last_time_entry_ts
        last_entry = self.time_index.last()
        offset_of_max = self.base_offset + last_entry[1] if last_entry is not None else -1
        next_offset = self.base_offset
        if last is not None:
            next_offset = self.base_offset + last[0]
        end = start
        first = True
        with self.file as fd:
            for pos, h in scan_headers(fd, start, size):
                last_offset = h[H_BASE] + h[H_DELTA]
                if first and last is not None and last_offset != self.base_offset + last[0]:
                    break  # the index does not match the log
                first = False
                if h[H_MAX_TS] > max_ts:
                    max_ts = h[H_MAX_TS]
                    offset_of_max = last_offset
                next_offset = last_offset + 1
                end = pos + h[H_LENGTH] + LOG_OVERHEAD
            head = pread_exact(fd, HEADER_SIZE, 0) if size >= HEADER_SIZE else b""
        if end != size:
            return False
        self._max_ts = max_ts
        self._offset_of_max_ts = offset_of_max
        self.next_offset = next_offset
        self.bytes_since_index = size - start
        self.rolling_base_timestamp = HEADER.unpack_from(head, 0)[H_MAX_TS] if head else None
        return True

    def _rebuild_indexes(self, size: int) -> bool:
        """Rebuild both indexes from the batch headers in the log (no CRC check).
        Returns whether the headers run cleanly to the end of the file."""
        self.offset_index.reset()
        self.time_index.reset()
        self._max_ts = NO_TIMESTAMP
        self._offset_of_max_ts = -1
        self._last_time_entry_ts = NO_TIMESTAMP
        self.bytes_since_index = 0
        self.rolling_base_timestamp = None
        next_offset = self.base_offset
        end = 0
        with self.file as fd:
            for pos, h in scan_headers(fd, 0, size):
                if self.rolling_base_timestamp is None:
                    self.rolling_base_timestamp = h[H_MAX_TS]
                last_offset = h[H_BASE] + h[H_DELTA]
                batch_size = h[H_LENGTH] + LOG_OVERHEAD
                self._index_batch(pos, last_offset, h[H_MAX_TS], batch_size)
                next_offset = last_offset + 1
                end = pos + batch_size
        self.next_offset = next_offset
        if not self.active:
            self._add_final_time_entry()
            try:
                self.offset_index.persist(fsync=False)
                self.time_index.persist(fsync=False)
            except OSError as e:
                logger.warning("%s: cannot write rebuilt index: %s", self.context, e)
        logger.info(
            "%s: rebuilt indexes of segment %d (%d offset entries, %d bytes scanned)",
            self.context,
            self.base_offset,
            self.offset_index.count,
            end,
        )
        return end == size

    def _ensure_indexes(
        self,
    ) -> tuple[bytearray | bytes | mmap.mmap, bytearray | bytes | mmap.mmap]:
        """Both index buffers, loading (or rebuilding) them on first use."""
        oidx, tidx = self.offset_index.buf, self.time_index.buf
        if oidx is not None and tidx is not None:
            if not self.active:
                self._indexes.touch(self)
            return oidx, tidx
        with self._lock:
            oidx, tidx = self.offset_index.buf, self.time_index.buf
            if oidx is None or tidx is None:
                try:
                    self._load_indexes(writable=False)
                except (OSError, IndexCorruptError) as e:
                    logger.warning(
                        "%s: index of segment %d unusable (%s); rebuilding",
                        self.context,
                        self.base_offset,
                        e,
                    )
                    self._rebuild_indexes(self.size)
                oidx, tidx = self.offset_index.buf, self.time_index.buf
        if not self.active:
            self._indexes.touch(self)
        assert oidx is not None and tidx is not None
        return oidx, tidx

    def _release_indexes(self) -> None:
        if not self.active:
            self.offset_index.release()
            self.time_index.release()

    def _index_corrupt(self, why: str) -> None:
        """A lookup found the index disagreeing with the log: rebuild it."""
        logger.warning(
            "%s: index of segment %d is corrupt (%s); rebuilding",
            self.context,
            self.base_offset,
            why,
        )
        with self._lock:
            active = self.active
            self._rebuild_indexes(self.size)
            self.active = active

    # -- appending (active segment only) -----------------------------------------------------

    def _index_batch(self, position: int, last_offset: int, max_ts: int, size: int) -> None:
        if max_ts > self._max_ts:  # type: ignore[operator]
            self._max_ts = max_ts
            self._offset_of_max_ts = last_offset
        if self.bytes_since_index > self.index_interval_bytes:
            base = self.base_offset
            self.offset_index.writable().extend(OFFSET_ENTRY.pack(last_offset - base, position))
            if self._max_ts > self._last_time_entry_ts:  # type: ignore[operator]
                self.time_index.writable().extend(
                    TIME_ENTRY.pack(self._max_ts, self._offset_of_max_ts - base)
                )
                self._last_time_entry_ts = self._max_ts  # type: ignore[assignment]
            self.bytes_since_index = 0
        self.bytes_since_index += size

    def append(self, data: memoryview, batches: list[tuple[int, int, int]]) -> int:
        """Write `data` (whole batches, offsets already assigned) at the end with one pwrite
        and index it. `batches` holds (last offset, max timestamp, size) per batch.
        Returns the position written at. On an OSError the file is cut back and it re-raises.
        """
        position = self.size
        with self.file as fd:
            try:
                _pwrite_all(fd, data, position)
            except OSError:
                try:
                    os.ftruncate(fd, position)
                except OSError as e2:
                    logger.error("%s: cannot truncate after failed write: %s", self.context, e2)
                raise
        if self.rolling_base_timestamp is None and position == 0:
            self.rolling_base_timestamp = batches[0][1]
        pos = position
        for last_offset, max_ts, size in batches:
            self._index_batch(pos, last_offset, max_ts, size)
            pos += size
        self._size = pos
        self.next_offset = batches[-1][0] + 1
        self.unflushed = True
        return position

    def index_full(self, max_offset_entries: int, max_time_entries: int) -> bool:
        """Whether either index has reached its maximum number of entries."""
        return (
            self.offset_index.count >= max_offset_entries
            or self.time_index.count >= max_time_entries
        )

    def _add_final_time_entry(self) -> None:
        max_ts = self._max_ts
        if max_ts is not None and max_ts > self._last_time_entry_ts and self._offset_of_max_ts >= 0:
            self.time_index.writable().extend(
                TIME_ENTRY.pack(max_ts, self._offset_of_max_ts - self.base_offset)
            )
            self._last_time_entry_ts = max_ts

    def seal(self) -> None:
        """This segment stops being the active one: final time index entry, indexes to disk."""
        self._add_final_time_entry()
        self.active = False
        try:
            self.offset_index.persist(fsync=False)
            self.time_index.persist(fsync=False)
        except OSError as e:
            logger.warning(
                "%s: cannot write index of segment %d: %s (will be rebuilt)",
                self.context,
                self.base_offset,
                e,
            )
        self._indexes.touch(self)

    def flush(self) -> None:
        """fsync the log file and write (and fsync) the index entries."""
        self.write_indexes()
        self.sync()
        self.unflushed = False

    def write_indexes(self) -> None:
        """Write index entries not yet in their files (no fsync): under the log's lock, since
        appends grow the entries."""
        if self.offset_index.buf is not None:
            self.offset_index.persist(fsync=False)
            self.time_index.persist(fsync=False)

    def sync(self) -> None:
        """fsync the log file and the index files as written; safe without the log's lock
        (appends may go on; a segment deleted meanwhile is skipped)."""
        try:
            with self.file as fd:
                os.fsync(fd)
        except FileNotFoundError:
            return
        for path in (self.offset_index.path, self.time_index.path, self.txn_index.path):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- lookups -----------------------------------------------------------------------------

    @property
    def max_timestamp(self) -> int:
        """Largest batch max timestamp in the segment (NO_TIMESTAMP if none)."""
        if self._max_ts is None:
            self._ensure_indexes()
        return self._max_ts if self._max_ts is not None else NO_TIMESTAMP

    @property
    def offset_of_max_timestamp(self) -> int:
        """Last offset of the first batch that reached max_timestamp (-1 if none)."""
        if self._max_ts is None:
            self._ensure_indexes()
        return self._offset_of_max_ts

    def largest_timestamp(self) -> int:
        """max_timestamp, or the file's modification time if no batch has a timestamp."""
        ts = self.max_timestamp
        if ts >= 0:
            return ts
        try:
            return int(os.stat(self.file.path).st_mtime * 1000)
        except FileNotFoundError:
            return NO_TIMESTAMP

    def translate(self, offset: int, size: int | None = None) -> tuple[int, tuple] | None:
        """Position and header of the first batch whose last offset is >= `offset`."""
        end = self.size if size is None else size
        for _attempt in range(2):
            oidx, _ = self._ensure_indexes()
            i = _floor(oidx, OFFSET_ENTRY, offset - self.base_offset, 0)
            if i >= 0:
                rel, pos = OFFSET_ENTRY.unpack_from(oidx, i * 8)
                expect = self.base_offset + rel
            else:
                pos, expect = 0, -1
            first = True
            mismatch = False
            with self.file as fd:
                for p, h in scan_headers(fd, pos, end):
                    last_offset = h[H_BASE] + h[H_DELTA]
                    if first and expect >= 0 and last_offset != expect:
                        mismatch = True
                        break
                    first = False
                    if last_offset >= offset:
                        return p, h
                else:
                    if first and expect >= 0 and pos < end:
                        mismatch = True  # the index points at no batch
            if not mismatch:
                return None
            self._index_corrupt(f"entry for offset {expect} at position {pos}")
        return None

    def read(
        self, offset: int, max_bytes: int, max_offset: int | None, min_one_message: bool
    ) -> tuple[int, int, int, int] | None:
        """Byte range to send for a fetch at `offset`: (position, length, first batch's base
        offset, offset after the last batch in the range).

        None if no batch here reaches `offset` (the caller tries the next segment). Length 0
        means nothing may be sent (capped by max_offset, or max_bytes without min_one).
        """
        size = self.size
        found = self.translate(offset, size)
        if found is None:
            return None
        start, h = found
        first_base = h[H_BASE]
        first_next = h[H_BASE] + h[H_DELTA] + 1
        first_end = start + h[H_LENGTH] + LOG_OVERHEAD
        if max_offset is not None and first_next > max_offset:
            return start, 0, first_base, offset
        limit = size
        if max_offset is not None and (self.next_offset is None or max_offset < self.next_offset):
            cap = self.translate(max_offset, size)
            if cap is not None:
                limit = cap[0]
        target = min(limit, start + max(max_bytes, 0))
        if first_end > target:
            if min_one_message and first_end <= limit:
                return start, first_end - start, first_base, first_next
            return start, 0, first_base, offset
        # Align the end to a batch boundary: start from the last index entry before it.
        oidx, _ = self._ensure_indexes()
        p0 = start
        j = _floor(oidx, OFFSET_ENTRY, target, 1)
        if j >= 0:
            pos_j = OFFSET_ENTRY.unpack_from(oidx, j * 8)[1]
            if pos_j > start:
                p0 = pos_j
        end = p0
        last_h = None
        with self.file as fd:
            for p, hh in scan_headers(fd, p0, target):
                end = p + hh[H_LENGTH] + LOG_OVERHEAD
                last_h = hh
            if last_h is None and p0 > start:
                # The range ends right before p0: find the batch that ends there.
                q0 = start
                if j >= 1:
                    q0 = max(start, OFFSET_ENTRY.unpack_from(oidx, (j - 1) * 8)[1])
                for _p, hh in scan_headers(fd, q0, p0):
                    last_h = hh
        if last_h is None or end <= start:
            return start, first_end - start, first_base, first_next
        return start, end - start, first_base, last_h[H_BASE] + last_h[H_DELTA] + 1

    def read_batch(self, position: int, header: tuple) -> BatchView:
        """The whole batch at `position` (its header already read) as a BatchView."""
        size = header[H_LENGTH] + LOG_OVERHEAD
        with self.file as fd:
            data = pread_exact(fd, size, position)
        return BatchView(data)

    def find_offset_by_timestamp(self, timestamp: int, start_offset: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record at or after `start_offset` whose timestamp
        is >= `timestamp`, or None if this segment has none."""
        if self.max_timestamp < timestamp:
            return None
        _, tidx = self._ensure_indexes()
        j = _floor(tidx, TIME_ENTRY, timestamp, 0)
        from_offset = self.base_offset
        if j >= 0:
            from_offset = self.base_offset + TIME_ENTRY.unpack_from(tidx, j * 12)[1]
        from_offset = max(from_offset, start_offset)
        found = self.translate(from_offset)
        if found is None:
            return None
        size = self.size
        with self.file as fd:
            for pos, h in scan_headers(fd, found[0], size):
                if h[H_MAX_TS] < timestamp or h[H_BASE] + h[H_DELTA] < start_offset:
                    continue
                for record in self._records(fd, pos, h):
                    if record.timestamp >= timestamp and record.offset >= start_offset:
                        return record.offset, record.timestamp
        return None

    def record_with_max_timestamp(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record holding this segment's max timestamp."""
        max_ts = self.max_timestamp
        offset = self.offset_of_max_timestamp
        if max_ts < 0 or offset < 0:
            return None
        found = self.translate(offset)
        if found is None:
            return None
        pos, h = found
        with self.file as fd:
            for record in self._records(fd, pos, h):
                if record.timestamp == max_ts:
                    return record.offset, record.timestamp
        return offset, max_ts

    def _records(self, fd: int, pos: int, h: tuple) -> Iterator[Record]:
        data = pread_exact(fd, h[H_LENGTH] + LOG_OVERHEAD, pos)
        try:
            yield from BatchView(data).records()
        except CorruptRecordError as e:
            logger.warning(
                "%s: undecodable batch at %d in segment %d: %s",
                self.context,
                pos,
                self.base_offset,
                e,
            )

    def batches(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, tuple]]:
        """(position, header) of every batch in [start, end) of the log file."""
        size = self.size if end is None else end
        with self.file as fd:
            yield from scan_headers(fd, start, size)

    # -- recovery and truncation -------------------------------------------------------------

    def recover(self, max_batch_bytes: int | None = None) -> SegmentRecovery:
        """Verify every batch (length, magic, CRC, increasing offsets), rebuild the indexes,
        and truncate the file at the first bad or incomplete batch."""
        self.active = True
        self._indexes.forget(self)
        self.offset_index.reset()
        self.time_index.reset()
        self._max_ts = NO_TIMESTAMP
        self._offset_of_max_ts = -1
        self._last_time_entry_ts = NO_TIMESTAMP
        self.bytes_since_index = 0
        self.rolling_base_timestamp = None
        size = self._size = os.stat(self.file.path).st_size
        next_offset = self.base_offset
        epochs: list[tuple[int, int]] = []
        last_epoch = -1
        batches = 0
        reason = ""
        unpack = HEADER.unpack_from
        buf = bytearray(min(_RECOVER_CHUNK, max(size, HEADER_SIZE)))
        view = memoryview(buf)
        buf_start = 0
        buf_len = 0
        pos = 0
        with self.file as fd:
            while pos < size:
                time.sleep(0)  # recovery runs beside the event loop: hand over the interpreter
                if size - pos < HEADER_SIZE:
                    reason = f"torn batch header ({size - pos} bytes)"
                    break
                if pos + HEADER_SIZE > buf_start + buf_len:
                    buf_start, buf_len = (
                        pos,
                        os.preadv(fd, [view[: min(len(buf), size - pos)]], pos),
                    )
                    if buf_len < HEADER_SIZE:
                        reason = "short read"
                        break
                off = pos - buf_start
                h = unpack(view, off)
                bsize = h[H_LENGTH] + LOG_OVERHEAD
                if bsize < HEADER_SIZE or h[H_MAGIC] != MAGIC:
                    reason = f"impossible batch header (length {h[H_LENGTH]}, magic {h[H_MAGIC]})"
                    break
                if max_batch_bytes is not None and bsize > max_batch_bytes:
                    reason = f"batch length {bsize} over the {max_batch_bytes}-byte limit"
                    break
                if pos + bsize > size:
                    reason = f"torn batch ({size - pos} of {bsize} bytes)"
                    break
                if pos + bsize > buf_start + buf_len:
                    if bsize > len(buf):
                        buf = bytearray(bsize)
                        view = memoryview(buf)
                    buf_start, buf_len = (
                        pos,
                        os.preadv(fd, [view[: min(len(buf), size - pos)]], pos),
                    )
                    if buf_len < bsize:
                        reason = "short read"
                        break
                    off = 0
                base = h[H_BASE]
                delta = h[H_DELTA]
                if base < next_offset or delta < 0 or base + delta - self.base_offset > INT32_MAX:
                    reason = f"offsets out of order (batch {base}+{delta} after {next_offset - 1})"
                    break
                if not BatchView(view[off : off + bsize]).crc_valid():
                    reason = f"CRC mismatch in batch at offset {base}"
                    break
                if self.rolling_base_timestamp is None:
                    self.rolling_base_timestamp = h[H_MAX_TS]
                epoch = h[H_EPOCH]
                if epoch >= 0 and epoch > last_epoch:
                    epochs.append((epoch, base))
                    last_epoch = epoch
                next_offset = base + delta + 1
                self._index_batch(pos, base + delta, h[H_MAX_TS], bsize)
                batches += 1
                pos += bsize
            truncated = size - pos
            if truncated:
                os.ftruncate(fd, pos)
        del view
        self._size = pos
        self.next_offset = next_offset
        return SegmentRecovery(batches, pos, truncated, next_offset, reason, epochs)

    def truncate_to(self, offset: int) -> int:
        """Drop every batch whose last offset is >= `offset`; this becomes the active
        segment. Returns the bytes removed."""
        size = self.size
        self._ensure_indexes()
        found = self.translate(offset, size)
        self.active = True
        self._indexes.forget(self)
        if found is None:
            removed = 0
            new_size = size
        else:
            new_size = found[0]
            with self.file as fd:
                os.ftruncate(fd, new_size)
            removed = size - new_size
            self._size = new_size
        base = self.base_offset
        oidx = self.offset_index.writable()
        self.offset_index.truncate_entries(_floor(oidx, OFFSET_ENTRY, offset - base - 1, 0) + 1)
        tidx = self.time_index.writable()
        self.time_index.truncate_entries(_floor(tidx, TIME_ENTRY, offset - base - 1, 1) + 1)
        last_t = self.time_index.last()
        self._last_time_entry_ts = last_t[0] if last_t is not None else NO_TIMESTAMP
        self.txn_index.truncate_to(offset)
        if not self._restore_tail_state(new_size):
            self._rebuild_indexes(new_size)
        self.unflushed = True
        return removed

    # -- closing and deleting ----------------------------------------------------------------

    def close(self) -> None:
        """Write out the index entries of an active segment and close the file."""
        if self.active:
            self._add_final_time_entry()
            try:
                self.offset_index.persist(fsync=False)
                self.time_index.persist(fsync=False)
            except OSError as e:
                logger.warning("%s: cannot write index on close: %s", self.context, e)
        self._indexes.forget(self)
        self.offset_index.release()
        self.time_index.release()
        self.file.close()

    def rename_files(self, old_suffix: str, new_suffix: str) -> None:
        """Rename the files from `<stem><ext><old_suffix>` to `<stem><ext><new_suffix>`
        (missing index files are skipped)."""

        def swap(path: str) -> str:
            return (
                path[: len(path) - len(old_suffix)] + new_suffix
                if old_suffix
                else path + new_suffix
            )

        for idx in (self.offset_index, self.time_index, self.txn_index):
            new = swap(idx.path)
            with contextlib.suppress(FileNotFoundError):
                os.replace(idx.path, new)
            idx.path = new
        self.file.rename(swap(self.file.path))

    def delete_files(self) -> None:
        """Unlink the files (an open descriptor stays readable until closed)."""
        self._indexes.forget(self)
        self.offset_index.release()
        self.time_index.release()
        self.file.close()
        for path in self.all_paths():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
