"""kcat (librdkafka 2.0) against a real `strom serve`: metadata, keyed records across
partitions, all four compression codecs, headers and offsets by timestamp."""

from __future__ import annotations

import json
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import StromProcess, require_kcat

from .util import create_topic

CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}  # RecordBatch attributes bits 0-2


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StromProcess]:
    """One broker for the module (each test uses its own topics)."""
    require_kcat()
    p = StromProcess(tmp_path_factory.mktemp("kcat") / "data").start()
    yield p
    p.stop()


def kcat(broker: StromProcess, *args: str, stdin: bytes | None = None) -> bytes:
    r = subprocess.run(
        [require_kcat(), "-b", broker.bootstrap, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, f"kcat {' '.join(args)} exited {r.returncode}: {r.stderr!r}"
    return r.stdout


def produce(broker: StromProcess, topic: str, lines: list[str], *args: str) -> None:
    kcat(
        broker, "-P", "-t", topic, "-X", "acks=all", *args, stdin="\n".join(lines).encode() + b"\n"
    )


def consume(broker: StromProcess, topic: str, *args: str) -> list[dict]:
    """Every record until the end of every partition, as kcat's JSON envelopes."""
    out = kcat(broker, "-C", "-t", topic, "-e", "-q", "-J", *args)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_metadata(broker: StromProcess) -> None:
    create_topic(broker.bootstrap, "meta4", 4)
    md = json.loads(kcat(broker, "-L", "-J"))
    assert md["controllerid"] == 0
    assert md["brokers"] == [{"id": 0, "name": broker.bootstrap}]
    topics = {t["topic"]: t for t in md["topics"]}
    parts = sorted(topics["meta4"]["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2, 3]
    for p in parts:
        assert p["leader"] == 0
        assert p["replicas"] == [{"id": 0}] and p["isrs"] == [{"id": 0}]
        assert "error" not in p

    one = json.loads(kcat(broker, "-L", "-J", "-t", "meta4"))
    assert [t["topic"] for t in one["topics"]] == ["meta4"]


def test_keyed_records_multi_partition(broker: StromProcess) -> None:
    topic, partitions, keys, per_key = "keyed", 4, 12, 25
    create_topic(broker.bootstrap, topic, partitions)
    lines = [f"key-{k}:{k}-{n}" for n in range(per_key) for k in range(keys)]
    produce(broker, topic, lines, "-K:")

    got = consume(broker, topic, "-o", "beginning")
    assert len(got) == keys * per_key
    by_part: dict[int, list[dict]] = {}
    for r in got:
        by_part.setdefault(r["partition"], []).append(r)
    assert len(by_part) > 1, "12 keys all landed in one partition"
    for p, records in by_part.items():
        assert [r["offset"] for r in records] == list(range(len(records))), f"partition {p}"
        for r in records:
            # librdkafka's default partitioner (consistent_random): crc32(key) % partitions
            assert zlib.crc32(r["key"].encode()) % partitions == p
            assert r["payload"].startswith(r["key"].removeprefix("key-") + "-")
    for k in range(keys):
        # per key: all in one partition, in the order produced
        mine = [r for r in got if r["key"] == f"key-{k}"]
        assert len({r["partition"] for r in mine}) == 1
        assert [r["payload"] for r in mine] == [f"{k}-{n}" for n in range(per_key)]


@pytest.mark.parametrize("acks", ["0", "1"])
def test_acks_zero_and_one(broker: StromProcess, acks: str) -> None:
    """acks=0 gets no Produce response at all (librdkafka must not see a stray one), acks=1
    a normal one; either way every record is there."""
    topic = f"acks{acks}"
    create_topic(broker.bootstrap, topic, 2)
    lines = [f"k{i}:v{i}" for i in range(500)]
    kcat(broker, "-P", "-t", topic, "-K:", "-X", f"acks={acks}", stdin="\n".join(lines).encode())
    got = consume(broker, topic, "-o", "beginning")
    assert sorted(r["payload"] for r in got) == sorted(f"v{i}" for i in range(500))


@pytest.mark.parametrize("codec", list(CODECS))
def test_compression(broker: StromProcess, codec: str) -> None:
    topic = f"z-{codec}"
    create_topic(broker.bootstrap, topic, 1)
    lines = [f"k{i}:{codec} record {i} " + "abc" * (i % 40) for i in range(300)]
    produce(broker, topic, lines, "-K:", "-z", codec, "-X", "linger.ms=50")

    got = consume(broker, topic, "-o", "beginning")
    assert [(r["offset"], r["key"], r["payload"]) for r in got] == [
        (i, line.split(":", 1)[0], line.split(":", 1)[1]) for i, line in enumerate(lines)
    ]
    # the batches on disk are really compressed with that codec (kept as the producer sent them)
    codecs = {a & 7 for a in _batch_attributes(broker.data_dir / f"{topic}-0")}
    assert codecs == {CODECS[codec]}


def test_headers(broker: StromProcess) -> None:
    topic = "hdrs"
    create_topic(broker.bootstrap, topic, 2)
    produce(
        broker,
        topic,
        ["a:1", "b:2", "c:3"],
        "-K:",
        "-H",
        "trace-id=abc123",
        "-H",
        "empty=",
        "-H",
        "dup=1",
        "-H",
        "dup=2",
        "-H",
        "utf=zürich",
    )
    got = consume(broker, topic, "-o", "beginning")
    assert sorted((r["key"], r["payload"]) for r in got) == [("a", "1"), ("b", "2"), ("c", "3")]
    for r in got:
        assert r["headers"] == [
            "trace-id",
            "abc123",
            "empty",
            "",
            "dup",
            "1",
            "dup",
            "2",
            "utf",
            "zürich",
        ]
    plain = kcat(broker, "-C", "-t", topic, "-p", "0", "-e", "-q", "-f", "%k|%h\n")
    for line in plain.decode().splitlines():
        assert line.split("|")[1] == "trace-id=abc123,empty=,dup=1,dup=2,utf=zürich"


def test_offsets_by_timestamp(broker: StromProcess) -> None:
    topic = "bytime"
    create_topic(broker.bootstrap, topic, 2)
    produce(broker, topic, [f"k{i}:early-{i}" for i in range(20)], "-K:")
    time.sleep(0.2)
    middle = int(time.time() * 1000)
    time.sleep(0.2)
    produce(broker, topic, [f"k{i}:late-{i}" for i in range(20)], "-K:")

    late = consume(broker, topic, "-o", f"s@{middle}")
    assert sorted(r["payload"] for r in late) == sorted(f"late-{i}" for i in range(20))
    assert all(r["ts"] > middle for r in late)
    everything = consume(broker, topic, "-o", "s@0")
    assert len(everything) == 40
    # per partition, the first late record's offset is where s@middle started
    for p in (0, 1):
        mine = [r for r in everything if r["partition"] == p]
        first_late = next(r["offset"] for r in mine if r["payload"].startswith("late-"))
        assert min(r["offset"] for r in late if r["partition"] == p) == first_late
    # a timestamp after every record: nothing
    assert consume(broker, topic, "-o", f"s@{int(time.time() * 1000) + 60_000}") == []
    # and s@..e@ bounds: only the early ones
    early = consume(broker, topic, "-o", "s@0", "-o", f"e@{middle}")
    assert sorted(r["payload"] for r in early) == sorted(f"early-{i}" for i in range(20))


def _batch_attributes(partition_dir: Path) -> list[int]:
    """The attributes of every RecordBatch in a partition's segment files."""
    attrs = []
    for seg in sorted(partition_dir.glob("*.log")):
        data = seg.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            (length,) = struct.unpack_from(">i", data, pos + 8)
            if length <= 0:
                break
            assert data[pos + 16] == 2, "magic"
            (a,) = struct.unpack_from(">h", data, pos + 21)
            attrs.append(a)
            pos += 12 + length
    assert attrs, f"no batches in {partition_dir}"
    return attrs
