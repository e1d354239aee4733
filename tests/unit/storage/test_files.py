"""The bounded file-descriptor cache."""

from __future__ import annotations

import os

from strom.storage.files import FileCache


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_lru_bounds_open_descriptors(tmp_path) -> None:
    cache = FileCache(max_open=4)
    files = []
    for i in range(20):
        p = tmp_path / f"f{i}"
        p.write_bytes(bytes([i]) * 10)
        files.append(cache.file(str(p)))
    before = _open_fds()
    for f in files:
        with f as fd:
            assert os.pread(fd, 1, 0) == bytes([files.index(f)])
    assert cache.open_count == 4
    assert _open_fds() - before <= 4
    # The most recently used stay open.
    assert [f.is_open for f in files[-4:]] == [True] * 4
    assert not files[0].is_open
    cache.close_all()
    assert cache.open_count == 0


def test_pinned_files_are_not_evicted(tmp_path) -> None:
    cache = FileCache(max_open=1)
    a, b = (cache.file(str(tmp_path / n)) for n in "ab")
    for f in (a, b):
        with open(f.path, "wb") as out:
            out.write(b"x")
    fd_a = a.pin()
    with b as fd_b:
        assert a.is_open and b.is_open  # over the limit while both are pinned
        assert fd_a != fd_b
    assert not b.is_open  # evicted once unpinned (a is still pinned)
    a.close()  # deferred until unpinned
    assert a.is_open
    a.unpin()
    assert not a.is_open


def test_rename_keeps_descriptor(tmp_path) -> None:
    cache = FileCache()
    f = cache.file(str(tmp_path / "a"))
    (tmp_path / "a").write_bytes(b"hello")
    with f as fd:
        f.rename(str(tmp_path / "b"))
        assert os.pread(fd, 5, 0) == b"hello"
    f.close()
    with f as fd:
        assert os.pread(fd, 5, 0) == b"hello"
    assert f.path.endswith("b")
