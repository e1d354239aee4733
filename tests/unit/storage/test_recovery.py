"""Recovery after an unclean shutdown: torn and corrupt tails, missing or garbage indexes."""

from __future__ import annotations

import logging
import os

import pytest

from strom.storage.config import LogConfig
from strom.storage.log import Log

from .util import make_batch, offsets, records_of

SMALL = LogConfig.from_props({"segment.bytes": "4000", "index.interval.bytes": "200"})


def _written(tmp_path, n: int = 30, cfg: dict | None = None) -> tuple[str, list]:
    """A log with `n` one-record batches, left without a clean close (no index flush)."""
    path = str(tmp_path / "t-0")
    log = Log(path, LogConfig.from_props(cfg or {}))
    for i in range(n):
        log.append(
            make_batch([b"value-%03d" % i + b"." * 40], timestamp=1000 + i), leader_epoch=i // 10
        )
    recs = records_of(log)
    log._files.close_all()  # crash: nothing flushed, active indexes never written
    return path, recs


def _active_log_file(path: str) -> str:
    return os.path.join(path, sorted(n for n in os.listdir(path) if n.endswith(".log"))[-1])


def test_torn_write_is_truncated(tmp_path, caplog) -> None:
    path, recs = _written(tmp_path)
    f = _active_log_file(path)
    size = os.path.getsize(f)
    with open(f, "ab") as out:
        out.write(make_batch([b"torn"])[:37])  # half a batch made it to disk
    caplog.set_level(logging.INFO, logger="strom.storage")
    log = Log(path, needs_recovery=True)
    assert records_of(log) == recs
    assert log.log_end_offset == 30
    assert os.path.getsize(f) == size
    assert log.last_recovery is not None and log.last_recovery.truncated_bytes == 37
    assert "torn" in caplog.text and "truncated" in caplog.text
    assert log.append(make_batch(1)).first_offset == 30
    log.close()


@pytest.mark.parametrize("where", ["payload", "length", "magic", "crc", "offset_goes_back"])
def test_corrupt_byte_in_the_tail(tmp_path, where) -> None:
    path, recs = _written(tmp_path)
    f = _active_log_file(path)
    batch_size = len(make_batch([b"value-000" + b"." * 40]))
    size = os.path.getsize(f)
    last = size - batch_size  # position of the last batch (offset 29)
    pos = {"payload": size - 3, "length": last + 9, "magic": last + 16, "crc": last + 18}.get(
        where, last + 7
    )
    with open(f, "r+b") as out:
        out.seek(pos)
        byte = out.read(1)
        out.seek(pos)
        # The base offset is outside the CRC: only a step backwards is detectable (29 -> 0).
        out.write(bytes([0 if where == "offset_goes_back" else byte[0] ^ 0x5A]))
    log = Log(path, needs_recovery=True)
    assert records_of(log) == recs[:29]  # everything before the bad batch, nothing after
    assert log.log_end_offset == 29
    assert os.path.getsize(f) == last
    assert log.append(make_batch(1)).first_offset == 29
    log.close()


def test_corruption_in_an_early_segment_drops_what_follows(tmp_path) -> None:
    path, recs = _written(tmp_path, cfg={"segment.bytes": "600"})
    log_files = sorted(n for n in os.listdir(path) if n.endswith(".log"))
    assert len(log_files) > 3
    second = os.path.join(path, log_files[1])
    with open(second, "r+b") as out:
        out.seek(70)
        out.write(b"\xff")
    log = Log(path, needs_recovery=True)  # recovery point 0: every segment is checked
    first_base = int(log_files[1][:20])
    got = records_of(log)
    assert got == recs[: len(got)] and offsets(got) == list(range(len(got)))
    assert first_base <= log.log_end_offset < first_base + 10
    assert len(log.segments) == 2
    assert sorted(n for n in os.listdir(path) if n.endswith(".log")) == log_files[:2]
    log.close()


def test_recovery_starts_at_the_recovery_point(tmp_path) -> None:
    path, recs = _written(tmp_path, cfg={"segment.bytes": "600"})
    log_files = sorted(n for n in os.listdir(path) if n.endswith(".log"))
    # Damage a segment below the recovery point: recovery does not look at it.
    with open(os.path.join(path, log_files[0]), "r+b") as out:
        out.seek(70)
        out.write(b"\xff")
    rp = int(log_files[-2][:20])
    log = Log(path, needs_recovery=True, recovery_point=rp)
    assert log.log_end_offset == 30
    assert log.last_recovery is not None and log.last_recovery.segments_scanned == 2
    log.close()


