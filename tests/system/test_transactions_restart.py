"""Transactions across broker restarts (clean and kill -9): what was committed stays
committed, and a transaction left open by a dead producer is aborted at its timeout, which
unblocks read_committed consumers."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.compat.util import create_topic
from tests.conftest import StromProcess

FAST_ABORTS = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "300"}


def _restart(strom: StromProcess, how: str) -> None:
    if how == "stop":
        assert strom.stop() == 0
    else:
        strom.kill()
    strom.start()


def _read_committed(strom: StromProcess, topic: str, expect: int, rounds: int = 60) -> list[bytes]:
    c = Consumer(
        {
            "bootstrap.servers": strom.bootstrap,
            "group.id": f"rc-{uuid.uuid4().hex[:6]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    out: list[bytes] = []
    try:
        for _ in range(rounds):
            out += [m.value() for m in c.consume(100, 0.5) if m.error() is None]
            if len(out) >= expect:
                break
    finally:
        c.close()
    return out


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_committed_survives_and_open_is_aborted_at_its_timeout(strom_factory, how: str) -> None:  # noqa: ANN001
    strom = strom_factory(config=FAST_ABORTS)
    create_topic(strom.bootstrap, "t", 1)
    p = Producer(
        {
            "bootstrap.servers": strom.bootstrap,
            "transactional.id": "restart-me",
            "transaction.timeout.ms": 4000,
        }
    )
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("t", b"committed")
    p.commit_transaction(30)
    p.begin_transaction()
    p.produce("t", b"left-open")
    assert p.flush(30) == 0
    plain = Producer({"bootstrap.servers": strom.bootstrap})
    plain.produce("t", b"plain-after")
    assert plain.flush(30) == 0
    # the open transaction holds read_committed consumers at its first offset
    assert _read_committed(strom, "t", 2, rounds=4) == [b"committed"]
    _restart(strom, how)
    # after the restart the coordinator still knows the transaction and aborts it at its
    # timeout: the consumer then gets what came after it, never the aborted record
    assert _read_committed(strom, "t", 2) == [b"committed", b"plain-after"]
    again = Producer({"bootstrap.servers": strom.bootstrap, "transactional.id": "restart-me"})
    again.init_transactions(30)  # the id lives on, with a newer epoch
    again.begin_transaction()
    again.produce("t", b"next")
    again.commit_transaction(30)
    assert _read_committed(strom, "t", 3) == [b"committed", b"plain-after", b"next"]
