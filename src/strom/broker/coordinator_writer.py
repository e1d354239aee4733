"""How coordinators write their internal topics on this broker: through the replica manager
(leader checks, min.insync.replicas, the high watermark, waking fetches), with commits awaited
as acks=all produces are."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from strom.broker.replica_manager import AppendWait, ReplicaManager
from strom.coordinator.writer import Record, TxnProducer, encode_batches, marker_batch
from strom.protocol.errors import ErrorCode
from strom.protocol.records import BatchView
from strom.storage.log import AppendOrigin


class ReplicatedWriter:
    """A PartitionWriter (strom.coordinator.writer) for one internal topic."""

    def __init__(self, topic: str, replicas: ReplicaManager, commit_timeout_ms: int) -> None:
        self.topic = topic
        self.replicas = replicas
        self.commit_timeout_s = commit_timeout_ms / 1000

    def append(
        self,
        partition: int,
        records: Sequence[Record],
        timestamp: int,
        producer: TxnProducer | None = None,
    ) -> int:
        p = self.replicas.leader(self.topic, partition)
        data = encode_batches(records, timestamp, p.log.config.max_message_bytes, producer)
        return self._append(partition, data)

    def append_marker(
        self, partition: int, marker: TxnProducer, commit: bool, coordinator_epoch: int
    ) -> int:
        return self._append(partition, marker_batch(marker, commit, coordinator_epoch))

    def _append(self, partition: int, data: bytearray) -> int:
        outcome = self.replicas.append(self.topic, partition, data, -1, AppendOrigin.COORDINATOR)
        return outcome.last_offset + 1

    def high_watermark(self, partition: int) -> int:
        p = self.replicas.partitions.get((self.topic, partition))
        return -1 if p is None else p.high_watermark

    async def wait_committed(self, partition: int, offset: int) -> ErrorCode:
        tp = (self.topic, partition)
        p = self.replicas.partitions.get(tp)
        if p is None or not p.is_leader:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        done = await self.replicas.wait_for_acks({tp: AppendWait(p, offset)}, self.commit_timeout_s)
        return done[tp]

    def batches(self, partition: int) -> Iterator[BatchView]:
        log = self.replicas.leader(self.topic, partition).log
        yield from log.iter_batches(max_offset=log.log_end_offset)
