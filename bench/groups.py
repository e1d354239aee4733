"""Consumer group benchmarks against a real `strom serve` process.

    .venv/bin/python bench/groups.py [--rounds N] [--quick]

Reports, for the classic protocol (eager range and cooperative-sticky) and the consumer protocol
(KIP-848):

- formation: from 10 confluent-kafka consumers subscribing (one process, one thread each) until
  every partition of a 20-partition topic is assigned to exactly one of them;
- rebalance after one leaves: from one consumer's close() (LeaveGroup / leave heartbeat) until
  the other nine own every partition again;

and OffsetCommit throughput: sequential round trips of one request at a time over one
connection (1 partition per request and 100 partitions per request), and pipelined requests
(many in flight on one connection). The broker runs with group.initial.rebalance.delay.ms=0
unless --delay is given (Kafka's default is 3000 ms, which formation then waits for).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from strom.protocol.frames import decode_response, encode_request  # noqa: E402
from strom.protocol.messages.offset_commit import OffsetCommitRequest  # noqa: E402

PARTITIONS = 20
MEMBERS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, data_dir: str, config: dict[str, str]) -> None:
        self.port = free_port()
        props = os.path.join(data_dir, "broker.properties")
        with open(props, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in config.items())
        self.log = open(os.path.join(data_dir, "broker.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "strom.cli.main", "serve", "--data-dir", data_dir + "/d"]
            + ["--listen", f"127.0.0.1:{self.port}", "--log-level", "WARNING", "--config", props]
            + ["--registry-listen", "off"],
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

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.log.close()


class Member(threading.Thread):
    """One consumer polling in its own thread; `owned` is its current assignment."""

    def __init__(self, bootstrap: str, group: str, topic: str, conf: dict) -> None:
        super().__init__(daemon=True)
        self.consumer = ck.Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
                **conf,
            }
        )
        self.topic = topic
        self.owned: frozenset[int] = frozenset()
        self.stop = threading.Event()
        self.closed = threading.Event()

    def run(self) -> None:
        self.consumer.subscribe([self.topic])
        while not self.stop.is_set():
            self.consumer.poll(0.01)
            self.owned = frozenset(tp.partition for tp in self.consumer.assignment())
        self.owned = frozenset()
        self.consumer.close()
        self.closed.set()


def _all_owned_once(members: list[Member]) -> bool:
    """Every member has partitions and every partition has exactly one owner."""
    owned = [p for m in members for p in m.owned]
    return (
        all(m.owned for m in members)
        and len(owned) == PARTITIONS
        and set(owned) == set(range(PARTITIONS))
    )


def _wait(members: list[Member], timeout: float = 120.0) -> float:
    t0 = time.perf_counter()
    while not _all_owned_once(members):
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError("the group did not settle")
        time.sleep(0.002)
    return time.perf_counter() - t0


def group_round(bootstrap: str, topic: str, group: str, conf: dict) -> tuple[float, float]:
    members = [Member(bootstrap, group, topic, conf) for _ in range(MEMBERS)]
    t0 = time.perf_counter()
    for m in members:
        m.start()
    _wait(members)
    formed = time.perf_counter() - t0
    time.sleep(1.0)  # let the group settle (cooperative: the second rebalance)
    _wait(members)
    leaver, rest = members[0], members[1:]
    t1 = time.perf_counter()
    leaver.stop.set()
    leaver.closed.wait(30)
    _wait(rest)
    rebalance = time.perf_counter() - t1
    for m in rest:
        m.stop.set()
    for m in rest:
        m.closed.wait(30)
    return formed, rebalance


def commit_throughput(bootstrap: str, topic: str, seconds: float) -> dict[str, float]:
    host, port = bootstrap.rsplit(":", 1)
    out: dict[str, float] = {}

    def request(n_parts: int, offset: int) -> OffsetCommitRequest:
        return OffsetCommitRequest(
            group_id="bench-commits",
            generation_id_or_member_epoch=-1,
            member_id="",
            topics=[
                OffsetCommitRequest.OffsetCommitRequestTopic(
                    name=topic,
                    partitions=[
                        OffsetCommitRequest.OffsetCommitRequestPartition(
                            partition_index=p % PARTITIONS, committed_offset=offset
                        )
                        for p in range(n_parts)
                    ],
                )
            ],
        )

    def read_frame(sock: socket.socket, buf: bytearray) -> bytes:
        while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        n = struct.unpack_from(">i", buf)[0]
        frame = bytes(buf[4 : 4 + n])
        del buf[: 4 + n]
        return frame

    for n_parts in (1, PARTITIONS * 5):
        sock = socket.create_connection((host, int(port)))
        buf = bytearray()
        count = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            sock.sendall(encode_request(request(n_parts, count), 8, count))
            _, r = decode_response(read_frame(sock, buf), 8, 8)
            assert all(p.error_code == 0 for t in r.topics for p in t.partitions)
            count += 1
        elapsed = time.perf_counter() - t0
        sock.close()
        out[f"sequential, {n_parts} partition(s) per request: requests/s"] = count / elapsed
        out[f"sequential, {n_parts} partition(s) per request: offsets/s"] = (
            count * n_parts / elapsed
        )
    # Pipelined: a sender thread keeps requests in flight while this thread reads answers.
    sock = socket.create_connection((host, int(port)))
    total = 20000
    frames = b"".join(encode_request(request(1, i), 8, i) for i in range(total))
    buf = bytearray()
    t0 = time.perf_counter()
    sender = threading.Thread(target=sock.sendall, args=(frames,), daemon=True)
    sender.start()
    for _ in range(total):
        read_frame(sock, buf)
    elapsed = time.perf_counter() - t0
    sender.join()
    sock.close()
    out["pipelined, 1 partition per request: requests/s"] = total / elapsed
    return out


PROTOCOLS = {
    "classic, eager (range)": {
        "partition.assignment.strategy": "range",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
    },
    "classic, cooperative-sticky": {
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
    },
    "consumer (KIP-848, uniform)": {"group.protocol": "consumer"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 rounds, 2 s of commits")
    ap.add_argument("--delay", type=int, default=0, help="group.initial.rebalance.delay.ms")
    ap.add_argument(
        "--heartbeat", type=int, default=500, help="group.consumer.heartbeat.interval.ms"
    )
    ap.add_argument(
        "--client-heartbeat",
        type=int,
        default=1000,
        help="heartbeat.interval.ms of the classic consumers",
    )
    args = ap.parse_args()
    rounds = 2 if args.quick else args.rounds
    seconds = 2.0 if args.quick else 5.0
    tmp = tempfile.mkdtemp(prefix="strom-bench-groups-")
    broker = Broker(
        tmp,
        {
            "group.initial.rebalance.delay.ms": str(args.delay),
            "group.consumer.heartbeat.interval.ms": str(args.heartbeat),
        },
    )
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("bench", PARTITIONS, 1)])["bench"].result(15)
        print(
            f"{MEMBERS} consumers, {PARTITIONS} partitions, initial delay {args.delay} ms, "
            f"KIP-848 heartbeat interval {args.heartbeat} ms, classic heartbeat interval "
            f"{args.client_heartbeat} ms; median (min-max) of {rounds} rounds"
        )
        for name, conf in PROTOCOLS.items():
            if "heartbeat.interval.ms" in conf:
                conf = {**conf, "heartbeat.interval.ms": args.client_heartbeat}
            formed, rebalanced = [], []
            for i in range(rounds):
                f, r = group_round(broker.bootstrap, "bench", f"bench-{len(name)}-{i}", conf)
                formed.append(f)
                rebalanced.append(r)
            print(
                f"{name:32s} form {statistics.median(formed) * 1000:7.0f} ms "
                f"({min(formed) * 1000:.0f}-{max(formed) * 1000:.0f})   "
                f"rebalance after a leave {statistics.median(rebalanced) * 1000:7.0f} ms "
                f"({min(rebalanced) * 1000:.0f}-{max(rebalanced) * 1000:.0f})"
            )
        for label, value in commit_throughput(broker.bootstrap, "bench", seconds).items():
            print(f"OffsetCommit {label:55s} {value:10,.0f}")
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
