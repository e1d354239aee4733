"""The transaction coordinator: transactional ids and their transactions, kept as records in
__transaction_state through the coordinator runtime (each partition a shard).

A transaction moves Empty → Ongoing (AddPartitionsToTxn, AddOffsetsToTxn) → PrepareCommit or
PrepareAbort (EndTxn, or a timeout, or a new producer fencing this one) → markers written to
every partition of the transaction → CompleteCommit or CompleteAbort. Every move is a record
written first and applied (by `replay`) once committed; the answer follows. Markers go through
a `MarkerWriter` so that only the destination changes on a cluster. A shard loaded with
transactions still in PrepareCommit or PrepareAbort finishes them (markers, then Complete).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from strom.coordinator.deferred import Deferred
from strom.coordinator.errors import write_error
from strom.coordinator.runtime import CoordinatorRuntime
from strom.coordinator.txn.metadata import MAX_EPOCH, TopicPartition, TxnMetadata
from strom.coordinator.txn.records import (
    TXN_TOPIC,
    TxnState,
    decode_txn_record,
    partition_for,
    txn_record,
)
from strom.coordinator.writer import PartitionWriter
from strom.protocol.errors import ErrorCode

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TxnConfig:
    """The broker settings the transaction coordinator reads (Kafka's names and defaults)."""

    num_partitions: int = 50  # transaction.state.log.num.partitions
    max_timeout_ms: int = 900_000  # transaction.max.timeout.ms
    id_expiration_ms: int = 604_800_000  # transactional.id.expiration.ms


@dataclass(slots=True)
class MarkerJob:
    """Commit or abort markers for every partition of one transaction."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int
    partitions: frozenset[TopicPartition]


#: writes a job's markers (retrying until each partition has it or is gone); NONE when done
MarkerWriter = Callable[[MarkerJob], Deferred[ErrorCode]]


@dataclass(slots=True)
class InitResult:
    error: ErrorCode
    producer_id: int = -1
    producer_epoch: int = -1


class TransactionCoordinator:
    """Every transactional id of the __transaction_state partitions this broker leads."""

    def __init__(
        self,
        config: TxnConfig,
        writer: PartitionWriter,
        new_producer_id: Callable[[], Awaitable[int]],
        markers: MarkerWriter,
        clock_ms: Callable[[], int],
    ) -> None:
        self.config = config
        self.runtime = CoordinatorRuntime(TXN_TOPIC, writer, self)
        self.new_producer_id = new_producer_id
        self.markers = markers
        self.now_ms = clock_ms
        self.txns: dict[str, TxnMetadata] = {}
        self.started = False

    # -- shards ----------------------------------------------------------------------------------

    def partition_for(self, transactional_id: str) -> int:
        return partition_for(transactional_id, self.config.num_partitions)

    def check_available(self, transactional_id: str) -> ErrorCode:
        if not self.started:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        return self.runtime.status(self.partition_for(transactional_id))

    def load_all(self) -> None:
        """Load every shard now (tests, tools)."""
        self.started = True
        for p in range(self.config.num_partitions):
            self.runtime.load_now(p)

    def become_leader(self, partition: int, leader_epoch: int) -> None:
        self.started = True
        self.runtime.schedule_load(partition, leader_epoch)

    def resign(self, partition: int, leader_epoch: int | None = None) -> None:
        self.runtime.unload(partition, leader_epoch)

    def shutdown(self) -> None:
        self.runtime.close()
        self.started = False

    def replay(
        self,
        partition: int,
        key: bytes,
        value: bytes | None,
        live: bool,
        producer_id: int = -1,
    ) -> None:
        rec = decode_txn_record(key, value)
        if rec.value is None:
            self.txns.pop(rec.transactional_id, None)
            return
        txn = self.txns.get(rec.transactional_id)
        if txn is None:
            txn = self.txns[rec.transactional_id] = TxnMetadata(rec.transactional_id, -1, -1, 0)
        txn.update_from(rec.value)

    def replay_end_txn(self, partition: int, producer_id: int, commit: bool) -> None:
        """__transaction_state holds no transactional records: nothing to end."""

    def on_loaded(self, partition: int) -> None:
        """Finish what a previous leader (or this broker before a crash) left half done."""
        for txn in list(self.txns.values()):
            if self.partition_for(txn.transactional_id) != partition:
                continue
            if txn.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
                log.info(
                    "transactional id %s: completing a transaction left in %s",
                    txn.transactional_id,
                    txn.state.label,
                )
                self._send_markers(txn)

    def on_unloaded(self, partition: int) -> None:
        for txn_id in [t for t in self.txns if self.partition_for(t) == partition]:
            del self.txns[txn_id]

    # -- writing a transition --------------------------------------------------------------------

    def _write(self, txn: TxnMetadata | None, target: TxnMetadata) -> Deferred[ErrorCode]:
        """Write the target state of a transactional id; `txn` (the current state, None for a
        new id) is pending until the record is committed and applied."""
        target.last_update_ms = self.now_ms()
        if txn is not None:
            txn.pending = target.state
        written = self.runtime.write(
            self.partition_for(target.transactional_id),
            [txn_record(target.transactional_id, target.to_value())],
            target.last_update_ms,
        )

        def settled(error: ErrorCode) -> ErrorCode:
            stored = self.txns.get(target.transactional_id)
            if stored is not None:
                stored.pending = None
                if error == ErrorCode.NONE:
                    stored.last_producer_id = target.last_producer_id
                    stored.last_producer_epoch = target.last_producer_epoch
            return error

        return written.map(settled)

    # -- InitProducerId --------------------------------------------------------------------------

    async def init_producer_id(
        self,
        transactional_id: str,
        timeout_ms: int,
        producer_id: int = -1,
        producer_epoch: int = -1,
    ) -> InitResult:
        """A producer id and epoch for a transactional producer: a new id's first, or the
        current one's with its epoch bumped (fencing the producer before it). An ongoing
        transaction is aborted first (CONCURRENT_TRANSACTIONS: the client retries)."""
        error = self.check_available(transactional_id)
        if error != ErrorCode.NONE:
            return InitResult(error)
        if not 0 < timeout_ms <= self.config.max_timeout_ms:
            return InitResult(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        txn = self.txns.get(transactional_id)
        new_pid = -1
        if txn is None or txn.producer_epoch >= MAX_EPOCH - 1:
            new_pid = await self.new_producer_id()
            error = self.check_available(transactional_id)  # the await let others run
            if error != ErrorCode.NONE:
                return InitResult(error)
        return await self._init(
            transactional_id, timeout_ms, producer_id, producer_epoch, new_pid
        ).wait()

    def _init(
        self, txn_id: str, timeout_ms: int, expected_pid: int, expected_epoch: int, new_pid: int
    ) -> Deferred[InitResult]:
        txn = self.txns.get(txn_id)
        if txn is None:
            if new_pid < 0:
                return Deferred.of(InitResult(ErrorCode.CONCURRENT_TRANSACTIONS))
            target = TxnMetadata(txn_id, new_pid, 0, timeout_ms)
            return self._write(None, target).map(lambda e: _init_result(e, target))
        if txn.pending is not None:
            return Deferred.of(InitResult(ErrorCode.CONCURRENT_TRANSACTIONS))
        if expected_pid >= 0:
            if (expected_pid, expected_epoch) == (txn.last_producer_id, txn.last_producer_epoch):
                # a retry of a bump that succeeded: the same answer again
                return Deferred.of(InitResult(ErrorCode.NONE, txn.producer_id, txn.producer_epoch))
            if expected_pid != txn.producer_id:
                return Deferred.of(InitResult(ErrorCode.PRODUCER_FENCED))
            if expected_epoch != txn.producer_epoch:
                return Deferred.of(InitResult(ErrorCode.PRODUCER_FENCED))
        if txn.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            return Deferred.of(InitResult(ErrorCode.CONCURRENT_TRANSACTIONS))
        if txn.state == TxnState.ONGOING:
            # The producer before this one left a transaction open: fence it (epoch bump)
            # and abort that transaction; the client retries once it is complete.
            self._fence_and_abort(txn)
            return Deferred.of(InitResult(ErrorCode.CONCURRENT_TRANSACTIONS))
        if txn.state not in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT):
            return Deferred.of(InitResult(ErrorCode.CONCURRENT_TRANSACTIONS))
        target = txn.copy()
        target.last_producer_id, target.last_producer_epoch = txn.producer_id, txn.producer_epoch
        if txn.producer_epoch >= MAX_EPOCH - 1:
            if new_pid < 0:
                return Deferred.of(InitResult(ErrorCode.CONCURRENT_TRANSACTIONS))
            target.producer_id, target.producer_epoch = new_pid, 0
        else:
            target.producer_epoch = txn.producer_epoch + 1
        target.timeout_ms = timeout_ms
        target.state = TxnState.EMPTY
        target.partitions = set()
        target.start_ms = -1
        return self._write(txn, target).map(lambda e: _init_result(e, target))

    def _fence_and_abort(self, txn: TxnMetadata) -> Deferred[ErrorCode]:
        """Bump the epoch of an ongoing transaction's producer (it is fenced) and abort it."""
        target = txn.copy()
        if txn.producer_epoch < MAX_EPOCH - 1:
            target.producer_epoch = txn.producer_epoch + 1
        target.state = TxnState.PREPARE_ABORT
        log.info(
            "transactional id %s: fencing producer %d epoch %d, aborting its transaction",
            txn.transactional_id,
            txn.producer_id,
            txn.producer_epoch,
        )
        return self._write(txn, target).map(lambda e: self._prepared(txn.transactional_id, e))

    # -- AddPartitionsToTxn, AddOffsetsToTxn -----------------------------------------------------

    def _check_producer(
        self, txn: TxnMetadata | None, producer_id: int, producer_epoch: int
    ) -> ErrorCode:
        if txn is None or txn.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if txn.producer_epoch != producer_epoch:
            return ErrorCode.PRODUCER_FENCED
        if txn.pending is not None or txn.state in (
            TxnState.PREPARE_COMMIT,
            TxnState.PREPARE_ABORT,
        ):
            return ErrorCode.CONCURRENT_TRANSACTIONS
        return ErrorCode.NONE

    def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
    ) -> Deferred[ErrorCode]:
        """Partitions join the transaction (it becomes Ongoing): NONE once that is stored."""
        error = self.check_available(transactional_id)
        if error != ErrorCode.NONE:
            return Deferred.of(error)
        txn = self.txns.get(transactional_id)
        error = self._check_producer(txn, producer_id, producer_epoch)
        if error != ErrorCode.NONE:
            return Deferred.of(error)
        assert txn is not None
        wanted = set(partitions)
        if txn.state == TxnState.ONGOING and wanted <= txn.partitions:
            return Deferred.of(ErrorCode.NONE)
        if not txn.can_move_to(TxnState.ONGOING):
            return Deferred.of(ErrorCode.INVALID_TXN_STATE)
        target = txn.copy()
        if txn.state != TxnState.ONGOING:
            target.start_ms = self.now_ms()
            target.partitions = set()
        target.state = TxnState.ONGOING
        target.partitions |= wanted
        return self._write(txn, target).map(write_error)

    def verify_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
    ) -> dict[TopicPartition, ErrorCode]:
        """KIP-890 verification: is each partition part of this producer's ongoing transaction?
        (INVALID_TXN_STATE where not; nothing is written.)"""
        wanted = list(partitions)
        error = self.check_available(transactional_id)
        txn = self.txns.get(transactional_id)
        if error == ErrorCode.NONE:
            if txn is None or txn.producer_id != producer_id:
                error = ErrorCode.INVALID_PRODUCER_ID_MAPPING
            elif txn.producer_epoch != producer_epoch:
                error = ErrorCode.PRODUCER_FENCED
        if error != ErrorCode.NONE:
            return dict.fromkeys(wanted, error)
        assert txn is not None
        ongoing = txn.state == TxnState.ONGOING
        return {
            tp: ErrorCode.NONE if ongoing and tp in txn.partitions else ErrorCode.INVALID_TXN_STATE
            for tp in wanted
        }

    # -- EndTxn ----------------------------------------------------------------------------------

    def end_txn(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool
    ) -> Deferred[ErrorCode]:
        """Commit or abort: NONE once PrepareCommit/PrepareAbort is stored (the markers and the
        Complete record follow). A retry after completion gets NONE again."""
        error = self.check_available(transactional_id)
        if error != ErrorCode.NONE:
            return Deferred.of(error)
        txn = self.txns.get(transactional_id)
        if txn is None or txn.producer_id != producer_id:
            return Deferred.of(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if txn.producer_epoch != producer_epoch:
            return Deferred.of(ErrorCode.PRODUCER_FENCED)
        if txn.pending is not None:
            return Deferred.of(ErrorCode.CONCURRENT_TRANSACTIONS)
        state = txn.state
        done, preparing = (
            (TxnState.COMPLETE_COMMIT, TxnState.PREPARE_COMMIT)
            if commit
            else (TxnState.COMPLETE_ABORT, TxnState.PREPARE_ABORT)
        )
        if state == done:
            return Deferred.of(ErrorCode.NONE)
        if state == preparing:
            return Deferred.of(ErrorCode.CONCURRENT_TRANSACTIONS)
        if state != TxnState.ONGOING:
            return Deferred.of(ErrorCode.INVALID_TXN_STATE)
        target = txn.copy()
        target.state = preparing
        return self._write(txn, target).map(lambda e: self._prepared(transactional_id, e))

    def _prepared(self, transactional_id: str, error: ErrorCode) -> ErrorCode:
        """PrepareCommit/PrepareAbort is stored: send the markers."""
        txn = self.txns.get(transactional_id)
        if error == ErrorCode.NONE and txn is not None:
            self._send_markers(txn)
        return write_error(error)

    def _send_markers(self, txn: TxnMetadata) -> None:
        commit = txn.state == TxnState.PREPARE_COMMIT
        job = MarkerJob(
            txn.transactional_id,
            txn.producer_id,
            txn.producer_epoch,
            commit,
            self.runtime.epoch(self.partition_for(txn.transactional_id)),
            frozenset(txn.partitions),
        )
        txn.pending = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
        self.markers(job).add_callback(lambda error: self._markers_written(job, error))

    def _markers_written(self, job: MarkerJob, error: ErrorCode) -> None:
        txn = self.txns.get(job.transactional_id)
        if txn is None or txn.producer_id != job.producer_id:
            return  # unloaded meanwhile: the next leader finishes it
        txn.pending = None
        if error != ErrorCode.NONE:
            log.warning(
                "transactional id %s: markers not written (%s); sent again at the next check",
                job.transactional_id,
                error.name,
            )
            return
        target = txn.copy()
        target.state = TxnState.COMPLETE_COMMIT if job.commit else TxnState.COMPLETE_ABORT
        target.partitions = set()
        self._write(txn, target).add_callback(
            lambda e: (
                e == ErrorCode.NONE
                or log.warning("transactional id %s: cannot complete: %s", job.transactional_id, e)
            )
        )

    # -- timeouts and expiration -----------------------------------------------------------------

    def abort_timed_out(self) -> int:
        """Abort (fencing their producers) the transactions open longer than their timeout;
        send again the markers of transactions whose markers failed."""
        now = self.now_ms()
        aborted = 0
        for txn in list(self.txns.values()):
            if (
                txn.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)
                and txn.pending is None
                and self.runtime.active(self.partition_for(txn.transactional_id))
            ):
                self._send_markers(txn)
                continue
            if (
                txn.state == TxnState.ONGOING
                and txn.pending is None
                and txn.start_ms + txn.timeout_ms < now
                and self.runtime.active(self.partition_for(txn.transactional_id))
            ):
                log.info(
                    "transactional id %s: transaction open for over %d ms, aborting",
                    txn.transactional_id,
                    txn.timeout_ms,
                )
                self._fence_and_abort(txn)
                aborted += 1
        return aborted

    def expire_ids(self) -> int:
        """Forget transactional ids idle longer than transactional.id.expiration.ms."""
        now = self.now_ms()
        expired = 0
        for txn in list(self.txns.values()):
            if (
                txn.pending is None
                and txn.can_move_to(TxnState.DEAD)
                and txn.last_update_ms + self.config.id_expiration_ms < now
                and self.runtime.active(self.partition_for(txn.transactional_id))
            ):
                txn.pending = TxnState.DEAD
                record = txn_record(txn.transactional_id, None)
                p = self.partition_for(txn.transactional_id)
                self.runtime.write(p, [record], now).add_callback(
                    lambda e, t=txn: setattr(t, "pending", None)
                )
                expired += 1
        return expired


def _init_result(error: ErrorCode, target: TxnMetadata) -> InitResult:
    if error != ErrorCode.NONE:
        return InitResult(write_error(error))
    return InitResult(ErrorCode.NONE, target.producer_id, target.producer_epoch)
