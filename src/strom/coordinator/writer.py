"""Where a coordinator's records go: the partitions of its internal topic.

`PartitionWriter` is what the coordinator runtime needs of a partition: append records as one
write, tell the high watermark, wait until it passes an offset, read the batches back.
`LogWriter` implements it over plain logs (tests and tools: a lone log commits what it writes at
once); the broker's writer (strom.broker.coordinator_writer) goes through the replica manager.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from strom.protocol.errors import ErrorCode
from strom.protocol.records import (
    CONTROL_TYPE_ABORT,
    CONTROL_TYPE_COMMIT,
    BatchView,
    build_batch,
    build_control_batch,
)
from strom.storage.log import AppendOrigin, Log

Record = tuple[bytes, bytes | None]

RECORD_OVERHEAD = 32  # a generous bound on a record's framing inside a batch


def marker_batch(marker: TxnProducer, commit: bool, coordinator_epoch: int) -> bytearray:
    """A transaction marker: commit or abort of the producer's transaction."""
    return bytearray(
        build_control_batch(
            CONTROL_TYPE_COMMIT if commit else CONTROL_TYPE_ABORT,
            producer_id=marker.producer_id,
            producer_epoch=marker.producer_epoch,
            coordinator_epoch=coordinator_epoch,
        )
    )


@dataclass(frozen=True, slots=True)
class TxnProducer:
    """The producer whose transaction a write belongs to (TxnOffsetCommit's records)."""

    producer_id: int
    producer_epoch: int


class PartitionWriter(Protocol):
    def append(
        self,
        partition: int,
        records: Sequence[Record],
        timestamp: int,
        producer: TxnProducer | None = None,
    ) -> int:
        """Append the records as one write (all land or none), in transactional batches of
        `producer` if given; the offset after the last one. Raises KafkaError."""
        ...

    def append_marker(
        self, partition: int, marker: TxnProducer, commit: bool, coordinator_epoch: int
    ) -> int:
        """Append a transaction marker (a control batch); the offset after it."""
        ...

    def high_watermark(self, partition: int) -> int: ...

    async def wait_committed(self, partition: int, offset: int) -> ErrorCode:
        """Wait until the high watermark reaches offset: NONE, or why it did not (a timeout,
        leadership lost)."""
        ...

    def batches(self, partition: int) -> Iterator[BatchView]:
        """Every batch of the partition, from its log start to its end now."""
        ...


def encode_batches(
    records: Sequence[Record],
    timestamp: int,
    max_message_bytes: int,
    producer: TxnProducer | None = None,
) -> bytearray:
    """The records as batches back to back, each within max_message_bytes (transactional
    batches of `producer` if given)."""
    txn = (
        {}
        if producer is None
        else {
            "producer_id": producer.producer_id,
            "producer_epoch": producer.producer_epoch,
            "transactional": True,
        }
    )
    limit = max(max_message_bytes - 256, 1024)
    chunks: list[bytes] = []
    current: list[Record] = []
    size = 0
    for rec in records:
        n = len(rec[0]) + (len(rec[1]) if rec[1] is not None else 0) + RECORD_OVERHEAD
        if current and size + n > limit:
            chunks.append(build_batch(current, timestamp=timestamp, **txn))
            current, size = [], 0
        current.append(rec)
        size += n
    if current:
        chunks.append(build_batch(current, timestamp=timestamp, **txn))
    return bytearray(chunks[0] if len(chunks) == 1 else b"".join(chunks))


class LogWriter:
    """A PartitionWriter over plain logs, one per partition: what is written is committed."""

    def __init__(self, log_of: Callable[[int], Log]) -> None:
        self.log_of = log_of

    def append(
        self,
        partition: int,
        records: Sequence[Record],
        timestamp: int,
        producer: TxnProducer | None = None,
    ) -> int:
        log = self.log_of(partition)
        data = encode_batches(records, timestamp, log.config.max_message_bytes, producer)
        return log.append(data, origin=AppendOrigin.COORDINATOR).last_offset + 1

    def append_marker(
        self, partition: int, marker: TxnProducer, commit: bool, coordinator_epoch: int
    ) -> int:
        data = marker_batch(marker, commit, coordinator_epoch)
        return self.log_of(partition).append(data, origin=AppendOrigin.COORDINATOR).last_offset + 1

    def high_watermark(self, partition: int) -> int:
        return self.log_of(partition).log_end_offset

    async def wait_committed(self, partition: int, offset: int) -> ErrorCode:
        return ErrorCode.NONE

    def batches(self, partition: int) -> Iterator[BatchView]:
        log = self.log_of(partition)
        yield from log.iter_batches(max_offset=log.log_end_offset)
