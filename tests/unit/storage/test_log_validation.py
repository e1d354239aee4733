"""Bad input is refused with the right Kafka error and leaves the log unchanged."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import uuid

import pytest

from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import build_batch, build_control_batch
from strom.storage.log import AppendOrigin, Log

from .util import make_batch, records_of


def _snapshot(log: Log) -> tuple[int, int, list]:
    return log.log_end_offset, log.size, records_of(log)


def _refused(log: Log, data, code: ErrorCode, **kw) -> None:
    before = _snapshot(log)
    with pytest.raises(KafkaError) as exc:
        log.append(data, **kw)
    assert exc.value.code == code, exc.value
    assert _snapshot(log) == before


@pytest.fixture
def log(make_log) -> Log:
    log = make_log()
    log.append(make_batch(3))
    return log


def test_wrong_crc_is_corrupt_message(log) -> None:
    bad = bytearray(make_batch(2))
    bad[-1] ^= 0xFF
    _refused(log, bytes(bad), ErrorCode.CORRUPT_MESSAGE)
    # A good batch followed by a bad one: the whole append is refused.
    _refused(log, make_batch(1) + bytes(bad), ErrorCode.CORRUPT_MESSAGE)


@pytest.mark.parametrize("length", [-5, 0, 48, 10_000, 2**31 - 1])
def test_impossible_lengths_are_corrupt_message(log, length: int) -> None:
    bad = bytearray(make_batch(2))
    struct.pack_into(">i", bad, 8, length)
    _refused(log, bytes(bad), ErrorCode.CORRUPT_MESSAGE)


def test_truncated_input_is_corrupt_message(log) -> None:
    data = make_batch(2)
    _refused(log, data[:-1], ErrorCode.CORRUPT_MESSAGE)
    _refused(log, data + data[:30], ErrorCode.CORRUPT_MESSAGE)
    _refused(log, data[:20], ErrorCode.CORRUPT_MESSAGE)


def test_wrong_magic_is_corrupt_message(log) -> None:
    bad = bytearray(make_batch(2))
    bad[16] = 1
    _refused(log, bytes(bad), ErrorCode.CORRUPT_MESSAGE)


def test_max_message_bytes(make_log) -> None:
    small = make_batch(1)
    log = make_log(max_message_bytes=len(small))
    log.append(small)
    _refused(log, make_batch([b"x" * 100]), ErrorCode.MESSAGE_TOO_LARGE)
    # The limit is per batch: several small batches in one append are fine.
    log.append(small + small)
    assert log.log_end_offset == 3


def test_append_bigger_than_a_segment(make_log) -> None:
    log = make_log(segment_bytes=200)
    _refused(log, make_batch([b"x" * 300]), ErrorCode.RECORD_LIST_TOO_LARGE)


def test_inconsistent_record_count_is_invalid_record(log) -> None:
    bad = bytearray(make_batch(3))
    struct.pack_into(">i", bad, 23, 5)  # last offset delta 5 for 3 records
    from strom.protocol.records import crc32c

    struct.pack_into(">I", bad, 17, crc32c(bytes(bad[21:])))
    _refused(log, bytes(bad), ErrorCode.INVALID_RECORD)


def test_clients_cannot_write_control_batches(log) -> None:
    marker = build_control_batch(1, producer_id=5, producer_epoch=0)
    _refused(log, marker, ErrorCode.INVALID_RECORD)
    r = log.append(marker, origin=AppendOrigin.COORDINATOR)
    assert r.first_offset == 3 and r.batches[0].is_control


def test_compacted_topic_refuses_keyless_records(make_log) -> None:
    log = make_log(cleanup_policy="compact")
    log.append(make_batch(2))
    _refused(log, make_batch([b"a", b"b"], keys=[b"k", None]), ErrorCode.INVALID_RECORD)
    plain = make_log("plain-0")
    plain.append(make_batch([b"a"], keys=[None]))  # fine without compaction


def test_timestamp_bounds(make_log) -> None:
    log = make_log(message_timestamp_before_max_ms=1000, message_timestamp_after_max_ms=500)
    now = 1_000_000
    log.append(make_batch(1, timestamp=now - 900), now_ms=now)
    _refused(log, make_batch(1, timestamp=now - 1001), ErrorCode.INVALID_TIMESTAMP, now_ms=now)
    _refused(log, make_batch(1, timestamp=now + 501), ErrorCode.INVALID_TIMESTAMP, now_ms=now)


def test_deprecated_timestamp_difference_bounds_both_sides(make_log) -> None:
    log = make_log(message_timestamp_difference_max_ms=100)
    now = 50_000
    log.append(make_batch(1, timestamp=now + 100), now_ms=now)
    _refused(log, make_batch(1, timestamp=now - 101), ErrorCode.INVALID_TIMESTAMP, now_ms=now)
    _refused(log, make_batch(1, timestamp=now + 101), ErrorCode.INVALID_TIMESTAMP, now_ms=now)


def test_replication_keeps_offsets_and_refuses_going_back(make_log) -> None:
    log = make_log()
    data = build_batch([(b"k", b"v")] * 2, base_offset=10, partition_leader_epoch=4)
    r = log.append(data, origin=AppendOrigin.REPLICATION)
    assert (r.first_offset, r.last_offset) == (10, 11)
    assert log.log_end_offset == 12
    assert log.latest_epoch == 4
    with pytest.raises(KafkaError):
        log.append(build_batch([(b"k", b"v")], base_offset=11), origin=AppendOrigin.REPLICATION)
    assert log.log_end_offset == 12


def test_empty_append_is_a_no_op(log) -> None:
    r = log.append(b"")
    assert (r.first_offset, r.last_offset) == (-1, -1)
    assert log.log_end_offset == 3


def test_full_disk_by_failing_write(log, monkeypatch) -> None:
    """ENOSPC simulated: the write puts part of the bytes down, then fails."""
    before = _snapshot(log)
    real = os.pwrite
    calls = []

    def partial_then_full(fd, data, pos):
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data[: len(data) // 2]), pos)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", partial_then_full)
    with pytest.raises(KafkaError) as exc:
        log.append(make_batch(5))
    assert exc.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    monkeypatch.setattr(os, "pwrite", real)
    assert _snapshot(log) == before  # the half-written batch was cut off again
    r = log.append(make_batch(1))
    assert r.first_offset == 3
    assert [o for o, _k, _v in records_of(log)] == [0, 1, 2, 3]


def _mount_tmpfs(path: str, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    os.makedirs(path, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True
    )
    return result.returncode == 0


def test_full_disk_on_a_tiny_tmpfs(tmp_path) -> None:
    """A real full disk: a 256 KiB tmpfs (needs root; skipped otherwise)."""
    mnt = str(tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}")
    if not _mount_tmpfs(mnt, "256k"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        log = Log(os.path.join(mnt, "t-0"))
        acked = []
        error = None
        for i in range(1000):
            try:
                r = log.append(make_batch([b"%05d" % i + b"x" * 2000]))
            except KafkaError as e:
                error = e
                break
            acked.append(r.first_offset)
        assert error is not None and error.code == ErrorCode.KAFKA_STORAGE_ERROR
        assert len(acked) > 10
        recs = records_of(log)
        assert [o for o, _k, _v in recs] == acked  # everything acknowledged, nothing more
        assert all(v.startswith(b"%05d" % o) for o, _k, v in recs)
        log.close(flush=False)
        # Reopened (as after a crash), the log is intact.
        again = Log(os.path.join(mnt, "t-0"), needs_recovery=True)
        assert [o for o, _k, _v in records_of(again)] == acked
        again.close(flush=False)
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
