"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the payload."""

from __future__ import annotations

import struct

from strom.serde.errors import SerializationError

MAGIC_BYTE = 0
HEADER_SIZE = 5
MAX_SCHEMA_ID = 2**31 - 1

_HEADER = struct.Struct(">BI")


def frame(schema_id: int, payload: bytes) -> bytes:
    """Prefix ``payload`` with the magic byte and ``schema_id``."""
    if not 0 <= schema_id <= MAX_SCHEMA_ID:
        raise SerializationError(f"schema id {schema_id} is outside 0..{MAX_SCHEMA_ID}")
    return _HEADER.pack(MAGIC_BYTE, schema_id) + payload


def unframe(data: bytes | bytearray | memoryview) -> tuple[int, memoryview]:
    """Split framed bytes into the schema id and a view of the payload (no copy)."""
    view = memoryview(data)
    if len(view) < HEADER_SIZE:
        raise SerializationError(
            f"message of {len(view)} bytes is too short for the Confluent wire format "
            f"(needs at least {HEADER_SIZE}: magic byte and 4-byte schema id)"
        )
    magic, schema_id = _HEADER.unpack_from(view)
    if magic != MAGIC_BYTE:
        raise SerializationError(
            f"unknown magic byte {magic:#04x} (expected {MAGIC_BYTE:#04x}): "
            "the data was not written by a Confluent-format serializer"
        )
    return schema_id, view[HEADER_SIZE:]
