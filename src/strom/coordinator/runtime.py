"""The coordinator runtime: a coordinator's state kept as records in its internal topic.

Each partition of the topic (__consumer_offsets, later __transaction_state) is a shard of the
coordinator's state. A write appends a shard's records to its partition and completes once they
are committed (the high watermark has passed them): only then are they applied to the in-memory
state (the coordinator's `replay`, the same function that rebuilds a shard from its log), in log
order, and the caller's continuation runs. On one node the high watermark moves with the append,
so a write completes before `write` returns; with followers it completes when they catch up.

A shard is loaded (its log read in worker threads and replayed on the loop) when this broker
becomes the partition's leader, and unloaded when it stops leading: writes still waiting for
their commit then fail with NOT_COORDINATOR and the coordinator drops the shard's state.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from strom.coordinator.deferred import Deferred
from strom.coordinator.writer import PartitionWriter, Record, TxnProducer
from strom.protocol.errors import ErrorCode, KafkaError, ProtocolError
from strom.protocol.records import CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT, BatchView

log = logging.getLogger(__name__)

BATCHES_PER_READ = 64  # batches a worker thread reads per trip while a shard loads


class ShardStatus(enum.Enum):
    LOADING = "loading"
    ACTIVE = "active"
    FAILED = "failed"


class StateMachine(Protocol):
    """What a coordinator gives the runtime: how to apply a record, and hooks for a shard
    becoming available (loaded) or going away (unloaded)."""

    def replay(
        self,
        partition: int,
        key: bytes,
        value: bytes | None,
        live: bool,
        producer_id: int = -1,
    ) -> None:
        """Apply one record; `producer_id` names the transaction it belongs to (-1: none), so
        it counts only once that transaction commits (`replay_end_txn`)."""
        ...

    def replay_end_txn(self, partition: int, producer_id: int, commit: bool) -> None: ...

    def on_loaded(self, partition: int) -> None: ...

    def on_unloaded(self, partition: int) -> None: ...


@dataclass(slots=True, eq=False)  # pending writes are told apart by identity
class _Write:
    end_offset: int
    records: Sequence[Record]
    done: Deferred[ErrorCode]
    producer: TxnProducer | None = None  # the records belong to this producer's transaction
    marker: bool | None = None  # a transaction marker: commit (True) or abort (False)


@dataclass(slots=True)
class _Shard:
    partition: int
    epoch: int
    status: ShardStatus = ShardStatus.LOADING
    pending: deque[_Write] = field(default_factory=deque)
    tasks: set[asyncio.Task] = field(default_factory=set)


class CoordinatorRuntime:
    """The shards of one coordinator on this broker, and their writes."""

    def __init__(self, topic: str, writer: PartitionWriter, machine: StateMachine) -> None:
        self.topic = topic
        self.writer = writer
        self.machine = machine
        self._shards: dict[int, _Shard] = {}

    # -- status ----------------------------------------------------------------------------------

    def status(self, partition: int) -> ErrorCode:
        """NONE when the shard serves requests; else the error a client gets."""
        shard = self._shards.get(partition)
        if shard is None:
            return ErrorCode.NOT_COORDINATOR
        if shard.status == ShardStatus.LOADING:
            return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        if shard.status == ShardStatus.FAILED:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        return ErrorCode.NONE

    def active(self, partition: int) -> bool:
        shard = self._shards.get(partition)
        return shard is not None and shard.status == ShardStatus.ACTIVE

    def epoch(self, partition: int) -> int:
        """The leader epoch the shard was loaded for (-1 when not held)."""
        shard = self._shards.get(partition)
        return -1 if shard is None else shard.epoch

    @property
    def partitions(self) -> list[int]:
        """The partitions this broker holds a shard of (loading, active or failed)."""
        return sorted(self._shards)

    # -- loading and unloading -------------------------------------------------------------------

    def _claim(self, partition: int, epoch: int) -> _Shard | None:
        """A new shard for a leader epoch newer than the one held (None: nothing to do)."""
        current = self._shards.get(partition)
        if current is not None:
            if current.epoch >= epoch and current.status != ShardStatus.FAILED:
                return None
            self.unload(partition)
        shard = _Shard(partition, epoch)
        self._shards[partition] = shard
        return shard

    def load_now(self, partition: int, epoch: int = 0) -> None:
        """Load a shard synchronously (tests and tools)."""
        shard = self._claim(partition, epoch)
        if shard is None:
            return
        try:
            records = sum(self._replay_batch(partition, b) for b in self.writer.batches(partition))
        except Exception:
            self._load_failed(shard)
            raise
        self._loaded(shard, records)

    def schedule_load(self, partition: int, epoch: int) -> None:
        """This broker leads the partition from `epoch`: load its shard in the background
        (requests meanwhile get COORDINATOR_LOAD_IN_PROGRESS)."""
        shard = self._claim(partition, epoch)
        if shard is not None:
            self._spawn(shard, self._load(shard), f"load {self.topic}-{partition}")

    async def _load(self, shard: _Shard) -> None:
        p = shard.partition
        records = 0
        try:
            batches = self.writer.batches(p)
            while True:
                chunk = await asyncio.to_thread(_take, batches, BATCHES_PER_READ)
                if self._shards.get(p) is not shard:
                    return  # unloaded meanwhile
                for batch in chunk:
                    records += self._replay_batch(p, batch)
                if len(chunk) < BATCHES_PER_READ:
                    break
                await asyncio.sleep(0)
        except Exception:
            self._load_failed(shard)
            return
        self._loaded(shard, records)

    def _replay_batch(self, partition: int, batch: BatchView) -> int:
        if batch.is_control:
            try:
                control = batch.control_record()
            except ProtocolError as e:
                log.warning("%s-%d: skipping a control batch: %s", self.topic, partition, e)
                return 0
            if control is not None and control.type in (CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT):
                commit = control.type == CONTROL_TYPE_COMMIT
                self.machine.replay_end_txn(partition, batch.producer_id, commit)
            return 0
        producer_id = batch.producer_id if batch.is_transactional else -1
        n = 0
        for rec in batch.records():
            self._replay(partition, rec.key, rec.value, False, producer_id, rec.offset)
            n += 1
        return n

    def _replay(
        self,
        partition: int,
        key: object,
        value: object,
        live: bool,
        producer_id: int = -1,
        offset: int = -1,
    ) -> None:
        try:
            self.machine.replay(partition, key, value, live, producer_id)  # type: ignore[arg-type]
        except (ProtocolError, KafkaError, ValueError) as e:
            # one bad record must not cost the whole shard
            log.warning("%s-%d offset %d: skipping a record: %s", self.topic, partition, offset, e)

    def _loaded(self, shard: _Shard, records: int) -> None:
        shard.status = ShardStatus.ACTIVE
        if records:
            log.info("loaded %s-%d (%d records)", self.topic, shard.partition, records)
        self.machine.on_loaded(shard.partition)

    def _load_failed(self, shard: _Shard) -> None:
        # its requests get COORDINATOR_NOT_AVAILABLE until leadership moves or a reload
        shard.status = ShardStatus.FAILED
        log.exception("cannot load %s-%d", self.topic, shard.partition)

    def unload(self, partition: int, epoch: int | None = None) -> None:
        """This broker no longer leads the partition (as of `epoch`, None: whatever epoch):
        fail its uncommitted writes with NOT_COORDINATOR and drop its state."""
        shard = self._shards.get(partition)
        if shard is None or (epoch is not None and epoch < shard.epoch):
            return
        del self._shards[partition]
        for task in shard.tasks:
            task.cancel()
        while shard.pending:
            shard.pending.popleft().done.complete(ErrorCode.NOT_COORDINATOR)
        self.machine.on_unloaded(partition)

    def close(self) -> None:
        for partition in list(self._shards):
            self.unload(partition)

    # -- writes ----------------------------------------------------------------------------------

    def write(
        self,
        partition: int,
        records: Sequence[Record],
        timestamp: int,
        producer: TxnProducer | None = None,
    ) -> Deferred[ErrorCode]:
        """Append records to the shard's partition (in the transaction of `producer` if
        given); the result completes with NONE once they are committed and applied, or with
        the error that stopped them (nothing applied)."""
        if not records:
            return Deferred.of(ErrorCode.NONE)
        return self._append(
            partition,
            lambda: self.writer.append(partition, records, timestamp, producer),
            _Write(-1, records, Deferred(), producer),
        )

    def write_marker(
        self, partition: int, marker: TxnProducer, commit: bool, coordinator_epoch: int
    ) -> Deferred[ErrorCode]:
        """End a producer's transaction in the shard: its records count (commit) or vanish
        (abort) once the marker is committed."""
        return self._append(
            partition,
            lambda: self.writer.append_marker(partition, marker, commit, coordinator_epoch),
            _Write(-1, (), Deferred(), marker, commit),
        )

    def _append(
        self, partition: int, append: Callable[[], int], write: _Write
    ) -> Deferred[ErrorCode]:
        shard = self._shards.get(partition)
        if shard is None or shard.status != ShardStatus.ACTIVE:
            return Deferred.of(self.status(partition))
        try:
            write.end_offset = append()
        except KafkaError as e:
            return Deferred.of(e.code)
        shard.pending.append(write)
        self._apply_committed(shard)
        if not write.done.done:
            self._spawn(shard, self._await_commit(shard, write), f"commit {self.topic}-{partition}")
        return write.done

    def _apply_committed(self, shard: _Shard) -> None:
        """Apply, in log order, the pending writes the high watermark has passed."""
        hw = self.writer.high_watermark(shard.partition)
        while shard.pending and shard.pending[0].end_offset <= hw:
            write = shard.pending.popleft()
            if write.marker is not None:
                assert write.producer is not None
                self.machine.replay_end_txn(
                    shard.partition, write.producer.producer_id, write.marker
                )
            else:
                pid = -1 if write.producer is None else write.producer.producer_id
                for key, value in write.records:
                    self._replay(shard.partition, key, value, True, pid)
            write.done.complete(ErrorCode.NONE)

    async def _await_commit(self, shard: _Shard, write: _Write) -> None:
        """Wait for a write's commit. Its caller hears of a timeout at once, but the write
        stays pending: the log holds it, so it is applied whenever it does commit."""
        while self._shards.get(shard.partition) is shard and write in shard.pending:
            error = await self.writer.wait_committed(shard.partition, write.end_offset)
            if self._shards.get(shard.partition) is not shard:
                return
            self._apply_committed(shard)
            if error == ErrorCode.NOT_LEADER_OR_FOLLOWER:
                # leadership moved: the unload that follows fails what is left
                write.done.complete(error)
                return
            if error != ErrorCode.NONE:
                write.done.complete(error)

    def _spawn(self, shard: _Shard, coro: object, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        shard.tasks.add(task)
        task.add_done_callback(shard.tasks.discard)


def _take(batches: Iterator[BatchView], n: int) -> list[BatchView]:
    """In a worker thread: the next n batches (fewer at the end of the log)."""
    return list(itertools.islice(batches, n))
