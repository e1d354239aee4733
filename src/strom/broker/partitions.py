"""The partitions this broker leads: appends with producer checks, reads, offsets, watermarks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from strom.cluster.metadata import PartitionMeta
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import MAGIC
from strom.storage.log import AppendOrigin, AppendResult, Log, ReadResult
from strom.storage.producer_state import DuplicateBatch, ProducerStateManager

log = logging.getLogger(__name__)

MAGIC_OFFSET = 16  # where a record batch (or old message set entry) keeps its magic byte
EARLIEST = -2
LATEST = -1
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5


@dataclass(slots=True)
class ProduceOutcome:
    base_offset: int
    log_append_time: int
    log_start_offset: int
    duplicate: bool = False


class Partition:
    """One partition led here: its log, producer state and leader epoch."""

    def __init__(self, log_: Log, meta: PartitionMeta) -> None:
        self.log = log_
        self.meta = meta
        self.topic = log_.topic
        self.index = log_.partition
        self._producers: ProducerStateManager | None = None

    @property
    def leader_epoch(self) -> int:
        return self.meta.leader_epoch

    @property
    def producers(self) -> ProducerStateManager:
        """Producer state, loaded from its snapshot and the log on first use."""
        if self._producers is None:
            state = ProducerStateManager(self.log.dir, self.log.name)
            state.load(self.log)
            self._producers = state
        return self._producers

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    def last_stable_offset(self) -> int:
        first_open = self._producers.first_unstable_offset() if self._producers else None
        hw = self.high_watermark
        return hw if first_open is None else min(first_open, hw)

    def check_leader_epoch(self, requested: int) -> None:
        """Compare a client's current leader epoch with ours, as Fetch and ListOffsets do."""
        if requested < 0 or requested == self.leader_epoch:
            return
        if requested < self.leader_epoch:
            raise KafkaError(
                f"epoch {requested} is older than {self.leader_epoch}",
                ErrorCode.FENCED_LEADER_EPOCH,
            )
        raise KafkaError(
            f"epoch {requested} is newer than {self.leader_epoch}", ErrorCode.UNKNOWN_LEADER_EPOCH
        )

    def append(self, records: memoryview | bytes, required_acks: int) -> ProduceOutcome:
        """A producer's batches: checked, stamped, written; the high watermark follows (one
        replica in the ISR)."""
        if len(records) > MAGIC_OFFSET and records[MAGIC_OFFSET] != MAGIC:
            raise KafkaError(
                f"message format v{records[MAGIC_OFFSET]} is not supported, only v2",
                ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
            )
        if required_acks == -1 and len(self.meta.isr) < self.log.config.min_insync_replicas:
            raise KafkaError(
                f"{len(self.meta.isr)} in-sync replicas, min.insync.replicas is "
                f"{self.log.config.min_insync_replicas}",
                ErrorCode.NOT_ENOUGH_REPLICAS,
            )
        producers = self.producers
        try:
            result: AppendResult = self.log.append(
                records,
                origin=AppendOrigin.CLIENT,
                leader_epoch=self.leader_epoch,
                before_write=producers.check,
            )
        except DuplicateBatch as dup:
            return ProduceOutcome(dup.batch.first_offset, -1, self.log.log_start_offset, True)
        producers.update(result.batches)
        self.log.update_high_watermark(self.log.log_end_offset)
        return ProduceOutcome(result.first_offset, result.log_append_time, result.log_start_offset)

    def read(self, offset: int, max_bytes: int, read_committed: bool, min_one: bool) -> ReadResult:
        cap = self.last_stable_offset() if read_committed else self.high_watermark
        return self.log.read(offset, max_bytes, max_offset=cap, min_one_message=min_one)

    def offset_for(self, timestamp: int, read_committed: bool) -> tuple[int, int, int]:
        """ListOffsets: (offset, timestamp, leader epoch) for a timestamp or a special value."""
        epoch = self.leader_epoch
        if timestamp == LATEST:
            end = self.last_stable_offset() if read_committed else self.high_watermark
            return end, -1, epoch
        if timestamp in (EARLIEST, EARLIEST_LOCAL):
            return self.log_start_offset, -1, epoch
        if timestamp == LATEST_TIERED:
            return -1, -1, epoch
        if timestamp == MAX_TIMESTAMP or timestamp >= 0:
            found = self.log.offset_for_timestamp(timestamp)
            if found is None or found.offset < 0:
                return -1, -1, epoch
            if timestamp >= 0 and found.offset >= self.high_watermark:
                return -1, -1, epoch
            return found.offset, found.timestamp, epoch
        raise KafkaError(f"invalid timestamp {timestamp}", ErrorCode.INVALID_REQUEST)

    def expire_producers(self, now_ms: int, expiration_ms: int) -> None:
        if self._producers is not None:
            self._producers.expire(now_ms, expiration_ms)

    def snapshot_producers(self) -> None:
        if self._producers is not None:
            self._producers.write_snapshot(self.log.log_end_offset)
