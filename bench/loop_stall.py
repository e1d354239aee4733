"""Event-loop stalls: how long clients wait while the broker compacts or recovers a big log.

    .venv/bin/python bench/loop_stall.py [--strom OTHER_CHECKOUT] [--gib 1.0]

Starts a real `strom serve` (PYTHONPATH pointing at the `src/` measured) and, in each of two
phases, runs two clients beside the disk work:

- a probe: a separate process on its own connection sending ApiVersions v0 every 10 ms, one at
  a time, timing each round trip (an idle request: its latency is the event loop's);
- a load: a confluent-kafka producer (acks=all, 100-byte records, ~500 records/s) to a topic of
  its own, counting acknowledgements.

Phases:

- compaction: ~`--gib` GiB of 1 KiB records over a few thousand repeating keys are written to a
  compacted topic (64 MiB segments per GiB) whose `min.compaction.lag.ms` holds the cleaner
  back; setting it to 0 (IncrementalAlterConfigs) lets the cleaner take the whole log in one
  pass. The phase runs from that change until the partition's cleaner checkpoint appears (the
  pass is over).
- recovery: ~`--gib` GiB is written to a plain topic, the broker is killed (SIGKILL) and its
  recovery-point checkpoint removed (a crash before the first checkpoint: the whole log is
  verified), and the broker started again. Logs open lazily, so the phase runs from a
  ListOffsets on that partition (which opens, recovers and indexes it) until its answer.

Per phase it prints the probe's p50/p99/max round trip, the probes and acknowledgements seen
during the phase, the longest gap between acknowledgements, the phase's duration, and what the
disk work did (bytes before/after, recovered end offset). With `--strom DIR` the same runs
against that checkout's `src/` afterwards (a before/after comparison). Client and broker share
the machine, so other jobs on it show up in the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 1 << 30
VALUE_BYTES = 1024
PROBE_INTERVAL_S = 0.010
LOAD_RATE = 500  # records/s
YEAR_MS = 365 * 24 * 3600 * 1000
CLEANER_CHECKPOINT = "cleaner-offset-checkpoint"
RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"

# The probe runs in its own process so that nothing in this one (the producer's callbacks, the
# GIL) adds to what it measures. It stops when its stdin closes and prints its samples as JSON:
# [monotonic send time, round trip seconds] (CLOCK_MONOTONIC is shared by all processes).
PROBE = r"""
import json, socket, struct, sys, threading, time

port, interval = int(sys.argv[1]), float(sys.argv[2])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
sock = socket.create_connection(("127.0.0.1", port), timeout=5)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sock.settimeout(300)

