"""The records of __consumer_offsets: which partition a group lives in, and its keys and values.

A record key is the int16 key version followed by the key struct; the value is the int16 value
version followed by the value struct, or null (a tombstone, which deletes the key). The key
version names the record type: 0 and 1 an offset commit, 2 classic group metadata, 3 to 8 the
records of a consumer (KIP-848) group, 9 to 11 share groups (read past, not used here).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from strom.protocol.errors import ProtocolError
from strom.protocol.messages.group_coordinator import (
    ConsumerGroupCurrentMemberAssignmentKey,
    ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataKey,
    ConsumerGroupMemberMetadataValue,
    ConsumerGroupMetadataKey,
    ConsumerGroupMetadataValue,
    ConsumerGroupPartitionMetadataKey,
    ConsumerGroupPartitionMetadataValue,
    ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupTargetAssignmentMemberValue,
    ConsumerGroupTargetAssignmentMetadataKey,
    ConsumerGroupTargetAssignmentMetadataValue,
    GroupMetadataKey,
    GroupMetadataValue,
    OffsetCommitKey,
    OffsetCommitValue,
)

OFFSETS_TOPIC = "__consumer_offsets"

_VERSION = struct.Struct(">h")

#: key version -> (key class, value class)
RECORD_TYPES: dict[int, tuple[type, type]] = {
    0: (OffsetCommitKey, OffsetCommitValue),
    1: (OffsetCommitKey, OffsetCommitValue),
    2: (GroupMetadataKey, GroupMetadataValue),
    3: (ConsumerGroupMetadataKey, ConsumerGroupMetadataValue),
    4: (ConsumerGroupPartitionMetadataKey, ConsumerGroupPartitionMetadataValue),
    5: (ConsumerGroupMemberMetadataKey, ConsumerGroupMemberMetadataValue),
    6: (ConsumerGroupTargetAssignmentMetadataKey, ConsumerGroupTargetAssignmentMetadataValue),
    7: (ConsumerGroupTargetAssignmentMemberKey, ConsumerGroupTargetAssignmentMemberValue),
    8: (ConsumerGroupCurrentMemberAssignmentKey, ConsumerGroupCurrentMemberAssignmentValue),
}
SHARE_GROUP_KEY_VERSIONS = frozenset({9, 10, 11})

# The versions Strom writes (Kafka 3.9 writes the same: offsets as key 1 / value 3, or value 1
# when an expire timestamp is set; group metadata as value 3).
OFFSET_KEY_VERSION = 1
OFFSET_VALUE_VERSION = 3
OFFSET_VALUE_VERSION_EXPIRING = 1
GROUP_VALUE_VERSION = 3


def java_string_hash(text: str) -> int:
    """Java's String.hashCode: h = 31*h + c over UTF-16 code units, as a signed int32."""
    h = 0
    data = text.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def kafka_abs(n: int) -> int:
    """Kafka's Utils.abs: |n|, except Integer.MIN_VALUE maps to 0 (not to itself)."""
    return 0 if n == -(1 << 31) else abs(n)


def partition_for(group_id: str, num_partitions: int) -> int:
    """The __consumer_offsets partition that holds a group (Kafka's partitionFor)."""
    return kafka_abs(java_string_hash(group_id)) % num_partitions


# -- encoding ------------------------------------------------------------------------------------


def _key(version: int, key: object) -> bytes:
    return _VERSION.pack(version) + key.encode(version)  # type: ignore[attr-defined]


def _value(version: int, value: object) -> bytes:
    return _VERSION.pack(version) + value.encode(version)  # type: ignore[attr-defined]


Record = tuple[bytes, bytes | None]


def offset_commit_record(
    group: str,
    topic: str,
    partition: int,
    value: OffsetCommitValue | None,
) -> Record:
    key = _key(OFFSET_KEY_VERSION, OffsetCommitKey(group=group, topic=topic, partition=partition))
    if value is None:
        return key, None
    version = OFFSET_VALUE_VERSION_EXPIRING if value.expire_timestamp >= 0 else OFFSET_VALUE_VERSION
    return key, _value(version, value)


def group_metadata_record(group: str, value: GroupMetadataValue | None) -> Record:
    key = _key(2, GroupMetadataKey(group=group))
    return key, None if value is None else _value(GROUP_VALUE_VERSION, value)


def consumer_group_metadata_record(group: str, epoch: int | None) -> Record:
    key = _key(3, ConsumerGroupMetadataKey(group_id=group))
    return key, None if epoch is None else _value(0, ConsumerGroupMetadataValue(epoch=epoch))


def partition_metadata_record(
    group: str, value: ConsumerGroupPartitionMetadataValue | None
) -> Record:
    key = _key(4, ConsumerGroupPartitionMetadataKey(group_id=group))
    return key, None if value is None else _value(0, value)


def member_metadata_record(
    group: str, member: str, value: ConsumerGroupMemberMetadataValue | None
) -> Record:
    key = _key(5, ConsumerGroupMemberMetadataKey(group_id=group, member_id=member))
    return key, None if value is None else _value(0, value)


def target_assignment_metadata_record(group: str, epoch: int | None) -> Record:
    key = _key(6, ConsumerGroupTargetAssignmentMetadataKey(group_id=group))
    if epoch is None:
        return key, None
    return key, _value(0, ConsumerGroupTargetAssignmentMetadataValue(assignment_epoch=epoch))


def target_assignment_member_record(
    group: str, member: str, value: ConsumerGroupTargetAssignmentMemberValue | None
) -> Record:
    key = _key(7, ConsumerGroupTargetAssignmentMemberKey(group_id=group, member_id=member))
    return key, None if value is None else _value(0, value)


def current_assignment_record(
    group: str, member: str, value: ConsumerGroupCurrentMemberAssignmentValue | None
) -> Record:
    key = _key(8, ConsumerGroupCurrentMemberAssignmentKey(group_id=group, member_id=member))
    return key, None if value is None else _value(0, value)


# -- decoding ------------------------------------------------------------------------------------


@dataclass(slots=True)
class DecodedRecord:
    """A record of __consumer_offsets: its key version (the type), key and value (None: a
    tombstone)."""

    key_version: int
    key: object
    value: object | None


def decode_record(
    key: bytes | memoryview | None, value: bytes | memoryview | None
) -> DecodedRecord | None:
    """Decode one record; None for a record type Strom does not keep (share groups). Raises
    ProtocolError for bytes that are not a record of this topic."""
    if key is None or len(key) < 2:
        raise ProtocolError("__consumer_offsets record without a versioned key")
    (key_version,) = _VERSION.unpack_from(key, 0)
    types = RECORD_TYPES.get(key_version)
    if types is None:
        if key_version in SHARE_GROUP_KEY_VERSIONS:
            return None
        raise ProtocolError(f"unknown __consumer_offsets key version {key_version}")
    key_cls, value_cls = types
    key_obj = key_cls.decode(memoryview(key)[2:], key_version)
    if value is None:
        return DecodedRecord(key_version, key_obj, None)
    if len(value) < 2:
        raise ProtocolError("__consumer_offsets record value without a version")
    (value_version,) = _VERSION.unpack_from(value, 0)
    if value_version < value_cls.MIN_VERSION:
        raise ProtocolError(f"{value_cls.__name__} version {value_version} is not known")
    # Newer value versions only add tagged or trailing ignorable fields (KIP-915): read them
    # with the newest layout Strom knows.
    value_obj = value_cls.decode(memoryview(value)[2:], min(value_version, value_cls.MAX_VERSION))
    return DecodedRecord(key_version, key_obj, value_obj)
