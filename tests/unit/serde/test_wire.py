"""Tests of the Confluent framing and the plain Kafka serializers."""

from __future__ import annotations

import math

import pytest

from strom.serde import (
    DoubleDeserializer,
    DoubleSerializer,
    IntegerDeserializer,
    IntegerSerializer,
    LongDeserializer,
    LongSerializer,
    SerializationError,
    StringDeserializer,
    StringSerializer,
    frame,
    unframe,
)


def test_frame_layout() -> None:
    assert frame(1, b"abc") == b"\x00\x00\x00\x00\x01abc"
    assert frame(0x01020304, b"") == b"\x00\x01\x02\x03\x04"


def test_unframe_round_trip_without_copy() -> None:
    data = frame(2**31 - 1, b"payload")
    schema_id, payload = unframe(data)
    assert schema_id == 2**31 - 1
    assert isinstance(payload, memoryview)
    assert payload.obj is data
    assert bytes(payload) == b"payload"


def test_unframe_empty_payload() -> None:
    assert unframe(b"\x00\x00\x00\x00\x09") == (9, memoryview(b""))


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00\x01"])
def test_unframe_short_input(data: bytes) -> None:
    with pytest.raises(SerializationError, match="too short"):
        unframe(data)


def test_unframe_wrong_magic_byte() -> None:
    with pytest.raises(SerializationError, match="magic byte 0x01"):
        unframe(b"\x01\x00\x00\x00\x01abc")


@pytest.mark.parametrize("schema_id", [-1, 2**31])
def test_frame_rejects_out_of_range_ids(schema_id: int) -> None:
    with pytest.raises(SerializationError, match="schema id"):
        frame(schema_id, b"")


def test_strings() -> None:
    ser, de = StringSerializer(), StringDeserializer()
    assert ser("héllo", "t") == "héllo".encode()
    assert de("héllo".encode(), "t") == "héllo"
    assert ser(None, "t") is None
    assert de(None, "t") is None
    with pytest.raises(SerializationError):
        de(b"\xff", "t")
    with pytest.raises(SerializationError):
        ser(5, "t")  # type: ignore[arg-type]


def test_integers_as_kafka() -> None:
    ser, de = IntegerSerializer(), IntegerDeserializer()
    assert ser(1, "t") == b"\x00\x00\x00\x01"
    assert ser(-1, "t") == b"\xff\xff\xff\xff"
    assert de(b"\x80\x00\x00\x00", "t") == -(2**31)
    assert ser(None, "t") is None and de(None, "t") is None
    with pytest.raises(SerializationError):
        ser(2**31, "t")
    with pytest.raises(SerializationError, match="4 bytes"):
        de(b"\x00\x01", "t")


def test_longs_as_kafka() -> None:
    ser, de = LongSerializer(), LongDeserializer()
    assert ser(258, "t") == b"\x00\x00\x00\x00\x00\x00\x01\x02"
    assert de(ser(-(2**63), "t"), "t") == -(2**63)
    with pytest.raises(SerializationError):
        ser(2**63, "t")


def test_doubles_as_kafka() -> None:
    ser, de = DoubleSerializer(), DoubleDeserializer()
    assert ser(1.0, "t") == b"\x3f\xf0\x00\x00\x00\x00\x00\x00"
    assert de(ser(-2.5, "t"), "t") == -2.5
    assert math.isnan(de(ser(math.nan, "t"), "t"))
    assert ser(None, "t") is None
    with pytest.raises(SerializationError, match="8 bytes"):
        de(b"\x00", "t")
