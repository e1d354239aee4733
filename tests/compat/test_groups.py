"""Consumer groups with confluent-kafka (librdkafka) consumers in separate processes against a
real `strom serve`: three members share a 6-partition topic, one leaves, one is killed (session
timeout), the survivor takes over, and a consumer started after a commit/restart cycle reads
exactly what was not committed. The same with eager (range), cooperative-sticky, static
membership (a restart within the session timeout is no rebalance) and group.protocol=consumer
(KIP-848).

Each worker commits every record synchronously before it reports it, so what the workers report
is what was committed: across all of them no record may be reported twice (a committed record
read again) and every produced record must be reported (nothing skipped).

Run as `python -m tests.compat.test_groups BOOTSTRAP GROUP TOPIC NAME CONF_JSON` this module is
such a worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from tests.conftest import StromProcess

from .util import create_topic

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6
PER_BATCH = 5  # records per partition per batch

BROKER = {
    "group.initial.rebalance.delay.ms": "100",
    "group.min.session.timeout.ms": "6000",
    "group.consumer.session.timeout.ms": "6000",
    "group.consumer.heartbeat.interval.ms": "500",
}
CLASSIC = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "max.poll.interval.ms": 20000,
}
EAGER = {**CLASSIC, "partition.assignment.strategy": "range"}
COOPERATIVE = {**CLASSIC, "partition.assignment.strategy": "cooperative-sticky"}
CONSUMER_PROTOCOL = {"group.protocol": "consumer"}


# -- the worker process ------------------------------------------------------------------------


def worker(bootstrap: str, group: str, topic: str, name: str, extra: dict) -> None:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": name,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
        **extra,
    }
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def emit(**event: object) -> None:
        print(json.dumps(event), flush=True)

    c = Consumer(conf)
    c.subscribe(
        [topic],
        on_assign=lambda _c, ps: emit(event="assign", parts=[p.partition for p in ps]),
        on_revoke=lambda _c, ps: emit(event="revoke", parts=[p.partition for p in ps]),
        on_lost=lambda _c, ps: emit(event="lost", parts=[p.partition for p in ps]),
    )
    emit(event="started")
    while not stop.is_set():
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        try:
            c.commit(message=m, asynchronous=False)
        except KafkaException as e:
            emit(event="commit-failed", p=m.partition(), o=m.offset(), error=str(e))
            continue
        emit(event="record", p=m.partition(), o=m.offset(), v=m.value().decode())
    c.close()
    emit(event="closed")


# -- the test side ---------------------------------------------------------------------------------


class Worker:
    """A worker process and the events it reported."""

    def __init__(self, strom: StromProcess, group: str, topic: str, name: str, conf: dict) -> None:
        self.name = name
        self.events: list[dict] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.compat.test_groups"]
            + [strom.bootstrap, group, topic, name, json.dumps(conf)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def records(self) -> list[tuple[int, int]]:
        return [(e["p"], e["o"]) for e in list(self.events) if e["event"] == "record"]

    def rebalance_events(self) -> list[dict]:
        return [e for e in list(self.events) if e["event"] in ("assign", "revoke", "lost")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self._reader.join(5)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)


def owned(w: Worker) -> set:
    """The partitions a worker owns now, from its assign/revoke/lost events in order."""
    parts: set = set()
    for e in list(w.events):
        if e["event"] == "assign":
            parts |= set(e["parts"])
        elif e["event"] in ("revoke", "lost"):
            parts -= set(e["parts"])
    return parts


def wait_for(what: str, check: Callable[[], object], timeout: float = 40.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Scenario:
    def __init__(self, strom: StromProcess, group: str, conf: dict) -> None:
        self.strom = strom
        self.group = group
        self.topic = f"{group}-topic"
        self.conf = conf
        self.workers: list[Worker] = []
        self.produced: set[tuple[int, int]] = set()
        self.batches = 0
        create_topic(strom.bootstrap, self.topic, PARTITIONS)
        self.producer = Producer({"bootstrap.servers": strom.bootstrap, "linger.ms": 5})
        self.admin = AdminClient({"bootstrap.servers": strom.bootstrap})

    def start(self, name: str, **extra: object) -> Worker:
        w = Worker(self.strom, self.group, self.topic, name, {**self.conf, **extra})
        self.workers.append(w)
        return w

    def produce_batch(self) -> None:
        """PER_BATCH records to every partition; their offsets are the batch's."""
        self.batches += 1
        delivered: list[tuple[int, int]] = []

        def on_delivery(err: object, msg: object) -> None:
            assert err is None, err
            delivered.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

        for p in range(PARTITIONS):
            for i in range(PER_BATCH):
                self.producer.produce(
                    self.topic,
                    f"b{self.batches}-p{p}-{i}".encode(),
                    partition=p,
                    on_delivery=on_delivery,
                )
        self.producer.flush(15)
        assert len(delivered) == PARTITIONS * PER_BATCH
        self.produced.update(delivered)

    def reported(self) -> list[tuple[int, int]]:
        return [r for w in self.workers for r in w.records()]

    def wait_consumed(self) -> None:
        wait_for(
            f"all {len(self.produced)} records consumed",
            lambda: self.produced <= set(self.reported()),
        )

    def assignment(self) -> dict[str, list[int]]:
        """The group's members and their partitions, as the broker describes them."""
        future = self.admin.describe_consumer_groups([self.group], request_timeout=10)[self.group]
        try:
            d = future.result(15)
        except KafkaException:
            return {}
        return {
            m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions)
            for m in d.members
        }

    def wait_members(self, n: int) -> dict[str, list[int]]:
        """Until n members own every partition, each exactly once."""

        def check() -> dict[str, list[int]] | None:
            a = self.assignment()
            owned = [p for parts in a.values() for p in parts]
            if len(a) == n and sorted(owned) == list(range(PARTITIONS)):
                return a
            return None

        return wait_for(f"{n} members owning every partition once", check)  # type: ignore[return-value]

    def check_exactly_once(self) -> None:
        reported = self.reported()
        assert len(reported) == len(set(reported)), "a committed record was read again"
        assert set(reported) == self.produced, "records were skipped"

    def close(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.kill()


def _leave_kill_restart(s: Scenario, static: bool = False) -> None:
    ids = {"a": "inst-a", "b": "inst-b", "c": "inst-c"}

    def start(name: str) -> Worker:
        return s.start(name, **({"group.instance.id": ids[name[0]]} if static else {}))

    s.produce_batch()
    a, b, c = start("a"), start("b"), start("c")
    s.wait_members(3)
    s.wait_consumed()
    if static:
        # a restarts within the session timeout: it comes back as the same static member, with
        # the same partitions, and nobody else sees a rebalance.
        before = {w.name: len(w.rebalance_events()) for w in (b, c)}
        # cooperative assignments arrive in increments (one may be empty): compare what a owns
        mine = wait_for("a's partitions", lambda: owned(a))
        a.stop()
        a = start("a2")
        wait_for("a2 to own what a owned", lambda: owned(a) == mine)
        s.produce_batch()
        s.wait_consumed()
        assert {w.name: len(w.rebalance_events()) for w in (b, c)} == before
        assert len(s.wait_members(3)) == 3
    else:
        a.stop()  # leaves the group: the others take its partitions over
        s.wait_members(2)
        s.produce_batch()
        s.wait_consumed()
    b.kill()  # no goodbye: the session timeout removes it
    s.produce_batch()
    s.wait_members(2 if static else 1)
    s.wait_consumed()
    # The commit/restart cycle: everyone stops, more records arrive, a new member resumes.
    for w in (a, c):
        w.stop()
    done = set(s.reported())
    s.produce_batch()
    d = start("d" if not static else "c2")
    s.wait_consumed()
    assert set(d.records()) == s.produced - done, "the new member must read exactly the rest"
    d.stop()
    s.check_exactly_once()


@pytest.mark.parametrize(
    "conf",
    [EAGER, COOPERATIVE, CONSUMER_PROTOCOL],
    ids=["eager-range", "cooperative-sticky", "consumer-protocol"],
)
def test_three_consumers_leave_kill_resume(strom_factory, conf: dict) -> None:  # noqa: ANN001
    strom = strom_factory(config=BROKER)
    s = Scenario(strom, f"grp-{conf.get('partition.assignment.strategy', 'kip848')}", conf)
    try:
        _leave_kill_restart(s)
    finally:
        s.close()
    log = strom.log()
    assert "Traceback" not in log


def test_static_membership_restart_is_no_rebalance(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory(config=BROKER)
    s = Scenario(strom, "grp-static", COOPERATIVE)
    try:
        _leave_kill_restart(s, static=True)
    finally:
        s.close()
    assert "static member inst-a rejoined" in strom.log()


if __name__ == "__main__":
    bootstrap_, group_, topic_, name_, conf_ = sys.argv[1:6]
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    worker(bootstrap_, group_, topic_, name_, json.loads(conf_))
