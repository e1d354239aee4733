"""Where a coordinator's records go: the partitions of its internal topic.

`PartitionWriter` is what the coordinator runtime needs of a partition: append records as one
write, tell the high watermark, wait until it passes an offset, read the batches back.
`LogWriter` implements it over plain logs (tests and tools: a lone log commits what it writes at
once); the broker's writer (strom.broker.coordinator_writer) goes through the replica manager.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from strom.protocol.errors import ErrorCode
from strom.protocol.records import BatchView, build_batch
from strom.storage.log import AppendOrigin, Log

Record = tuple[bytes, bytes | None]

RECORD_OVERHEAD = 32  # a generous bound on a record's framing inside a batch


class PartitionWriter(Protocol):
    def append(self, partition: int, records: Sequence[Record], timestamp: int) -> int:
        """Append the records as one write (all land or none); the offset after the last one.
        Raises KafkaError."""
        ...

    def high_watermark(self, partition: int) -> int: ...

    async def wait_committed(self, partition: int, offset: int) -> ErrorCode:
        """Wait until the high watermark reaches offset: NONE, or why it did not (a timeout,
        leadership lost)."""
        ...

    def batches(self, partition: int) -> Iterator[BatchView]:
        """Every batch of the partition, from its log start to its end now."""
        ...


def encode_batches(records: Sequence[Record], timestamp: int, max_message_bytes: int) -> bytearray:
    """The records as batches back to back, each within max_message_bytes."""
    limit = max(max_message_bytes - 256, 1024)
    chunks: list[bytes] = []
    current: list[Record] = []
    size = 0
    for rec in records:
        n = len(rec[0]) + (len(rec[1]) if rec[1] is not None else 0) + RECORD_OVERHEAD
        if current and size + n > limit:
            chunks.append(build_batch(current, timestamp=timestamp))
            current, size = [], 0
        current.append(rec)
        size += n
    if current:
        chunks.append(build_batch(current, timestamp=timestamp))
    return bytearray(chunks[0] if len(chunks) == 1 else b"".join(chunks))


class LogWriter:
    """A PartitionWriter over plain logs, one per partition: what is written is committed."""

    def __init__(self, log_of: Callable[[int], Log]) -> None:
        self.log_of = log_of

    def append(self, partition: int, records: Sequence[Record], timestamp: int) -> int:
        log = self.log_of(partition)
        data = encode_batches(records, timestamp, log.config.max_message_bytes)
        return log.append(data, origin=AppendOrigin.COORDINATOR).last_offset + 1

    def high_watermark(self, partition: int) -> int:
        return self.log_of(partition).log_end_offset

    async def wait_committed(self, partition: int, offset: int) -> ErrorCode:
        return ErrorCode.NONE

    def batches(self, partition: int) -> Iterator[BatchView]:
        log = self.log_of(partition)
        yield from log.iter_batches(max_offset=log.log_end_offset)
