"""__consumer_offsets records: Kafka's partitioning and key/value formats."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strom.coordinator.group.records import (
    decode_record,
    group_metadata_record,
    java_string_hash,
    kafka_abs,
    offset_commit_record,
    partition_for,
)
from strom.protocol.errors import ProtocolError
from strom.protocol.messages.group_coordinator import GroupMetadataValue, OffsetCommitValue

# Values from a JVM (jshell: "...".hashCode()).
JAVA_HASHES = {
    "hello": 99162322,
    "test-group": 627841412,
    "my-group-42": 172739469,
    "grüße-ü": 426791238,
    "\U0001f600": 1772899,  # a surrogate pair: two UTF-16 units
    "polygenelubricants": -(2**31),
    "": 0,
}


@pytest.mark.parametrize(("text", "expected"), JAVA_HASHES.items())
def test_java_string_hash(text: str, expected: int) -> None:
    assert java_string_hash(text) == expected


def test_partition_for_uses_kafkas_abs() -> None:
    assert kafka_abs(-(2**31)) == 0 and kafka_abs(-5) == 5
    assert partition_for("polygenelubricants", 50) == 0
    assert partition_for("test-group", 50) == 627841412 % 50
    assert partition_for("hello", 7) == 99162322 % 7


@given(st.text(max_size=40), st.integers(1, 200))
def test_partition_for_is_in_range(group: str, n: int) -> None:
    assert 0 <= partition_for(group, n) < n


def test_offset_commit_key_and_value_bytes() -> None:
    value = OffsetCommitValue(offset=42, leader_epoch=3, metadata="m", commit_timestamp=1000)
    key, raw = offset_commit_record("g", "t", 7, value)
    assert key == struct.pack(">hh", 1, 1) + b"g" + struct.pack(">h", 1) + b"t" + struct.pack(
        ">i", 7
    )
    # value version 3: offset, leader epoch, metadata, commit timestamp
    assert raw == struct.pack(">hqi", 3, 42, 3) + struct.pack(">h", 1) + b"m" + struct.pack(
        ">q", 1000
    )
    rec = decode_record(key, raw)
    assert rec.key_version == 1 and rec.key.topic == "t" and rec.key.partition == 7
    assert rec.value.offset == 42 and rec.value.leader_epoch == 3
    expiring = OffsetCommitValue(offset=1, metadata="", commit_timestamp=5, expire_timestamp=9)
    _, raw1 = offset_commit_record("g", "t", 0, expiring)
    assert struct.unpack_from(">h", raw1)[0] == 1
    assert decode_record(key, raw1).value.expire_timestamp == 9
    assert decode_record(key, None).value is None  # a tombstone


def test_group_metadata_round_trip() -> None:
    value = GroupMetadataValue(
        protocol_type="consumer",
        generation=4,
        protocol="range",
        leader="m1",
        current_state_timestamp=123,
        members=[
            GroupMetadataValue.MemberMetadata(
                member_id="m1",
                group_instance_id="i1",
                client_id="c",
                client_host="/1.2.3.4",
                rebalance_timeout=300000,
                session_timeout=45000,
                subscription=b"sub",
                assignment=b"asg",
            )
        ],
    )
    key, raw = group_metadata_record("g", value)
    assert key == struct.pack(">hh", 2, 1) + b"g"
    rec = decode_record(key, raw)
    assert rec.key_version == 2 and rec.value.members[0].assignment == b"asg"
    assert rec.value.members[0].group_instance_id == "i1"


def test_unknown_or_share_group_keys() -> None:
    assert decode_record(struct.pack(">h", 11) + b"\x00\x01g", None) is None
    with pytest.raises(ProtocolError):
        decode_record(struct.pack(">h", 99), None)
    with pytest.raises(ProtocolError):
        decode_record(b"\x00", b"")
