"""File helpers: an LRU of open segment files, atomic whole-file writes, directory fsync."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict

DEFAULT_MAX_OPEN_FILES = 1024


def fsync_dir(path: str) -> None:
    """fsync a directory so a rename or create in it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: str, data: bytes | str, *, fsync_dir: bool = True, fsync: bool = True
) -> None:
    """Replace the file at `path` whole with `data` (a str is written as UTF-8).

    The data goes to `path + ".tmp"`, is fsynced and renamed over `path`, then the directory
    is fsynced, so after a crash a reader finds the old file or the new one, never a mix.
    `fsync=False` skips the file's fsync and `fsync_dir=False` the directory's (the rename
    stays atomic for readers, but is no longer durable). If writing fails the temp file is
    removed and `path` is left as it was.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path + ".tmp"
    try:
        _write_file(tmp, data, fsync)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync_dir:
        _fsync_parent(path)


def _write_file(path: str, data: bytes, fsync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_parent(path: str) -> None:
    fsync_dir(os.path.dirname(path) or ".")


class CachedFile:
    """A file whose descriptor is opened on demand and may be closed by the cache when idle.

    Use `with f as fd:` (or pin()/unpin()) around every use of the descriptor: a pinned file
    is never closed by eviction, so its fd number cannot be recycled under the caller.
    """

    __slots__ = ("path", "cache", "_fd", "_pins", "_discard")

    def __init__(self, path: str, cache: FileCache) -> None:
        self.path = path
        self.cache = cache
        self._fd: int | None = None
        self._pins = 0
        self._discard = False

    def pin(self) -> int:
        """Open (or reuse) the descriptor and keep it open until unpin()."""
        return self.cache._pin(self)

    def unpin(self) -> None:
        """Release one pin; the descriptor may be closed later by eviction."""
        self.cache._unpin(self)

    def __enter__(self) -> int:
        return self.cache._pin(self)

    def __exit__(self, *exc: object) -> None:
        self.cache._unpin(self)

    def close(self) -> None:
        """Close the descriptor now, or as soon as the last pin is released."""
        self.cache._close(self)

    def rename(self, path: str) -> None:
        """Rename the file on disk (an open descriptor stays valid) and remember the new path."""
        os.replace(self.path, path)
        self.path = path

    @property
    def is_open(self) -> bool:
        """Whether a descriptor is open right now."""
        return self._fd is not None

    def __repr__(self) -> str:
        return f"CachedFile({self.path!r}, fd={self._fd}, pins={self._pins})"


class FileCache:
    """Keeps at most `max_open` unpinned descriptors open, closing the least recently used."""

    def __init__(self, max_open: int = DEFAULT_MAX_OPEN_FILES) -> None:
        if max_open < 1:
            raise ValueError("max_open must be at least 1")
        self.max_open = max_open
        self._lock = threading.Lock()
        self._open: OrderedDict[CachedFile, None] = OrderedDict()
        self.opens = 0  # descriptors opened so far (a statistic for tests and benchmarks)

    def file(self, path: str) -> CachedFile:
        """A handle for `path`; nothing is opened until it is used."""
        return CachedFile(path, self)

    @property
    def open_count(self) -> int:
        """Descriptors open right now."""
        return len(self._open)

    def _pin(self, f: CachedFile) -> int:
        with self._lock:
            fd = f._fd
            if fd is None:
                fd = os.open(f.path, os.O_RDWR | os.O_CLOEXEC)
                f._fd = fd
                f._discard = False
                self.opens += 1
                self._open[f] = None
                f._pins += 1
                self._evict()
            else:
                self._open.move_to_end(f)
                f._pins += 1
            return fd

    def _unpin(self, f: CachedFile) -> None:
        with self._lock:
            f._pins -= 1
            if f._pins == 0 and f._discard:
                self._close_locked(f)
            elif len(self._open) > self.max_open:
                self._evict()

    def _close(self, f: CachedFile) -> None:
        with self._lock:
            if f._pins:
                f._discard = True
            else:
                self._close_locked(f)

    def _close_locked(self, f: CachedFile) -> None:
        fd = f._fd
        f._discard = False
        if fd is not None:
            f._fd = None
            self._open.pop(f, None)
            os.close(fd)

    def _evict(self) -> None:
        excess = len(self._open) - self.max_open
        if excess <= 0:
            return
        victims = []
        for f in self._open:
            if f._pins == 0:
                victims.append(f)
                if len(victims) == excess:
                    break
        for f in victims:
            self._close_locked(f)

    def close_all(self) -> None:
        """Close every unpinned descriptor (pinned ones close when released)."""
        with self._lock:
            for f in list(self._open):
                if f._pins:
                    f._discard = True
                else:
                    self._close_locked(f)
