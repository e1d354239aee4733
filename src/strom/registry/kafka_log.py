"""The `_schemas` topic through the Kafka protocol (confluent-kafka): a reader thread applies
every record to the state; a write produces records and waits until the reader applied them.
Works against Strom or any Kafka cluster."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from strom.registry import errors as err
from strom.registry import records as rec
from strom.registry.state import RegistryState

log = logging.getLogger(__name__)

TOPIC = "_schemas"


class KafkaSchemaLog:
    """The registry's state, kept up to date from a single-partition compacted topic."""

    def __init__(
        self,
        bootstrap: str,
        topic: str = TOPIC,
        timeout_s: float = 30.0,
        client_config: dict[str, object] | None = None,
    ) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self.state = RegistryState()
        self.lock = threading.RLock()
        self._applied = threading.Condition(self.lock)
        self._next_offset = 0  # the offset after the last record applied
        self._stop = threading.Event()
        base = {"bootstrap.servers": bootstrap, **(client_config or {})}
        self._base = base
        self._producer = Producer(
            {**base, "acks": "all", "enable.idempotence": True, "linger.ms": 0}
        )
        self._consumer = Consumer(
            {
                **base,
                "group.id": f"strom-registry-{uuid.uuid4().hex[:8]}",  # never committed
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "isolation.level": "read_committed",
            }
        )
        # the end offset is asked on a connection of its own: on the reader's, the request
        # would wait behind its long-polling fetch (a broker answers a connection in order)
        self._ends = Consumer({**base, "group.id": "strom-registry-ends"})
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Create the topic if need be, then read it to its end before returning."""
        self._ensure_topic()
        self._consumer.assign([TopicPartition(self.topic, 0, 0)])
        self._thread = threading.Thread(target=self._read, name="registry-reader", daemon=True)
        self._thread.start()
        self.sync()
        log.info(
            "registry: read %s to offset %d (%d subjects, max id %d)",
            self.topic,
            self._next_offset,
            len(self.state.subjects),
            self.state.max_id,
        )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._consumer.close()
        self._ends.close()
        self._producer.flush(5)

    def _ensure_topic(self) -> None:
        admin = AdminClient(self._base)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                md = admin.list_topics(timeout=5)
            except KafkaException as e:
                if time.monotonic() > deadline:
                    raise err.store_error(f"cannot reach Kafka: {e}") from None
                time.sleep(0.5)
                continue
            if self.topic in md.topics and not md.topics[self.topic].error:
                return
            replicas = max(1, min(3, len(md.brokers)))
            futures = admin.create_topics(
                [
                    NewTopic(
                        self.topic,
                        1,
                        replicas,
                        config={"cleanup.policy": "compact"},
                    )
                ]
            )
            try:
                futures[self.topic].result(self.timeout_s)
                log.info("registry: created topic %s (replication factor %d)", self.topic, replicas)
                return
            except KafkaException as e:
                code = e.args[0].code() if e.args else None
                if code == KafkaError.TOPIC_ALREADY_EXISTS:
                    return
                if time.monotonic() > deadline:
                    raise err.store_error(f"cannot create {self.topic}: {e}") from None
                time.sleep(0.5)

    # -- reading ---------------------------------------------------------------------------

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                # poll returns as soon as one record is there (consume would wait out its
                # timeout to fill the batch); then whatever else has arrived, without waiting
                first = self._consumer.poll(0.2)
                if first is None:
                    continue
                messages = [first, *self._consumer.consume(500, 0)]
            except KafkaException as e:
                log.warning("registry: reading %s failed: %s", self.topic, e)
                time.sleep(0.5)
                continue
            with self._applied:
                for m in messages:
                    if m.error() is not None:
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("registry: %s: %s", self.topic, m.error())
                        continue
                    try:
                        self.state.apply(rec.decode(m.key(), m.value()))
                    except rec.MalformedRecord as e:
                        log.warning(
                            "registry: record at offset %d of %s skipped: %s",
                            m.offset(),
                            self.topic,
                            e,
                        )
                    self._next_offset = m.offset() + 1
                self._applied.notify_all()

    def _wait_applied(self, offset: int) -> None:
        deadline = time.monotonic() + self.timeout_s
        with self._applied:
            while self._next_offset < offset:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise err.timed_out(
                        f"the registry read {self.topic} to offset {self._next_offset}, "
                        f"not {offset}"
                    )
                self._applied.wait(remaining)

    def sync(self) -> None:
        """Wait until everything in the topic as of now has been applied."""
        try:
            _low, high = self._ends.get_watermark_offsets(
                TopicPartition(self.topic, 0), timeout=self.timeout_s, cached=False
            )
        except KafkaException as e:
            raise err.store_error(f"cannot read the end of {self.topic}: {e}") from None
        self._wait_applied(high)

    # -- writing ---------------------------------------------------------------------------

    def write(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        if not records:
            return
        results: list[object] = []

        def delivered(error: object, message: object) -> None:
            results.append(error if error is not None else message)

        try:
            for key, value in records:
                self._producer.produce(
                    self.topic, key=key, value=value, partition=0, on_delivery=delivered
                )
        except (KafkaException, BufferError) as e:
            raise err.store_error(str(e)) from None
        remaining = self._producer.flush(self.timeout_s)
        if remaining or len(results) < len(records):
            raise err.timed_out(f"{remaining} record(s) not acknowledged")
        last = -1
        for r in results:
            if isinstance(r, KafkaError):
                raise err.store_error(r.str())
            last = max(last, r.offset())  # type: ignore[attr-defined]
        self._wait_applied(last + 1)
