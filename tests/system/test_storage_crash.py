"""A writer process killed with SIGKILL mid-append: every acknowledged batch survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from strom.protocol.records import iter_batches
from strom.storage.manager import LogManager

# The writer: appends batches whose contents follow from their offsets, printing
# "<first> <last>" after each append returns. It flushes/checkpoints now and then so the
# kill can land in those too, and so recovery starts from a recovery point mid-log.
WRITER = r"""
import sys
from strom.protocol.compression import Compression
from strom.protocol.records import build_batch
from strom.storage.manager import LogManager
sys.path.insert(0, sys.argv[2])
from test_storage_crash import expected_key, expected_value, records_per_batch

m = LogManager(sys.argv[1])
log = m.create_log("crash", 0, {"segment.bytes": "262144", "index.interval.bytes": "1024"})
n = 0
while True:
    o = log.log_end_offset
    count = records_per_batch(o)
    codec = Compression.ZSTD if o % 5 == 1 else Compression.NONE
    data = build_batch(
        [(expected_key(x), expected_value(x)) for x in range(o, o + count)],
        compression=codec, timestamp=1_000_000 + o,
    )
    r = log.append(data)
    assert r.first_offset == o
    sys.stdout.write(f"{r.first_offset} {r.last_offset}\n")
    sys.stdout.flush()
    n += 1
    if n % 40 == 0:
        m.flush_due()
    if n % 90 == 0:
        m.checkpoint()
"""


def records_per_batch(offset: int) -> int:
    return 1 + offset % 7


def expected_key(offset: int) -> bytes:
    return b"key-%d" % (offset % 100)


def expected_value(offset: int) -> bytes:
    size = 20 + (offset * 7919) % 3000
    if offset % 61 == 0:
        size = 200_000 + offset % 1000  # now and then a big write
    unit = b"%d|" % offset
    return (unit * (size // len(unit) + 1))[:size]


def _run_and_kill(
    data_dir: str, acks_wanted: int, deadline_s: float = 20.0
) -> list[tuple[int, int]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH", ""), *sys.path]))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, data_dir, os.path.dirname(__file__)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    acks: list[tuple[int, int]] = []
    assert proc.stdout is not None
    start = time.monotonic()
    try:
        while len(acks) < acks_wanted:
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"writer died early: {err}")
            first, last = map(int, line.split())
            acks.append((first, last))
            assert time.monotonic() - start < deadline_s
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # Lines written before the kill are acknowledgements too.
    for line in proc.stdout.read().splitlines():
        parts = line.split()
        if len(parts) == 2:
            acks.append((int(parts[0]), int(parts[1])))
    proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return acks


def _check(data_dir: str, acks: list[tuple[int, int]]) -> int:
    m = LogManager(data_dir)
    assert not m.had_clean_shutdown
    log = m.get_log("crash", 0)
    assert log is not None
    leo = log.log_end_offset
    last_acked = max(last for _first, last in acks)
    assert leo >= last_acked + 1
    seen = 0
    offset = 0
    while offset < leo:
        r = log.read(offset, 1 << 20)
        assert not r.empty
        for batch in iter_batches(r.read_bytes(), verify=True):  # whole, CRC-valid batches
            assert batch.base_offset == offset  # contiguous: nothing missing, no gap
            for rec in batch.records():
                assert rec.offset == offset
                assert rec.key == expected_key(offset)
                assert rec.value == expected_value(offset)
                offset += 1
                seen += 1
    assert offset == leo  # nothing served past the last good batch
    # The log takes new appends right after the recovered end.
    from strom.protocol.records import build_batch

    r = log.append(build_batch([(expected_key(leo), expected_value(leo))]))
    assert r.first_offset == leo
    log.truncate_to(leo)  # leave the log as the writer's next round expects
    m.close()
    return seen


@pytest.mark.slow
def test_sigkill_during_appends_loses_no_acknowledged_batch(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    total_acked = 0
    for round_, acks_wanted in enumerate((150, 400, 250)):
        acks = _run_and_kill(data_dir, acks_wanted)
        assert len(acks) >= acks_wanted
        if round_:
            assert acks[0][0] > 0  # the writer continued where the recovered log ended
        seen = _check(data_dir, acks)
        total_acked += len(acks)
        assert seen >= acks[-1][1] + 1
    assert total_acked >= 800


BIG_WRITER = r"""
import sys
from strom.protocol.records import build_batch
from strom.storage.manager import LogManager
m = LogManager(sys.argv[1])
log = m.create_log("big", 0, {"segment.bytes": "67108864", "max.message.bytes": "20000000"})
while True:
    o = log.log_end_offset
    unit = b"%d|" % o
    r = log.append(build_batch([(b"k", unit * (6_000_000 // len(unit)))]))
    sys.stdout.write(f"{r.first_offset}\n")
    sys.stdout.flush()
"""


@pytest.mark.slow
def test_sigkill_inside_big_writes_tears_nothing_acknowledged(tmp_path) -> None:
    """6 MB batches: a kill often lands inside write() and leaves a torn batch on disk."""
    import random

    data_dir = str(tmp_path / "data")
    rng = random.Random(1234)
    torn_rounds = 0
    for _round in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", BIG_WRITER, data_dir],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert proc.stdout is not None
        acked = [int(proc.stdout.readline()) for _ in range(2)]
        time.sleep(rng.random() * 0.03)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        acked += [int(x) for x in proc.stdout.read().split()]
        proc.stdout.close()
        m = LogManager(data_dir)
        log = m.get_log("big", 0)
        assert log is not None
        leo = log.log_end_offset
        assert leo >= max(acked) + 1
        recovery = log.last_recovery
        assert recovery is not None
        torn_rounds += recovery.truncated_bytes > 0
        values = [(b.base_offset, next(b.records()).value) for b in log.iter_batches()]
        assert [o for o, _v in values] == list(range(leo))
        for o, v in values[-4:]:
            assert v == (b"%d|" % o) * (6_000_000 // len(b"%d|" % o))
        m.close()
        if torn_rounds >= 2:
            break
