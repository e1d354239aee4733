"""The log manager: data dir layout, lazy open, configs, checkpoints, shutdown markers."""

from __future__ import annotations

import os
import time

import pytest

from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.config import LogConfig
from strom.storage.manager import CLEAN_SHUTDOWN_FILE, LogManager

from .util import make_batch, offsets, records_of


def test_create_append_reopen(tmp_path) -> None:
    d = str(tmp_path / "data")
    with LogManager(d) as m:
        log = m.create_log("orders", 0)
        m.create_log("orders", 1)
        assert m.create_log("orders", 0) is log
        log.append(make_batch(3))
        log.high_watermark = 3
        assert sorted(m.partitions()) == [("orders", 0), ("orders", 1)]
    assert os.path.exists(os.path.join(d, CLEAN_SHUTDOWN_FILE))
    assert sorted(os.listdir(os.path.join(d, "orders-0")))[:2] == [
        "00000000000000000000.index",
        "00000000000000000000.log",
    ]
    with open(os.path.join(d, "replication-offset-checkpoint")) as f:
        assert f.read() == "0\n2\norders 0 3\norders 1 0\n"
    with open(os.path.join(d, "recovery-point-offset-checkpoint")) as f:
        assert f.read() == "0\n2\norders 0 3\norders 1 0\n"
    m = LogManager(d)
    assert m.had_clean_shutdown
    assert not os.path.exists(os.path.join(d, CLEAN_SHUTDOWN_FILE))  # a crash now is unclean
    log = m.get_log("orders", 0)
    assert log is not None and not log.loaded  # lazy
    assert log.high_watermark == 3
    assert offsets(records_of(log)) == [0, 1, 2]
    assert m.get_log("orders", 7) is None
    m.close()


def test_topic_configs_are_validated_persisted_and_applied(tmp_path) -> None:
    d = str(tmp_path / "data")
    defaults = LogConfig.from_props({"retention.ms": "1000"})
    m = LogManager(d, defaults)
    with pytest.raises(KafkaError) as exc:
        m.create_log("t", 0, {"segment.bytes": "nope"})
    assert exc.value.code == ErrorCode.INVALID_CONFIG
    with pytest.raises(KafkaError) as exc:
        m.create_log("bad/name", 0)
    assert exc.value.code == ErrorCode.INVALID_TOPIC_EXCEPTION
    log = m.create_log("t", 0, {"cleanup.policy": "compact", "segment.bytes": "2048"})
    assert log.config.compact and log.config.segment_bytes == 2048
    assert log.config.retention_ms == 1000  # from the defaults
    m.alter_topic_config("t", {"segment.bytes": "4096"}, delete=["cleanup.policy"])
    assert log.config.segment_bytes == 4096 and not log.config.compact
    m.close()
    m = LogManager(d, defaults)
    assert m.topic_overrides("t") == {"segment.bytes": "4096"}
    assert m.get_log("t", 0).config.segment_bytes == 4096
    assert m.topic_config("other").retention_ms == 1000
    m.close()


def test_delete_log_and_topic(tmp_path) -> None:
    d = str(tmp_path / "data")
    m = LogManager(d)
    for p in range(3):
        m.create_log("gone", p, {"retention.ms": "5"}).append(make_batch(1))
    m.create_log("kept", 0).append(make_batch(1))
    assert m.delete_log("gone", 1)
    assert not os.path.exists(os.path.join(d, "gone-1"))
    assert m.delete_topic("gone") == 2
    assert sorted(os.listdir(d)) == sorted([".lock", "kept-0", "topic-configs"])
    m.close()
    # A rename to -delete that was not followed by the removal is finished on open.
    os.rename(os.path.join(d, "kept-0"), os.path.join(d, "kept-0.abc-delete"))
    m = LogManager(d)
    assert m.partitions() == [] and not os.path.exists(os.path.join(d, "kept-0.abc-delete"))
    m.close()


def test_unclean_shutdown_recovers_on_first_use(tmp_path) -> None:
    d = str(tmp_path / "data")
    m = LogManager(d)
    log = m.create_log("t", 0)
    for _ in range(5):
        log.append(make_batch(2))
    m.checkpoint()
    m.files.close_all()  # "crash": no close, no marker
    with open(os.path.join(d, "t-0", "00000000000000000000.log"), "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x01\x00torn")
    m._lock_fd and os.close(m._lock_fd)
    m2 = LogManager(d)
    assert not m2.had_clean_shutdown
    log2 = m2.get_log("t", 0)
    assert log2.needs_recovery and not log2.loaded
    assert log2.log_end_offset == 10  # recovered before serving
    assert log2.last_recovery is not None and log2.last_recovery.truncated_bytes == 16
    m2.close()
    assert os.path.exists(os.path.join(d, CLEAN_SHUTDOWN_FILE))


