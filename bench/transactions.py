"""What exactly-once costs: produce throughput of a plain, an idempotent and a transactional
producer (a commit every 100 ms), and read_committed against read_uncommitted consumption.

    .venv/bin/python bench/transactions.py [--mb 256] [--rounds 3]

One fresh `strom serve`; 1 KiB records, acks=all, one partition, confluent-kafka. The modes
take turns round by round (so each sees the same machine) and the medians are reported with
their ratio to the plain producer. Client and broker share this machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import confluent_kafka as ck

from broker import RECORD, Broker, create_topic

COMMIT_EVERY_S = 0.1


def produce(bootstrap: str, topic: str, n: int, mode: str) -> float:
    """Seconds to produce n records and have them acknowledged (and committed)."""
    config = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1 << 20,
        "queue.buffering.max.kbytes": 1 << 20,
        "queue.buffering.max.messages": 1_000_000,
        "enable.idempotence": mode != "plain",
    }
    if mode == "transactional":
        config["transactional.id"] = f"bench-{topic}"
    p = ck.Producer(config)
    value = os.urandom(RECORD)
    txn = mode == "transactional"
    if txn:
        p.init_transactions(30)
    t0 = time.perf_counter()
    if txn:
        p.begin_transaction()
    last_commit = t0
    for i in range(n):
        try:
            p.produce(topic, value)
        except BufferError:
            p.poll(0.001)
            p.produce(topic, value)
        if txn and i % 256 == 0 and time.perf_counter() - last_commit >= COMMIT_EVERY_S:
            p.commit_transaction(30)
            p.begin_transaction()
            last_commit = time.perf_counter()
    if txn:
        p.commit_transaction(60)
    elif p.flush(120):
        raise RuntimeError("records not delivered")
    return time.perf_counter() - t0


def consume(bootstrap: str, topic: str, n: int, isolation: str, partitions: int) -> float:
    c = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench",
            "enable.auto.commit": False,
            "isolation.level": isolation,
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
        msgs = c.consume(min(1000, n - got), 5)  # no wait for records that never come
        if not msgs:
            raise RuntimeError(f"consumer stalled at {got}/{n}")
        got += sum(1 for m in msgs if m.error() is None)
    elapsed = time.perf_counter() - t0
    c.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=256, help="MB per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=1)
    args = ap.parse_args()
    n = (args.mb << 20) // RECORD
    tmp = tempfile.mkdtemp(prefix="strom-bench-")
    b = Broker(tmp)
    modes = ("plain", "idempotent", "transactional")
    rates: dict[str, list[float]] = {m: [] for m in modes}
    reads: dict[str, list[float]] = {"read_uncommitted": [], "read_committed": []}
    try:
        time.sleep(1)
        for r in range(args.rounds):
            order = modes if r % 2 == 0 else tuple(reversed(modes))
            for mode in order:
                topic = f"{mode}-{r}"
                create_topic(b.bootstrap, topic, args.partitions)
                rates[mode].append(n * RECORD / produce(b.bootstrap, topic, n, mode) / 1e6)
            levels = tuple(reads) if r % 2 == 0 else tuple(reversed(tuple(reads)))
            for level in levels:
                secs = consume(b.bootstrap, f"transactional-{r}", n, level, args.partitions)
                reads[level].append(n * RECORD / secs / 1e6)
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    plain = statistics.median(rates["plain"])
    for mode in modes:
        med = statistics.median(rates[mode])
        print(f"produce {mode:<14} {med:6.0f} MB/s  ({med / plain:.2f} of plain)")
    unc = statistics.median(reads["read_uncommitted"])
    for level, values in reads.items():
        med = statistics.median(values)
        print(f"consume {level:<17} {med:6.0f} MB/s  ({med / unc:.2f} of read_uncommitted)")


if __name__ == "__main__":
    main()
