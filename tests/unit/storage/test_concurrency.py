"""Bounded index memory, reads that outlive deletes, and the cleaner racing the writer."""

from __future__ import annotations

import os
import threading

from strom.protocol.records import build_batch
from strom.storage.cleaner import LogCleaner
from strom.storage.config import LogConfig
from strom.storage.files import FileCache
from strom.storage.log import Log
from strom.storage.segment import IndexCache

from .util import batches_of, make_batch, offsets, records_of


def test_loaded_sealed_indexes_are_bounded(tmp_path) -> None:
    cache = IndexCache(max_loaded=2)
    config = LogConfig.from_props({"segment.bytes": "800", "index.interval.bytes": "100"})
    log = Log(str(tmp_path / "t-0"), config, indexes=cache, files=FileCache(3))
    for _ in range(100):
        log.append(make_batch(2))
    log.close()
    log = Log(str(tmp_path / "t-0"), config, indexes=cache, files=FileCache(3))
    assert len(log.segments) > 10
    for off in range(0, 200, 5):
        assert batches_of(log.read(off, 1).read_bytes())[0].last_offset >= off
        assert cache.loaded_count <= 2
    sealed = [s for s in log.segments[:-1] if s.offset_index.buf is not None]
    assert len(sealed) <= 2
    log.close()


def test_a_pinned_read_survives_the_segment_being_deleted(make_log) -> None:
    log = make_log(segment_bytes=600, retention_ms=1, file_delete_delay_ms=0)
    for _ in range(20):
        log.append(make_batch(2, timestamp=1))
    log.high_watermark = log.log_end_offset
    r = log.read(0, 1 << 20)
    expected = r.read_bytes()
    with r.open() as fd:  # e.g. around an os.sendfile in the broker
        assert log.delete_old_segments(now_ms=10**9) > 0
        assert not os.path.exists(r.path)
        assert os.pread(fd, r.length, r.position) == expected


def test_cleaner_thread_races_appends_and_reads(make_log) -> None:
    log = make_log(
        cleanup_policy="compact",
        segment_bytes=2000,
        min_cleanable_dirty_ratio=0.1,
        file_delete_delay_ms=0,
    )
    stop = threading.Event()
    errors: list[BaseException] = []
    cleanings = [0]

    def clean() -> None:
        cleaner = LogCleaner()
        try:
            while not stop.is_set():
                if cleaner.clean(log, now_ms=1) is not None:
                    cleanings[0] += 1
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=clean)
    t.start()
    latest: dict[bytes, bytes] = {}
    try:
        for i in range(1500):
            k, v = b"k%d" % (i % 37), b"v%d" % i
            log.append(build_batch([(k, v)], timestamp=1))
            latest[k] = v
            log.high_watermark = log.log_end_offset
            if i % 50 == 0:
                got = offsets(records_of(log))
                assert got == sorted(got)
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert cleanings[0] > 0
    final = {}
    for _o, k, v in records_of(log):
        final[k] = v
    assert final == latest
