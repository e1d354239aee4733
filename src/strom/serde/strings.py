"""Plain serializers as Kafka's: UTF-8 strings, big-endian integers and doubles (no framing)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from strom.serde.errors import SerializationError

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_DOUBLE = struct.Struct(">d")


@dataclass(frozen=True)
class StringSerializer:
    """A string as its encoded bytes (UTF-8 by default)."""

    encoding: str = "utf-8"

    def __call__(self, obj: str | None, topic: str) -> bytes | None:
        if obj is None:
            return None
        if not isinstance(obj, str):
            raise SerializationError(f"StringSerializer needs a str, got {type(obj).__name__}")
        return obj.encode(self.encoding)


@dataclass(frozen=True)
class StringDeserializer:
    """Bytes decoded as a string (UTF-8 by default)."""

    encoding: str = "utf-8"

    def __call__(self, data: bytes | None, topic: str) -> str | None:
        if data is None:
            return None
        try:
            return bytes(data).decode(self.encoding)
        except UnicodeDecodeError as exc:
            raise SerializationError(f"not valid {self.encoding}: {exc}") from exc


def _pack(packer: struct.Struct, kind: str, obj: object) -> bytes:
    try:
        return packer.pack(obj)
    except struct.error as exc:
        raise SerializationError(f"cannot serialize {obj!r} as {kind}: {exc}") from exc


def _unpack(packer: struct.Struct, kind: str, data: bytes) -> Any:
    if len(data) != packer.size:
        raise SerializationError(f"{kind} data must be {packer.size} bytes, got {len(data)}")
    return packer.unpack(data)[0]


@dataclass(frozen=True)
class IntegerSerializer:
    """A 32-bit signed integer, 4 bytes big-endian (Kafka's IntegerSerializer)."""

    def __call__(self, obj: int | None, topic: str) -> bytes | None:
        if obj is None:
            return None
        if isinstance(obj, bool) or not isinstance(obj, int):
            raise SerializationError(f"IntegerSerializer needs an int, got {type(obj).__name__}")
        return _pack(_INT, "a 32-bit integer", obj)


@dataclass(frozen=True)
class IntegerDeserializer:
    """4 bytes big-endian as a signed integer."""

    def __call__(self, data: bytes | None, topic: str) -> int | None:
        return None if data is None else _unpack(_INT, "integer", data)


@dataclass(frozen=True)
class LongSerializer:
    """A 64-bit signed integer, 8 bytes big-endian (Kafka's LongSerializer)."""

    def __call__(self, obj: int | None, topic: str) -> bytes | None:
        if obj is None:
            return None
        if isinstance(obj, bool) or not isinstance(obj, int):
            raise SerializationError(f"LongSerializer needs an int, got {type(obj).__name__}")
        return _pack(_LONG, "a 64-bit integer", obj)


@dataclass(frozen=True)
class LongDeserializer:
    """8 bytes big-endian as a signed integer."""

    def __call__(self, data: bytes | None, topic: str) -> int | None:
        return None if data is None else _unpack(_LONG, "long", data)


@dataclass(frozen=True)
class DoubleSerializer:
    """A float as an 8-byte big-endian IEEE 754 double (Kafka's DoubleSerializer)."""

    def __call__(self, obj: float | None, topic: str) -> bytes | None:
        if obj is None:
            return None
        if isinstance(obj, bool) or not isinstance(obj, int | float):
            raise SerializationError(f"DoubleSerializer needs a float, got {type(obj).__name__}")
        return _pack(_DOUBLE, "a double", float(obj))


@dataclass(frozen=True)
class DoubleDeserializer:
    """8 bytes big-endian as a float."""

    def __call__(self, data: bytes | None, topic: str) -> float | None:
        return None if data is None else _unpack(_DOUBLE, "double", data)
