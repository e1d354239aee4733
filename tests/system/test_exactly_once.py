"""Exactly-once end to end: a consume-transform-produce loop (confluent-kafka, transactions
with send_offsets_to_transaction) turns N input records into exactly N output records although
the processor is SIGKILLed mid-stream and the broker is SIGKILLed mid-transaction, and the
group's committed offset ends at N."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from tests.compat.util import create_topic
from tests.conftest import StromProcess

PROCESSOR = os.path.join(os.path.dirname(__file__), "ctp_processor.py")
N = 3000


def _start(strom: StromProcess) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, PROCESSOR, strom.bootstrap],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _output(strom: StromProcess) -> list[bytes]:
    c = Consumer(
        {
            "bootstrap.servers": strom.bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:6]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition("ctp-out", 0, 0)])
    out: list[bytes] = []
    idle = 0
    try:
        while idle < 3:
            got = [m.value() for m in c.consume(1000, 0.5) if m.error() is None]
            out += got
            idle = 0 if got else idle + 1
    finally:
        c.close()
    return out


def _committed(strom: StromProcess) -> int:
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": "ctp"})
    try:
        return c.committed([TopicPartition("ctp-in", 0)], 10)[0].offset
    except Exception:  # noqa: BLE001 - the broker is restarting
        return -1
    finally:
        c.close()


def _wait_committed(strom: StromProcess, at_least: int, proc: subprocess.Popen) -> subprocess.Popen:
    """Wait until the group has committed at_least offsets, restarting a processor that died
    of a fatal error (as an operator would)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if _committed(strom) >= at_least:
            return proc
        if proc.poll() is not None:
            proc = _start(strom)
        time.sleep(0.2)
    raise AssertionError(f"the group never committed {at_least} offsets")


def test_consume_transform_produce_through_kills(strom: StromProcess) -> None:
    create_topic(strom.bootstrap, "ctp-in", 1)
    create_topic(strom.bootstrap, "ctp-out", 1)
    p = Producer({"bootstrap.servers": strom.bootstrap, "linger.ms": 5})
    values = [f"record-{i:05d}".encode() for i in range(N)]

    def feed(part: list[bytes]) -> None:
        for v in part:
            p.produce("ctp-in", v)
        assert p.flush(30) == 0

    feed(values[: N // 3])
    proc = _start(strom)
    proc = _wait_committed(strom, 300, proc)
    proc.kill()  # the processor dies mid-stream
    proc.wait(10)
    feed(values[N // 3 : 2 * N // 3])
    proc = _start(strom)
    proc = _wait_committed(strom, N // 3 + 200, proc)
    strom.kill()  # the broker dies mid-transaction
    strom.start()
    feed(values[2 * N // 3 :])
    proc = _wait_committed(strom, N, proc)
    proc.kill()
    proc.wait(10)
    out = _output(strom)
    assert sorted(out) == sorted(v.upper() for v in values)  # each exactly once
    assert _committed(strom) == N
