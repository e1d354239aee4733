"""Broker benchmarks with librdkafka (confluent-kafka) against a real `strom serve` process.

    .venv/bin/python bench/broker.py [--quick] [--latency-only] [--registry]

Reports produce throughput (1 KiB records; acks=1 and acks=all; 1 and 6 partitions), consume
throughput, end-to-end latency p50/p99 at a fixed rate, broker RSS idle and under load, and
broker CPU seconds per GB produced. Client and broker share this machine. With --registry the
broker also runs its schema registry (idle), as `strom serve` does by default.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic

RECORD = 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A `strom serve` child on a free port; ``registry=True`` also starts its schema registry
    (on another free port, at ``registry_url``), off by default."""

    def __init__(self, data_dir: str, registry: bool = False) -> None:
        self.port = free_port()
        self.registry_port = free_port() if registry else None
        self.log = open(os.path.join(data_dir, "broker.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "strom.cli.main",
                "serve",
                "--data-dir",
                data_dir + "/d",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "WARNING",
                "--registry-listen",
                f"127.0.0.1:{self.registry_port}" if registry else "off",
            ],
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not start")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def registry_url(self) -> str | None:
        return f"http://127.0.0.1:{self.registry_port}" if self.registry_port else None

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(20)


def produce(bootstrap: str, topic: str, total_bytes: int, acks: str) -> tuple[float, int]:
    """Seconds to produce and have acknowledged total_bytes of 1 KiB records."""
    p = ck.Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "linger.ms": 5,
            "batch.size": 1 << 20,
            "queue.buffering.max.kbytes": 1 << 20,
            "queue.buffering.max.messages": 1_000_000,
            "enable.idempotence": acks == "all",
        }
    )
    value = os.urandom(RECORD)
    n = total_bytes // RECORD
    produce_ = p.produce
    t0 = time.perf_counter()
    for _ in range(n):
        try:
            produce_(topic, value)
        except BufferError:
            p.poll(0.001)
            produce_(topic, value)
    left = p.flush(120)
    elapsed = time.perf_counter() - t0
    if left:
        raise RuntimeError(f"{left} records not delivered")
    return elapsed, n


def disk_write_rate(directory: str, total_bytes: int) -> float:
    """Plain sequential os.write of 1 MiB blocks to the broker's disk, MB/s: the ceiling."""
    path = os.path.join(directory, "baseline")
    block = os.urandom(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    t0 = time.perf_counter()
    for _ in range(total_bytes >> 20):
        os.write(fd, block)
    elapsed = time.perf_counter() - t0
    os.close(fd)
    os.unlink(path)
    return total_bytes / elapsed / 1e6


def kcat_consume(bootstrap: str, topic: str, n: int) -> float | None:
    """Seconds for kcat (librdkafka in C) to read n records of partition 0, if kcat is here."""
    kcat = shutil.which("kcat")
    if kcat is None:
        return None
    t0 = time.perf_counter()
    out = subprocess.run(
        [
            kcat,
            "-b",
            bootstrap,
            "-t",
            topic,
            "-p",
            "0",
            "-C",
            "-e",
            "-q",
            "-o",
            "beginning",
            "-c",
            str(n),
            "-f",
            "%o\\n",
            "-X",
            "fetch.max.bytes=104857600",
            "-X",
            "max.partition.fetch.bytes=52428800",
        ],
        capture_output=True,
        check=True,
    )
    elapsed = time.perf_counter() - t0
    if out.stdout.count(b"\n") != n:
        raise RuntimeError("kcat did not read every record")
    return elapsed


def consume(bootstrap: str, topic: str, partitions: int, n: int) -> float:
    c = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 << 20,
            "max.partition.fetch.bytes": 16 << 20,
            "fetch.wait.max.ms": 100,
            "queued.max.messages.kbytes": 1 << 20,
        }
    )
    c.assign([ck.TopicPartition(topic, p, 0) for p in range(partitions)])
    got = 0
    t0 = time.perf_counter()
    while got < n:
        msgs = c.consume(1000, 5)
        if not msgs:
            raise RuntimeError(f"consumer stalled at {got}/{n}")
        got += len(msgs)
    elapsed = time.perf_counter() - t0
    c.close()
    return elapsed


def raw_fetch(bootstrap: str, topic: str, total_records: int) -> float:
    """Seconds to read a partition by plain Fetch requests that parse no records: the broker's
    own fetch rate, without a client's per-record work."""
    from strom.protocol.frames import decode_response, encode_request
    from strom.protocol.messages.fetch import FetchRequest
    from strom.protocol.records import iter_batches

    host, port = bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    buf = bytearray(64 << 20)
    view = memoryview(buf)
    offset = 0
    correlation = 0
    t0 = time.perf_counter()
    while offset < total_records:
        correlation += 1
        req = FetchRequest(
            max_wait_ms=100,
            min_bytes=1,
            max_bytes=32 << 20,
            session_epoch=-1,
            topics=[
                FetchRequest.FetchTopic(
                    topic=topic,
                    partitions=[
                        FetchRequest.FetchPartition(
                            partition=0, fetch_offset=offset, partition_max_bytes=32 << 20
                        )
                    ],
                )
            ],
        )
        sock.sendall(encode_request(req, 12, correlation))
        got = 0
        while got < 4:
            got += sock.recv_into(view[got:4])
        size = int.from_bytes(buf[:4], "big")
        got = 0
        while got < size:
            got += sock.recv_into(view[got:size])
        _, resp = decode_response(view[:size], 1, 12)
        records = resp.responses[0].partitions[0].records
        last = None
        for batch in iter_batches(records, allow_partial_tail=True):
            last = batch
        offset = last.last_offset + 1
    elapsed = time.perf_counter() - t0
    sock.close()
    return elapsed


