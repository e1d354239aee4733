"""A Quix Streams application with processing_guarantee="exactly-once" against a real
`strom serve`: a stateful word count, SIGKILLed mid-stream and restarted with an empty state
dir (its state comes back from the changelog), whose output holds each count exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict

import pytest

pytest.importorskip("quixstreams", reason="quixstreams comes with the test extras")

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from tests.compat.util import create_topic  # noqa: E402

APP = os.path.join(os.path.dirname(__file__), "quix_wordcount.py")
SENTENCE = "the cat saw the dog"


def _run_app(strom, state_dir: str, seconds: float) -> subprocess.Popen:  # noqa: ANN001
    return subprocess.Popen(
        [sys.executable, APP, strom.bootstrap, state_dir, str(seconds)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _counts(strom) -> list[dict]:  # noqa: ANN001
    c = Consumer(
        {
            "bootstrap.servers": strom.bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:6]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition("counts", 0, 0)])
    out: list[dict] = []
    idle = 0
    try:
        while idle < 4:
            got = [json.loads(m.value()) for m in c.consume(1000, 0.5) if m.error() is None]
            out += got
            idle = 0 if got else idle + 1
    finally:
        c.close()
    return out


def _output_end(strom) -> int:  # noqa: ANN001
    c = Consumer({"bootstrap.servers": strom.bootstrap, "group.id": "watermarks"})
    try:
        return c.get_watermark_offsets(TopicPartition("counts", 0), 5)[1]
    except Exception:  # noqa: BLE001 - the app has not made the topic yet
        return 0
    finally:
        c.close()


def test_exactly_once_word_count_survives_kill_and_empty_state(strom, tmp_path) -> None:  # noqa: ANN001
    create_topic(strom.bootstrap, "sentences", 1)
    n = 3000

    def feed() -> None:  # input keeps coming while the first run is killed
        p = Producer({"bootstrap.servers": strom.bootstrap, "linger.ms": 5})
        for i in range(n):
            p.produce("sentences", SENTENCE.encode())
            if i % 100 == 99:
                p.flush(10)
                time.sleep(0.05)
        assert p.flush(30) == 0

    feeder = threading.Thread(target=feed)
    app = _run_app(strom, str(tmp_path / "state-1"), 120)
    feeder.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and _output_end(strom) < 1000:
        time.sleep(0.1)
    app.kill()  # SIGKILL, mid-stream: a transaction is open or its commit in flight
    app.wait(10)
    feeder.join(60)
    partial = len(_counts(strom))
    assert 0 < partial < 5 * n, f"the kill did not land mid-stream ({partial} counts)"
    # second run: an empty state dir, so the counts so far come back from the changelog
    app = _run_app(strom, str(tmp_path / "state-2"), 90)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(_counts(strom)) < 5 * n:
        time.sleep(1)
    app.kill()
    app.wait(10)
    out = _counts(strom)
    per_word: dict[str, list[int]] = defaultdict(list)
    for d in out:
        per_word[d["word"]].append(d["n"])
    words = Counter(SENTENCE.split())
    # every count of every word exactly once: no duplicate, no gap
    assert {w: sorted(ns) for w, ns in per_word.items()} == {
        w: list(range(1, k * n + 1)) for w, k in words.items()
    }
    assert len(out) == 5 * n