def read(n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf

samples, error, correlation = [], None, 0
due = time.monotonic()
try:
    while not stop.is_set():
        correlation += 1
        # size, api key 18 (ApiVersions), version 0, correlation id, empty client id
        request = struct.pack(">ihhih", 10, 18, 0, correlation, 0)
        sent = time.monotonic()
        sock.sendall(request)
        body = read(struct.unpack(">i", read(4))[0])
        took = time.monotonic() - sent
        if struct.unpack_from(">i", body)[0] != correlation:
            raise ValueError("answer to another request")
        samples.append((sent, took))
        due = max(due + interval, time.monotonic())
        stop.wait(due - time.monotonic())
except Exception as e:
    error = repr(e)
json.dump({"samples": samples, "error": error}, sys.stdout)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the broker --------------------------------------------------------------------------------


class Broker:
    """A `strom serve` process running the package found in `src`."""

    def __init__(self, src: str, root: str, config: dict[str, str]) -> None:
        self.src = src
        self.data_dir = os.path.join(root, "data")
        self.log_path = os.path.join(root, "broker.log")
        self.config_path = os.path.join(root, "broker.properties")
        with open(self.config_path, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in config.items())
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        args = [sys.executable, "-m", "strom.cli.main", "serve", "--data-dir", self.data_dir]
        args += ["--listen", self.bootstrap, "--config", self.config_path]
        args += ["--log-level", "INFO", "--registry-listen", "off"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                env=dict(os.environ, PYTHONPATH=self.src),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strom serve exited early:\n{self.log()[-3000:]}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            time.sleep(0.05)
        raise RuntimeError(f"strom serve did not listen within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def partition_dir(self, topic: str, partition: int = 0) -> str:
        return os.path.join(self.data_dir, f"{topic}-{partition}")


def segment_bytes(path: str) -> int:
    """Bytes in a partition's live segment files (not those waiting to be deleted)."""
    with os.scandir(path) as entries:
        return sum(e.stat().st_size for e in entries if e.name.endswith(".log"))


# -- clients -----------------------------------------------------------------------------------


def create_topic(bootstrap: str, name: str, config: dict[str, str] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, 1, 1, config=config or {})]).values():
        f.result(30)


def set_topic_config(bootstrap: str, topic: str, name: str, value: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", topic, incremental_configs=[entry])
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(30)


def fill(
    bootstrap: str, topic: str, records: int, keys: int | None, batch_bytes: int = 1_000_000
) -> int:
    """Write `records` 1 KiB records as fast as librdkafka sends them (batches of up to
    `batch_bytes`, no compression, acks=1); keys cycle through `keys` values when given.
    Returns the acked count."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": 1,
            "linger.ms": 50,
            "batch.size": batch_bytes,
            "batch.num.messages": 100_000,
            "compression.type": "none",
            "queue.buffering.max.kbytes": 256 * 1024,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    value = os.urandom(VALUE_BYTES)
    done = [0, 0]  # acked, failed

    def delivered(err: object, _msg: object) -> None:
        done[1 if err else 0] += 1

    for i in range(records):
        key = b"key-%d" % (i % keys) if keys else None
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 2000 == 0:
            producer.poll(0)
    if producer.flush(300) or done[1]:
        raise RuntimeError(f"writing {topic}: {done[1]} failed, {len(producer)} unsent")
    return done[0]


class Probe:
    """ApiVersions round trips every 10 ms from a process of its own."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PROBE, str(port), str(PROBE_INTERVAL_S)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.samples: list[tuple[float, float]] = []
        self.error: str | None = None

    def stop(self) -> None:
        out, _ = self.proc.communicate(b"", timeout=330)
        result = json.loads(out)
        self.samples = [tuple(s) for s in result["samples"]]
        self.error = result["error"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Load:
    """A producer (acks=all, small records, a steady rate) whose acknowledgements are timed."""

    def __init__(self, bootstrap: str, topic: str, rate: int = LOAD_RATE) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.period = 1.0 / rate
        self.acks: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _delivered(self, err: object, _msg: object) -> None:
        if err is None:
            self.acks.append(time.monotonic())
        else:
            self.errors.append(str(err))

    def _run(self) -> None:
        # made and destroyed in this thread, so it is gone once stop() returns
        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 5})
        value = b"v" * 100
        due = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(BufferError):
                producer.produce(self.topic, value, on_delivery=self._delivered)
            due = max(due + self.period, time.monotonic() - self.period)
            while (wait := due - time.monotonic()) > 0:
                producer.poll(wait)
        producer.flush(30)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def wait_until(what: str, ready: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


# -- phases ------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    phase: str
    seconds: float
    round_trips_ms: list[float]
    produced: int
    longest_ack_gap_s: float
    outcome: str

    def percentile(self, q: float) -> float:
        data = sorted(self.round_trips_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


def measure(
    broker: Broker,
    load_topic: str,
    start_work: Callable[[], object],
    finished: Callable[[], object],
    timeout: float,
) -> tuple[float, float, Probe, Load]:
    """Start the probe and the load, wait for both to be going, then start the disk work and
    wait until it is over (plus a moment). Returns the phase's start and end times."""
    probe = Probe(broker.port)
    load = Load(broker.bootstrap, load_topic)
    try:
        wait_until("first acknowledgements", lambda: len(load.acks) >= 50, 60)
        time.sleep(0.5)
        began = time.monotonic()
        start_work()
        wait_until("the disk work", finished, timeout)
        ended = time.monotonic()
        time.sleep(0.5)
    finally:
        load.stop()
        try:
            probe.stop()
        finally:
            probe.kill()
    if probe.error:
        raise RuntimeError(f"probe failed: {probe.error}")
    return began, ended, probe, load


def summarize(
    phase: str, began: float, ended: float, probe: Probe, load: Load, outcome: str
) -> PhaseResult:
    # a probe counts if its round trip overlapped the phase (a stalled one began before it)
    trips = [took * 1000 for sent, took in probe.samples if sent <= ended and sent + took >= began]
    acks = [t for t in load.acks if began <= t <= ended]
    edges = [began, *acks, ended]
    gap = max(b - a for a, b in zip(edges, edges[1:]))
    if load.errors:
        outcome += f"; {len(load.errors)} produce errors, first: {load.errors[0]}"
    return PhaseResult(phase, ended - began, trips, len(acks), gap, outcome)


def compaction_phase(src: str, root: str, gib: float, timeout: float) -> PhaseResult:
    records = int(gib * GIB / VALUE_BYTES)
    keys = max(100, records // 100)  # ~99% of the records are overwritten
    broker = Broker(src, root, {"log.cleaner.backoff.ms": "200"})
    try:  # on any failure the broker is killed (a stalled one may not answer SIGTERM soon)
        broker.start()
        create_topic(
            broker.bootstrap,
            "compacted",
            {
                "cleanup.policy": "compact",
                "segment.bytes": str(max(1 << 20, int(64 * (1 << 20) * gib))),
                "min.compaction.lag.ms": str(YEAR_MS),  # held back until the phase starts
            },
        )
        create_topic(broker.bootstrap, "load")
        fill(broker.bootstrap, "compacted", records, keys)
        part = broker.partition_dir("compacted")
        before = segment_bytes(part)
        checkpoint = os.path.join(part, CLEANER_CHECKPOINT)
        if os.path.exists(checkpoint):
            raise RuntimeError("the cleaner ran before the phase began")
        began, ended, probe, load = measure(
            broker,
            "load",
            lambda: set_topic_config(broker.bootstrap, "compacted", "min.compaction.lag.ms", "0"),
            lambda: os.path.exists(checkpoint),
            timeout,
        )
        after = segment_bytes(part)
        cleaned = re.findall(r"compacted-0: cleaned offsets.*", broker.log())
        outcome = f"{before / 2**20:.0f} -> {after / 2**20:.1f} MiB of segments"
        if cleaned:
            outcome += f" ({cleaned[-1].split(': ', 1)[1]})"
    except BaseException:
        broker.kill()
        raise
    broker.stop()
    return summarize("compaction", began, ended, probe, load, outcome)


def recovery_phase(src: str, root: str, gib: float, timeout: float) -> PhaseResult:
    records = int(gib * GIB / VALUE_BYTES)
    broker = Broker(src, root, {})
    try:
        broker.start()
        segment = max(1 << 20, int(64 * (1 << 20) * gib))
        create_topic(broker.bootstrap, "recovered", {"segment.bytes": str(segment)})
        create_topic(broker.bootstrap, "load")
        # 16 KiB batches (the Java producer's default): a log of many batches, as producers
        # usually leave it; recovery verifies and indexes batch by batch
        written = fill(broker.bootstrap, "recovered", records, None, 16384)
        size = segment_bytes(broker.partition_dir("recovered"))
        broker.kill()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(broker.data_dir, RECOVERY_POINT_CHECKPOINT))
        broker.start()
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "loop-stall"})
        answer: list[int] = []

        def touch() -> None:
            if "recovered-0: recovered" in broker.log():
                raise RuntimeError("the log was recovered before the phase began")
            _low, high = consumer.get_watermark_offsets(
                TopicPartition("recovered", 0), timeout=timeout
            )
            answer.append(high)

        try:
            began, ended, probe, load = measure(
                broker, "load", touch, lambda: bool(answer), timeout
            )
        finally:
            consumer.close()
        if answer[0] != written:
            raise RuntimeError(f"recovered end offset {answer[0]}, {written} written")
        outcome = f"{size / 2**20:.0f} MiB, end offset {answer[0]} = written"
        m = re.findall(r"recovered-0: recovered (\d+) segment.*?(\d+) bytes verified", broker.log())
        if m:
            outcome += f" ({m[-1][0]} segments, {int(m[-1][1]) / 2**20:.0f} MiB verified)"
    except BaseException:
        broker.kill()
        raise
    broker.stop()
    return summarize("recovery", began, ended, probe, load, outcome)


# -- main --------------------------------------------------------------------------------------


class OutOfTime(BaseException):
    """The time for everything (--timeout) has run out."""


def run(name: str, src: str, gib: float, timeout: float) -> list[PhaseResult | str]:
    """Both phases against one src/, each on a fresh data dir removed afterwards; a phase that
    fails gives its error instead of figures."""
    results: list[PhaseResult | str] = []
    for phase in (compaction_phase, recovery_phase):
        root = tempfile.mkdtemp(prefix=f"strom-loop-stall-{name}-")
        try:
            print(
                f"  {name}: {phase.__name__.split('_')[0]}"
                f" (load average {os.getloadavg()[0]:.2f}) ...",
                flush=True,
            )
            results.append(phase(src, root, gib, timeout))
        except Exception as e:
            print(f"  {name}: {phase.__name__.split('_')[0]} failed: {e!r}", flush=True)
            results.append(f"{phase.__name__.split('_')[0]:10} failed: {e!r}")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return results


def report(name: str, results: list[PhaseResult | str]) -> None:
    for r in results:
        if isinstance(r, str):
            print(f"  {name:6} {r}")
            continue
        print(
            f"  {name:6} {r.phase:10} {r.seconds:7.2f} s {len(r.round_trips_ms):6d}"
            f" {r.percentile(0.5):8.1f} {r.percentile(0.99):8.1f} {max(r.round_trips_ms):8.1f}"
            f" {r.produced:8d} {r.longest_ack_gap_s * 1000:8.0f} ms   {r.outcome}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strom", help="another checkout to compare with (its src/ is used)")
    ap.add_argument("--gib", type=float, default=1.0, help="size of the compacted/recovered log")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds for everything")
    args = ap.parse_args()
    sources = {"this": os.path.join(HERE, "src")}
    if args.strom:
        sources["other"] = os.path.join(os.path.abspath(args.strom), "src")

    def out_of_time(_signum: int, _frame: object) -> None:
        raise OutOfTime(f"gave up after {args.timeout:.0f} s")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.timeout))
    phase_timeout = 120 + 600 * args.gib
    print(
        f"{args.gib:g} GiB logs; probe: ApiVersions v0 every {PROBE_INTERVAL_S * 1000:.0f} ms;"
        f" load: acks=all producer, {LOAD_RATE} records/s; {os.cpu_count()} CPUs"
    )
    results = {name: run(name, src, args.gib, phase_timeout) for name, src in sources.items()}
    signal.alarm(0)
    print(
        "\n  source phase      duration probes   p50 ms   p99 ms   max ms produced"
        "  longest ack gap  what the disk work did"
    )
    for name, rs in results.items():
        report(name, rs)
    for name, src in sources.items():
        print(f"  {name}: {src}")


if __name__ == "__main__":
    main()