def latency(bootstrap: str, topic: str, rate: int, seconds: float) -> list[float]:
    """End-to-end latency (ms) of records produced at a fixed rate, timestamped in the value."""
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5})
    c = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "lat",
            "fetch.wait.max.ms": 100,
            "fetch.min.bytes": 1,
            "enable.auto.commit": False,
        }
    )
    c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_END)])
    lat: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            m = c.poll(0.05)  # not consume(n, t): that waits for n records or t
            if m is not None and not m.error():
                sent = float(m.value()[:20])
                lat.append((time.perf_counter() - sent) * 1000)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(1.0)  # the consumer is assigned and polling
    pad = b"x" * (RECORD - 20)
    n = int(rate * seconds)
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0.0005:
            time.sleep(delay)
        p.produce(topic, b"%20.6f" % time.perf_counter() + pad)
        p.poll(0)
    p.flush(10)
    time.sleep(1.0)
    stop.set()
    t.join()
    c.close()
    return lat


def consume_rows(b: Broker, topic: str, n: int, rows: list) -> None:
    """Partition 0 of topic read three ways: by the Python client, by kcat, by plain Fetch."""
    rate = n * RECORD / 1e6
    secs = consume(b.bootstrap, topic, 1, n)
    rows.append(("consume, 1 partition, confluent-kafka", f"{rate / secs:.0f} MB/s", "≥ 700 MB/s"))
    secs = kcat_consume(b.bootstrap, topic, n)
    if secs:
        rows.append(("consume, 1 partition, kcat", f"{rate / secs:.0f} MB/s", "≥ 700 MB/s"))
    cpu0 = b.cpu_seconds()
    secs = raw_fetch(b.bootstrap, topic, n)
    cpu = b.cpu_seconds() - cpu0
    rows.append(
        (
            "consume, 1 partition, plain Fetch (no record parsing)",
            f"{rate / secs:.0f} MB/s (broker CPU {cpu / secs:.0%} of a core)",
            "≥ 700 MB/s",
        )
    )


def latency_row(lat: list[float]) -> tuple[str, str, str]:
    lat.sort()
    p50 = statistics.median(lat)
    p99 = lat[int(len(lat) * 0.99)]
    return (
        "end-to-end latency at 5k rec/s",
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(lat)})",
        "p99 < 7 ms",
    )


def latency_only(seconds: float, registry: bool = False) -> None:
    """Just the latency run, against a fresh broker (idle, with no produce runs before it)."""
    tmp = tempfile.mkdtemp(prefix="strom-bench-")
    b = Broker(tmp, registry)
    try:
        time.sleep(1)
        create_topic(b.bootstrap, "lat", 1)
        cpu0 = b.cpu_seconds()
        row = latency_row(latency(b.bootstrap, "lat", 5000, seconds))
        cpu = b.cpu_seconds() - cpu0
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{row[0]}  {row[1]} broker CPU {cpu:.2f} s  {row[2]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller volumes")
    ap.add_argument(
        "--latency-only", action="store_true", help="only the end-to-end latency (fresh broker)"
    )
    ap.add_argument(
        "--registry", action="store_true", help="run the broker with its schema registry on"
    )
    args = ap.parse_args()
    if args.latency_only:
        latency_only(5 if args.quick else 10, args.registry)
        return
    volume = (256 if args.quick else 1024) << 20
    tmp = tempfile.mkdtemp(prefix="strom-bench-")
    b = Broker(tmp, args.registry)
    rows = []
    try:
        time.sleep(1)
        rows.append(("broker RSS idle", f"{b.rss_mb():.0f} MB", "< 150 MB"))
        rows.append(
            ("plain os.write to the same disk", f"{disk_write_rate(tmp, volume):.0f} MB/s", "")
        )
        cpu_total = 0.0
        bytes_total = 0
        peak_rss = 0.0
        for parts in (1, 6):
            for acks in ("1", "all"):
                topic = f"p{parts}-a{acks}"
                create_topic(b.bootstrap, topic, parts)
                cpu0 = b.cpu_seconds()
                secs, n = produce(b.bootstrap, topic, volume, acks)
                cpu = b.cpu_seconds() - cpu0
                cpu_total += cpu
                bytes_total += n * RECORD
                peak_rss = max(peak_rss, b.rss_mb())
                goal = "≥ 450 MB/s" if (parts, acks) == (1, "1") else ""
                rows.append(
                    (
                        f"produce acks={acks}, {parts} partition(s)",
                        f"{n * RECORD / secs / 1e6:.0f} MB/s ({n / secs / 1e3:.0f}k rec/s), "
                        f"broker CPU {cpu / (n * RECORD / 1e9):.2f} s/GB",
                        goal,
                    )
                )
                if (parts, acks) == (1, "1"):
                    consume_rows(b, topic, n, rows)
                    peak_rss = max(peak_rss, b.rss_mb())
        rows.append(("broker RSS under load (peak)", f"{peak_rss:.0f} MB", ""))
        rows.append(
            ("broker CPU per GB produced", f"{cpu_total / (bytes_total / 1e9):.2f} s", "< 1.5 s")
        )
        create_topic(b.bootstrap, "lat", 1)
        rows.append(latency_row(latency(b.bootstrap, "lat", 5000, 5 if args.quick else 10)))
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:<58} {goal}")


if __name__ == "__main__":
    main()
