"""The records of __transaction_state: which partition holds a transactional id, and its keys
and values (Kafka's TransactionLogKey / TransactionLogValue, each prefixed by its int16 version).

One key per transactional id; its value is the latest state of that id's transaction (a null
value deletes an expired id). Strom writes value version 0, as Kafka 3.x does.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from strom.coordinator.group.records import java_string_hash, kafka_abs
from strom.coordinator.writer import Record
from strom.protocol.errors import ProtocolError
from strom.protocol.messages.transaction_coordinator import TransactionLogKey, TransactionLogValue

TXN_TOPIC = "__transaction_state"
KEY_VERSION = 0
VALUE_VERSION = 0

_VERSION = struct.Struct(">h")


class TxnState(enum.IntEnum):
    """Kafka's TransactionState ids (the TransactionStatus byte of a value)."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7  # in memory only: written as PREPARE_ABORT

    @property
    def label(self) -> str:
        """The name ListTransactions and DescribeTransactions use (Kafka's, e.g. Ongoing)."""
        return "".join(part.capitalize() for part in self.name.split("_"))


def partition_for(transactional_id: str, num_partitions: int) -> int:
    """The __transaction_state partition of a transactional id (Kafka's partitionFor)."""
    return kafka_abs(java_string_hash(transactional_id)) % num_partitions


def txn_record(transactional_id: str, value: TransactionLogValue | None) -> Record:
    key = _VERSION.pack(KEY_VERSION) + TransactionLogKey(transactional_id=transactional_id).encode(
        KEY_VERSION
    )
    if value is None:
        return key, None
    return key, _VERSION.pack(VALUE_VERSION) + value.encode(VALUE_VERSION)


@dataclass(slots=True)
class DecodedTxnRecord:
    transactional_id: str
    value: TransactionLogValue | None  # None: the id was deleted


def decode_txn_record(
    key: bytes | memoryview | None, value: bytes | memoryview | None
) -> DecodedTxnRecord:
    """Decode one record; ProtocolError for bytes that are not a record of this topic."""
    if key is None or len(key) < 2:
        raise ProtocolError("__transaction_state record without a versioned key")
    (key_version,) = _VERSION.unpack_from(key, 0)
    if key_version != KEY_VERSION:
        raise ProtocolError(f"unknown __transaction_state key version {key_version}")
    txn_id = TransactionLogKey.decode(memoryview(key)[2:], key_version).transactional_id
    if value is None:
        return DecodedTxnRecord(txn_id, None)
    if len(value) < 2:
        raise ProtocolError("__transaction_state record value without a version")
    (value_version,) = _VERSION.unpack_from(value, 0)
    if not value_version >= TransactionLogValue.MIN_VERSION:
        raise ProtocolError(f"TransactionLogValue version {value_version} is not known")
    decoded = TransactionLogValue.decode(
        memoryview(value)[2:], min(value_version, TransactionLogValue.MAX_VERSION)
    )
    return DecodedTxnRecord(txn_id, decoded)
