"""A consume-transform-produce loop with confluent-kafka transactions, run as its own process
by test_exactly_once.py: `python ctp_processor.py BOOTSTRAP`. It reads `ctp-in`, writes each
value upper-cased to `ctp-out` and commits its input offsets in the same transaction. An
abortable error aborts and rewinds to the committed offsets; a fatal one exits with 3."""

from __future__ import annotations

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer

GROUP = "ctp"


def retrying(call):  # noqa: ANN001, ANN201
    """Call until it succeeds or fails with an error that is not retriable."""
    while True:
        try:
            return call()
        except KafkaException as e:
            if not e.args[0].retriable():
                raise
            time.sleep(0.2)


def rewind(consumer: Consumer) -> None:
    assignment = consumer.assignment()
    if assignment:
        for tp in consumer.committed(assignment, 30):
            consumer.seek(tp) if tp.offset >= 0 else None


def main() -> int:
    bootstrap = sys.argv[1]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": GROUP,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": "ctp-processor",
            "transaction.timeout.ms": 10_000,
        }
    )
    producer.init_transactions(60)
    consumer.subscribe(["ctp-in"])
    while True:
        msgs = [m for m in consumer.consume(100, 0.5) if m.error() is None]
        if not msgs:
            continue
        try:
            producer.begin_transaction()
            for m in msgs:
                producer.produce("ctp-out", m.value().upper(), key=m.value())
            positions = consumer.position(consumer.assignment())
            group = consumer.consumer_group_metadata()
            retrying(lambda: producer.send_offsets_to_transaction(positions, group, 30))  # noqa: B023
            retrying(lambda: producer.commit_transaction(30))
        except KafkaException as e:
            error = e.args[0]
            if not error.txn_requires_abort():
                print(f"fatal: {error}", file=sys.stderr)
                return 3
            retrying(lambda: producer.abort_transaction(30))
            rewind(consumer)


if __name__ == "__main__":
    sys.exit(main())
