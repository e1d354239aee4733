"""A transactional id's state: its producer id and epoch, timeout, and the transaction in
progress (state and partitions), as its __transaction_state record says."""

from __future__ import annotations

from dataclasses import dataclass, field

from strom.coordinator.txn.records import TxnState
from strom.protocol.messages.transaction_coordinator import TransactionLogValue

MAX_EPOCH = 32767  # producer epochs are int16; one at MAX_EPOCH - 1 gets a new producer id

TopicPartition = tuple[str, int]

#: state -> the states a transaction may move to it from (Kafka's rules, transaction version 1)
VALID_PREVIOUS: dict[TxnState, frozenset[TxnState]] = {
    TxnState.EMPTY: frozenset({TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT}),
    TxnState.ONGOING: frozenset(
        {TxnState.ONGOING, TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT}
    ),
    TxnState.PREPARE_COMMIT: frozenset({TxnState.ONGOING}),
    TxnState.PREPARE_ABORT: frozenset({TxnState.ONGOING, TxnState.PREPARE_EPOCH_FENCE}),
    TxnState.COMPLETE_COMMIT: frozenset({TxnState.PREPARE_COMMIT}),
    TxnState.COMPLETE_ABORT: frozenset({TxnState.PREPARE_ABORT}),
    TxnState.DEAD: frozenset({TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT}),
    TxnState.PREPARE_EPOCH_FENCE: frozenset({TxnState.ONGOING}),
}


@dataclass(slots=True)
class TxnMetadata:
    """What __transaction_state holds for one transactional id, plus what only memory holds:
    the previous producer id and epoch (to recognise a retried InitProducerId, KIP-360) and the
    transition being written (`pending`: other requests get CONCURRENT_TRANSACTIONS)."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    start_ms: int = -1
    last_update_ms: int = -1
    last_producer_id: int = -1
    last_producer_epoch: int = -1
    pending: TxnState | None = None

    def can_move_to(self, state: TxnState) -> bool:
        return self.state in VALID_PREVIOUS[state]

    def to_value(self) -> TransactionLogValue:
        by_topic: dict[str, list[int]] = {}
        for topic, p in sorted(self.partitions):
            by_topic.setdefault(topic, []).append(p)
        state = TxnState.PREPARE_ABORT if self.state == TxnState.PREPARE_EPOCH_FENCE else self.state
        return TransactionLogValue(
            producer_id=self.producer_id,
            producer_epoch=self.producer_epoch,
            transaction_timeout_ms=self.timeout_ms,
            transaction_status=int(state),
            transaction_partitions=[
                TransactionLogValue.PartitionsSchema(topic=t, partition_ids=ps)
                for t, ps in by_topic.items()
            ],
            transaction_last_update_timestamp_ms=self.last_update_ms,
            transaction_start_timestamp_ms=self.start_ms,
        )

    def update_from(self, value: TransactionLogValue) -> None:
        """Take the stored fields of a record (memory-only fields stay)."""
        self.producer_id = value.producer_id
        self.producer_epoch = value.producer_epoch
        self.timeout_ms = value.transaction_timeout_ms
        self.state = TxnState(value.transaction_status)
        self.partitions = {
            (t.topic, p) for t in value.transaction_partitions or () for p in t.partition_ids
        }
        self.last_update_ms = value.transaction_last_update_timestamp_ms
        self.start_ms = value.transaction_start_timestamp_ms

    def copy(self) -> TxnMetadata:
        return TxnMetadata(
            self.transactional_id,
            self.producer_id,
            self.producer_epoch,
            self.timeout_ms,
            self.state,
            set(self.partitions),
            self.start_ms,
            self.last_update_ms,
            self.last_producer_id,
            self.last_producer_epoch,
        )