def test_deleted_index_files_are_rebuilt(tmp_path, caplog) -> None:
    path, recs = _written(
        tmp_path, n=200, cfg={"segment.bytes": "4000", "index.interval.bytes": "200"}
    )
    log = Log(path, SMALL, needs_recovery=True)
    assert records_of(log) == recs
    log.close()
    indexes = sorted(n for n in os.listdir(path) if n.endswith((".index", ".timeindex")))
    sizes = {n: os.path.getsize(os.path.join(path, n)) for n in indexes}
    assert all(size > 12 for name, size in sizes.items() if name < indexes[-2])
    for n in indexes:
        os.unlink(os.path.join(path, n))
    caplog.set_level(logging.INFO, logger="strom.storage")
    log = Log(path, SMALL)  # a clean start: indexes are loaded lazily, rebuilt when missing
    assert records_of(log) == recs
    for off in range(0, 200, 7):
        assert log.read(off, 1).first_offset == off
    assert log.offset_for_timestamp(1000).offset == 0
    assert log.offset_for_timestamp(1150).offset == 150
    assert "rebuil" in caplog.text
    log.close()
    assert {n: os.path.getsize(os.path.join(path, n)) for n in indexes} == sizes


def test_plausible_but_wrong_time_index_is_not_trusted(tmp_path) -> None:
    """A time index claiming old timestamps must not make retention delete new data."""
    path, recs = _written(tmp_path, n=200, cfg={"segment.bytes": "4000"})
    Log(path, SMALL, needs_recovery=True).close()
    tindex = os.path.join(path, sorted(n for n in os.listdir(path) if n.endswith(".timeindex"))[0])
    with open(tindex, "r+b") as f:
        data = bytearray(f.read())
        for i in range(len(data) // 12):
            data[i * 12 : i * 12 + 8] = (5).to_bytes(8, "big")  # "written at 5 ms"
        f.seek(0)
        f.write(data)
    log = Log(path, LogConfig.from_props({"retention.ms": "1000", "segment.bytes": "4000"}))
    log.high_watermark = log.log_end_offset
    assert log.delete_old_segments(now_ms=2000) == 0  # the real timestamps are 1000..1199
    assert records_of(log) == recs
    log.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeros", "wrong_positions"])
def test_garbage_index_is_detected_and_rebuilt(tmp_path, damage) -> None:
    path, recs = _written(
        tmp_path, n=200, cfg={"segment.bytes": "4000", "index.interval.bytes": "200"}
    )
    Log(path, SMALL, needs_recovery=True).close()
    index = os.path.join(path, sorted(n for n in os.listdir(path) if n.endswith(".index"))[0])
    with open(index, "rb") as f:
        data = bytearray(f.read())
    if damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif damage == "truncated":
        data = data[:-3]
    elif damage == "zeros":
        data = bytearray(len(data))
    else:  # plausible but wrong: positions shifted by a few bytes
        for i in range(len(data) // 8):
            data[i * 8 + 7] = (data[i * 8 + 7] + 5) % 256
    with open(index, "wb") as out:
        out.write(data)
    log = Log(path, SMALL)
    assert records_of(log) == recs
    for off in range(0, 200, 3):
        assert log.read(off, 1).first_offset == off
    log.close()


def test_missing_index_of_the_active_segment_after_clean_shutdown(tmp_path) -> None:
    path = str(tmp_path / "t-0")
    log = Log(path)
    for i in range(50):
        log.append(make_batch([b"%d" % i]))
    recs = records_of(log)
    log.close()
    for n in os.listdir(path):
        if n.endswith((".index", ".timeindex")):
            os.unlink(os.path.join(path, n))
    log = Log(path)
    assert records_of(log) == recs
    assert log.append(make_batch(1)).first_offset == 50
    log.close()


def test_leader_epochs_are_rebuilt_from_batches(tmp_path) -> None:
    path, _ = _written(tmp_path)
    os.unlink(os.path.join(path, "leader-epoch-checkpoint"))
    log = Log(path, needs_recovery=True)
    assert [(e.epoch, e.start_offset) for e in log.epochs.entries] == [(0, 0), (1, 10), (2, 20)]
    log.close()


def test_garbage_after_clean_shutdown_is_still_caught(tmp_path) -> None:
    path = str(tmp_path / "t-0")
    log = Log(path)
    log.append(make_batch(5))
    recs = records_of(log)
    log.close()
    with open(_active_log_file(path), "ab") as out:
        out.write(b"\x00" * 10 + b"\xff" * 100)
    log = Log(path)  # claimed clean, but the tail does not parse
    assert records_of(log) == recs
    assert log.append(make_batch(1)).first_offset == 5
    log.close()
