"""One partition hosted here: its role, epochs, replicas and ISR, follower states, and the high
watermark, which only `maybe_increment_high_watermark` advances."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from strom.cluster.metadata import PartitionMeta
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import MAGIC, MAGIC_OFFSET
from strom.storage.log import (
    EARLIEST_LOCAL_TIMESTAMP,
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    AppendOrigin,
    AppendResult,
    Log,
    ReadResult,
)
from strom.storage.producer_state import DuplicateBatch

log = logging.getLogger(__name__)

LATEST_TIERED = -5  # ListOffsets: the end of tiered storage (none here)
HIGH_WATERMARK = -1  # DeleteRecords: "delete everything below the high watermark"


class Role(enum.Enum):
    LEADER = "leader"
    FOLLOWER = "follower"


class Isolation(enum.Enum):
    """How far a fetch may read: a follower to the log end, a consumer to the high watermark,
    a read_committed consumer to the last stable offset."""

    LOG_END = "log_end"
    HIGH_WATERMARK = "high_watermark"
    COMMITTED = "committed"


@dataclass(slots=True)
class FollowerState:
    """What the leader knows of one follower from its fetches."""

    log_end_offset: int = -1
    last_fetch_ms: int = -1
    last_caught_up_ms: int = -1


@dataclass(slots=True)
class ProduceOutcome:
    base_offset: int
    last_offset: int
    log_append_time: int
    log_start_offset: int
    duplicate: bool = False


class Partition:
    """A partition this broker is a replica of, leading it or following its leader."""

    def __init__(self, log_: Log, node_id: int, clock: Callable[[], float] = time.time) -> None:
        self.log = log_
        self.topic = log_.topic
        self.index = log_.partition
        self.node_id = node_id
        self._clock = clock
        self.role = Role.FOLLOWER
        self.leader_id = -1
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.followers: dict[int, FollowerState] = {}

    def __repr__(self) -> str:
        return f"Partition({self.topic}-{self.index}, {self.role.value}, epoch {self.leader_epoch})"

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- leadership ----------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def make_leader(self, meta: PartitionMeta) -> bool:
        """Lead from `meta` on (a new leader epoch, or new replicas/ISR in the same epoch).
        Returns whether the high watermark moved."""
        new_epoch = self.role is not Role.LEADER or meta.leader_epoch != self.leader_epoch
        self._take(meta)
        self.role = Role.LEADER
        now = self._now_ms()
        followers = {}
        for r in meta.replicas:
            if r == self.node_id:
                continue
            state = self.followers.get(r) if not new_epoch else None
            followers[r] = state or FollowerState(last_caught_up_ms=now if r in meta.isr else -1)
        self.followers = followers
        if new_epoch:
            log.debug("%s-%d: leader in epoch %d", self.topic, self.index, meta.leader_epoch)
        return self.on_log_loaded() if self.log.loaded else False

    def make_follower(self, meta: PartitionMeta) -> None:
        """Follow `meta.leader` from now on (the fetcher that copies its log is the cluster's)."""
        if self.role is Role.LEADER or meta.leader_epoch != self.leader_epoch:
            log.debug(
                "%s-%d: follower of %d in epoch %d",
                self.topic,
                self.index,
                meta.leader,
                meta.leader_epoch,
            )
        self._take(meta)
        self.role = Role.FOLLOWER
        self.followers = {}

    def _take(self, meta: PartitionMeta) -> None:
        self.leader_id = meta.leader
        self.leader_epoch = meta.leader_epoch
        self.partition_epoch = meta.partition_epoch
        self.replicas = meta.replicas
        self.isr = meta.isr

    def record_leader_epoch(self) -> None:
        """As leader, record where our epoch starts in the log's epoch cache (a checkpoint
        write: the replica manager calls it in a worker thread with the log's opening)."""
        if self.role is Role.LEADER and self.log.latest_epoch < self.leader_epoch:
            self.log.assign_epoch(self.leader_epoch, self.log.log_end_offset)

    def on_log_loaded(self) -> bool:
        """The log is open: as leader, record the epoch's start (if not done yet) and bring
        the high watermark up to what the ISR holds. Returns whether it moved."""
        if self.role is not Role.LEADER:
            return False
        self.record_leader_epoch()
        return self.maybe_increment_high_watermark()

    def check_leader(self) -> None:
        if self.role is not Role.LEADER:
            raise KafkaError(
                f"broker {self.node_id} is not the leader of {self.topic}-{self.index}",
                ErrorCode.NOT_LEADER_OR_FOLLOWER,
            )

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

    # -- offsets ---------------------------------------------------------------------------------

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
        """The high watermark, or the first offset of the oldest open transaction below it."""
        first_open = self.log.producers.first_unstable_offset()
        hw = self.high_watermark
        return hw if first_open is None else min(first_open, hw)

    def maybe_increment_high_watermark(self) -> bool:
        """The one place the high watermark advances: on the leader, to the smallest log end
        offset in the ISR. Returns whether it moved."""
        if self.role is not Role.LEADER:
            return False
        hw = self.log.log_end_offset
        for r in self.isr:
            if r != self.node_id:
                state = self.followers.get(r)
                hw = min(hw, state.log_end_offset if state is not None else -1)
        if hw <= self.log.high_watermark:
            return False
        self.log.update_high_watermark(hw)
        return True

    def update_follower(self, replica_id: int, fetch_offset: int) -> bool:
        """A follower fetched from `fetch_offset`: it holds everything below. Returns whether
        the high watermark moved."""
        state = self.followers.get(replica_id)
        if state is None:
            raise KafkaError(
                f"broker {replica_id} is not a replica of {self.topic}-{self.index}",
                ErrorCode.NOT_LEADER_OR_FOLLOWER,
            )
        now = self._now_ms()
        state.log_end_offset = fetch_offset
        state.last_fetch_ms = now
        if fetch_offset >= self.log.log_end_offset:
            state.last_caught_up_ms = now
        return self.maybe_increment_high_watermark()

    # -- the produce path ------------------------------------------------------------------------

    def append_as_leader(
        self,
        records: memoryview | bytes | bytearray,
        required_acks: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> ProduceOutcome:
        """Check, stamp and write batches; the high watermark follows what the ISR holds."""
        self.check_leader()
        if len(records) > MAGIC_OFFSET and records[MAGIC_OFFSET] != MAGIC:
            raise KafkaError(
                f"message format v{records[MAGIC_OFFSET]} is not supported, only v2",
                ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
            )
        min_isr = self.log.config.min_insync_replicas
        if required_acks == -1 and len(self.isr) < min_isr:
            raise KafkaError(
                f"{len(self.isr)} in-sync replicas of {self.topic}-{self.index}, "
                f"min.insync.replicas is {min_isr}",
                ErrorCode.NOT_ENOUGH_REPLICAS,
            )
        try:
            result: AppendResult = self.log.append(
                records, origin=origin, leader_epoch=self.leader_epoch
            )
        except DuplicateBatch as dup:
            b = dup.batch
            return ProduceOutcome(
                b.first_offset, b.last_offset, -1, self.log.log_start_offset, True
            )
        self.maybe_increment_high_watermark()
        return ProduceOutcome(
            result.first_offset,
            result.last_offset,
            result.log_append_time,
            result.log_start_offset,
        )

    def enough_replicas(self) -> bool:
        """Whether the ISR still has min.insync.replicas (checked again when acks=all is
        answered: NOT_ENOUGH_REPLICAS_AFTER_APPEND otherwise)."""
        return len(self.isr) >= self.log.config.min_insync_replicas

    # -- the fetch path --------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, isolation: Isolation, min_one: bool) -> ReadResult:
        self.check_leader()
        if isolation is Isolation.LOG_END:
            cap = None
        elif isolation is Isolation.COMMITTED:
            cap = self.last_stable_offset()
        else:
            cap = self.high_watermark
        return self.log.read(offset, max_bytes, max_offset=cap, min_one_message=min_one)

    def offset_for(self, timestamp: int, read_committed: bool) -> tuple[int, int, int]:
        """ListOffsets: (offset, timestamp, leader epoch) for a timestamp or a special value."""
        epoch = self.leader_epoch
        if timestamp == LATEST_TIMESTAMP:
            end = self.last_stable_offset() if read_committed else self.high_watermark
            return end, -1, epoch
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
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

    def delete_records(self, offset: int) -> int:
        """DeleteRecords: move the log start offset up to `offset` (-1: the high watermark).
        Returns the new low watermark."""
        name = f"{self.topic}-{self.index}"
        if not self.log.config.delete:
            raise KafkaError(
                f"Records of partition {name} can not be deleted due to the configured policy",
                ErrorCode.POLICY_VIOLATION,
            )
        hw = self.high_watermark
        target = hw if offset == HIGH_WATERMARK else offset
        if target < 0:
            raise KafkaError(
                f"The offset {target} for partition {name} is not valid",
                ErrorCode.OFFSET_OUT_OF_RANGE,
            )
        if target > hw:
            raise KafkaError(
                f"Cannot increment the log start offset to {target} of partition {name} since "
                f"it is larger than the high watermark {hw}",
                ErrorCode.OFFSET_OUT_OF_RANGE,
            )
        return self.log.delete_records_before(target)