def test_no_clean_marker_while_a_log_is_unrecovered(tmp_path) -> None:
    d = str(tmp_path / "data")
    m = LogManager(d)
    for p in range(2):
        m.create_log("t", p).append(make_batch(1))
    m.files.close_all()
    os.close(m._lock_fd)
    m2 = LogManager(d)
    assert m2.get_log("t", 0).log_end_offset == 1  # only partition 0 is used (and recovered)
    m2.close()
    assert not os.path.exists(os.path.join(d, CLEAN_SHUTDOWN_FILE))
    m3 = LogManager(d)
    assert not m3.had_clean_shutdown
    assert m3.get_log("t", 1).log_end_offset == 1
    assert m3.recover_all() == 2
    m3.close()
    assert os.path.exists(os.path.join(d, CLEAN_SHUTDOWN_FILE))


def test_data_dir_is_locked(tmp_path) -> None:
    d = str(tmp_path / "data")
    m = LogManager(d)
    with pytest.raises(KafkaError) as exc:
        LogManager(d)
    assert exc.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    m.close()
    LogManager(d).close()


def test_many_partitions_open_lazily_with_bounded_descriptors(tmp_path) -> None:
    d = str(tmp_path / "data")
    n = 600
    m = LogManager(d, max_open_files=32)
    for p in range(n):
        m.create_log("wide", p).append(make_batch(1, prefix=b"p%d-" % p))
    assert m.files.open_count <= 32
    m.close()
    t0 = time.perf_counter()
    m = LogManager(d, max_open_files=32)
    elapsed = time.perf_counter() - t0
    assert len(m) == n and m.open_stats.clean_shutdown
    assert not any(log.loaded for log in m.logs())
    assert m.files.opens == 0  # not one segment file opened
    assert elapsed < 1.0
    fds_before = len(os.listdir("/proc/self/fd"))
    for p in range(n):
        log = m.get_log("wide", p)
        assert records_of(log) == [(0, b"k0", b"p%d-0" % p)]
        log.append(make_batch(1))
    assert m.files.open_count <= 32
    assert len(os.listdir("/proc/self/fd")) - fds_before <= 33
    m.close()


def test_periodic_tasks(tmp_path) -> None:
    d = str(tmp_path / "data")
    now = [1_000_000.0]
    m = LogManager(d, clock=lambda: now[0])
    log = m.create_log(
        "r", 0, {"segment.bytes": "600", "retention.ms": "60000", "file.delete.delay.ms": "0"}
    )
    c = m.create_log("c", 0, {"segment.bytes": "600", "cleanup.policy": "compact"})
    for i in range(30):
        ts = int(now[0] * 1000)
        log.append(make_batch([b"x" * 60], timestamp=ts))
        c.append(make_batch([b"v%d" % i + b"x" * 60], keys=[b"same"], timestamp=ts))
    for lg in (log, c):
        lg.high_watermark = lg.log_end_offset
    assert m.flush_due() == 2  # both rolled: their old segments get flushed
    assert log.recovery_point == log.active_segment.base_offset
    assert m.flush_due() == 0
    assert m.run_retention() == 0
    now[0] += 120
    assert m.run_retention() > 0
    assert log.log_start_offset == log.active_segment.base_offset
    stats = m.run_cleaner()
    assert len(stats) == 1 and stats[0].log == "c-0"
    latest = {k: v for _o, k, v in records_of(c)}
    assert latest == {b"same": b"v29" + b"x" * 60}
    m.close()


def test_flush_messages_and_flush_ms(tmp_path, monkeypatch) -> None:
    d = str(tmp_path / "data")
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    m = LogManager(d)
    every = m.create_log("every", 0, {"flush.messages": "2"})
    every.append(make_batch(1))
    assert every.recovery_point == 0
    synced.clear()
    every.append(make_batch(1))
    assert synced and every.recovery_point == 2
    timed = m.create_log("timed", 0, {"flush.ms": "1000"})
    timed.append(make_batch(1), now_ms=0)
    start = timed._last_flush_ms
    assert m.flush_due(now_ms=start + 999) == 0
    assert m.flush_due(now_ms=start + 1000) == 1
    assert timed.recovery_point == 1
    m.close()
