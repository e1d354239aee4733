"""Wire primitives the generated codecs call: varints, strings, bytes, counts, tagged fields."""

from __future__ import annotations

import struct
from struct import unpack_from
from typing import NamedTuple

from strom.protocol.errors import ProtocolError, UnsupportedVersionError

# Errors that malformed input can raise inside the generated decoders; the public entry points
# turn every one of them into a ProtocolError.
DECODE_ERRORS = (struct.error, IndexError, ValueError, OverflowError, TypeError)

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U16 = struct.Struct(">H")
ZERO_UUID = bytes(16)
# Decoders make instances without __init__ and set every slot themselves (it is faster).
new_object = object.__new__


class FieldSpec(NamedTuple):
    """What the generator knows of one field, kept on each class for tests and tools."""

    name: str
    type: str  # "int32", "string", "[]int32", "[]Struct", "Struct", "records", ...
    min_version: int
    max_version: int
    nullable_min: int  # nullable from this version (32767 when never nullable)
    nullable_max: int
    tag: int  # -1 when not a tagged field
    tagged_min: int
    tagged_max: int
    struct: type | None  # the element class for struct and struct-array fields
    compact_never: bool  # a string kept in its non-compact form even in flexible versions


# --- reading ------------------------------------------------------------------------------------


def read_uvarint(mv: memoryview, pos: int) -> tuple[int, int]:
    """Read an unsigned varint of at most 5 bytes."""
    b = mv[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = mv[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 28:
            raise ProtocolError("varint longer than 5 bytes")


def read_uvarlong(mv: memoryview, pos: int) -> tuple[int, int]:
    """Read an unsigned varint of at most 10 bytes."""
    result = 0
    shift = 0
    while True:
        b = mv[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtocolError("varlong longer than 10 bytes")


def _span(mv: memoryview, pos: int, n: int) -> int:
    end = pos + n
    if n < 0 or end > len(mv):
        raise ProtocolError(f"length {n} at {pos} exceeds the {len(mv) - pos} bytes that remain")
    return end


def read_string(mv: memoryview, pos: int) -> tuple[str, int]:
    (n,) = _I16.unpack_from(mv, pos)
    pos += 2
    end = _span(mv, pos, n)
    return str(mv[pos:end], "utf-8"), end


def read_nullable_string(mv: memoryview, pos: int) -> tuple[str | None, int]:
    (n,) = _I16.unpack_from(mv, pos)
    pos += 2
    if n == -1:
        return None, pos
    end = _span(mv, pos, n)
    return str(mv[pos:end], "utf-8"), end


def read_compact_string(mv: memoryview, pos: int) -> tuple[str, int]:
    n = mv[pos]
    if n < 128:
        pos += 1
    else:
        n, pos = read_uvarint(mv, pos)
    end = pos + n - 1
    if n == 0 or end > len(mv):
        raise ProtocolError(f"compact string length {n - 1} at {pos} is invalid")
    return str(mv[pos:end], "utf-8"), end


def read_compact_nullable_string(mv: memoryview, pos: int) -> tuple[str | None, int]:
    n = mv[pos]
    if n < 128:
        pos += 1
    else:
        n, pos = read_uvarint(mv, pos)
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(mv):
        raise ProtocolError(f"compact string length {n - 1} at {pos} is invalid")
    return str(mv[pos:end], "utf-8"), end


def read_bytes(mv: memoryview, pos: int) -> tuple[bytes, int]:
    (n,) = _I32.unpack_from(mv, pos)
    pos += 4
    end = _span(mv, pos, n)
    return bytes(mv[pos:end]), end


def read_nullable_bytes(mv: memoryview, pos: int) -> tuple[bytes | None, int]:
    (n,) = _I32.unpack_from(mv, pos)
    pos += 4
    if n == -1:
        return None, pos
    end = _span(mv, pos, n)
    return bytes(mv[pos:end]), end


def read_compact_bytes(mv: memoryview, pos: int) -> tuple[bytes, int]:
    n, pos = read_uvarint(mv, pos)
    end = _span(mv, pos, n - 1)
    return bytes(mv[pos:end]), end


def read_compact_nullable_bytes(mv: memoryview, pos: int) -> tuple[bytes | None, int]:
    n, pos = read_uvarint(mv, pos)
    if n == 0:
        return None, pos
    end = _span(mv, pos, n - 1)
    return bytes(mv[pos:end]), end


def read_records(mv: memoryview, pos: int) -> tuple[memoryview | None, int]:
    """Record data stays a view of the request buffer: it is never copied."""
    (n,) = _I32.unpack_from(mv, pos)
    pos += 4
    if n == -1:
        return None, pos
    end = _span(mv, pos, n)
    return mv[pos:end], end


def read_compact_records(mv: memoryview, pos: int) -> tuple[memoryview | None, int]:
    n, pos = read_uvarint(mv, pos)
    if n == 0:
        return None, pos
    end = _span(mv, pos, n - 1)
    return mv[pos:end], end


def raise_count(n: int, remaining: int) -> None:
    raise ProtocolError(f"array of {n} cannot fit in the {remaining} bytes that remain")


def read_count(mv: memoryview, pos: int, min_size: int) -> tuple[int, int]:
    """An int32 array length; -1 (null) is returned as is. Checked against the bytes left."""
    (n,) = _I32.unpack_from(mv, pos)
    pos += 4
    if n > 0 and n * min_size > len(mv) - pos:
        raise ProtocolError(f"array of {n} cannot fit in the {len(mv) - pos} bytes that remain")
    if n < -1:
        raise ProtocolError(f"negative array length {n}")
    return n, pos


def read_array(
    mv: memoryview, pos: int, fmts: tuple[str, ...], size: int
) -> tuple[list | None, int]:
    """An int32-counted array of one fixed-size type (fmts: ARRAY_FORMATS of that type)."""
    (n,) = _I32.unpack_from(mv, pos)
    pos += 4
    if n < 0:
        if n == -1:
            return None, pos
        raise ProtocolError(f"negative array length {n}")
    if n * size > len(mv) - pos:
        raise_count(n, len(mv) - pos)
    fmt = fmts[n] if n < 64 else f">{n}{fmts[1][2:]}"
    return list(unpack_from(fmt, mv, pos)), pos + size * n


def read_compact_array(
    mv: memoryview, pos: int, fmts: tuple[str, ...], size: int
) -> tuple[list | None, int]:
    """A compact array of one fixed-size type; null is returned as None."""
    n = mv[pos] - 1
    if 0 <= n < 64:
        # struct checks the few bytes it reads; a count this small allocates nothing big
        return list(unpack_from(fmts[n], mv, pos + 1)), pos + 1 + size * n
    n, pos = read_uvarint(mv, pos)
    n -= 1
    if n < 0:
        return None, pos
    if n * size > len(mv) - pos:
        raise_count(n, len(mv) - pos)
    return list(unpack_from(f">{n}{fmts[1][2:]}", mv, pos)), pos + size * n


def read_string_array(mv: memoryview, pos: int, n: int, compact: bool) -> tuple[list, int]:
    out = []
    read = read_compact_string if compact else read_string
    for _ in range(n):
        s, pos = read(mv, pos)
        out.append(s)
    return out, pos


def read_tag_header(mv: memoryview, pos: int) -> tuple[int, int, int]:
    """One tagged field's tag and the end of its data; the data starts at the returned pos."""
    tag, pos = read_uvarint(mv, pos)
    size, pos = read_uvarint(mv, pos)
    return tag, pos, _span(mv, pos, size)


def skip_tags(mv: memoryview, pos: int) -> tuple[list[tuple[int, bytes]] | None, int]:
    """Read a tagged-field section none of whose tags this version knows; keep them raw."""
    n, pos = read_uvarint(mv, pos)
    if n == 0:
        return None, pos
    unknown = []
    for _ in range(n):
        tag, pos, end = read_tag_header(mv, pos)
        unknown.append((tag, bytes(mv[pos:end])))
        pos = end
    return unknown, pos


def check_tag_end(pos: int, end: int, tag: int) -> None:
    if pos != end:
        raise ProtocolError(f"tagged field {tag} is {end - pos:+d} bytes off its declared size")


# --- writing ------------------------------------------------------------------------------------

# Values 0..127 are by far the most common varints (compact lengths, tag counts): precomputed.
SMALL_UVARINT = tuple(bytes([i]) for i in range(128))
# Format strings of small arrays of one fixed-size type, by element code and count.
ARRAY_FORMATS = {code: tuple(f">{n}{code}" for n in range(64)) for code in "bhHiqd?"}


def uvarint(n: int) -> bytes:
    if n < 128:
        return SMALL_UVARINT[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def write_string(b: bytearray, s: str) -> None:
    data = s.encode()
    b += _I16.pack(len(data))
    b += data


def write_nullable_string(b: bytearray, s: str | None) -> None:
    if s is None:
        b += b"\xff\xff"
        return
    data = s.encode()
    b += _I16.pack(len(data))
    b += data


def write_compact_string(b: bytearray, s: str) -> None:
    data = s.encode()
    b += uvarint(len(data) + 1)
    b += data


def write_compact_nullable_string(b: bytearray, s: str | None) -> None:
    if s is None:
        b.append(0)
        return
    data = s.encode()
    b += uvarint(len(data) + 1)
    b += data


def write_bytes(b: bytearray, data: bytes | None) -> None:
    if data is None:
        b += b"\xff\xff\xff\xff"
        return
    b += _I32.pack(len(data))
    b += data


def write_compact_bytes(b: bytearray, data: bytes | None) -> None:
    if data is None:
        b.append(0)
        return
    b += uvarint(len(data) + 1)
    b += data


# Record data at least this large is handed to the socket as its own buffer instead of copied.
SPLICE_MIN = 4096


def write_records(b: bytearray, sp: list | None, data: bytes | memoryview | None) -> None:
    if data is None:
        b += b"\xff\xff\xff\xff"
        return
    n = len(data)
    b += _I32.pack(n)
    if sp is not None and n >= SPLICE_MIN:
        sp.append((len(b), data))
    else:
        b += data


def write_compact_records(b: bytearray, sp: list | None, data: bytes | memoryview | None) -> None:
    if data is None:
        b.append(0)
        return
    n = len(data)
    b += uvarint(n + 1)
    if sp is not None and n >= SPLICE_MIN:
        sp.append((len(b), data))
    else:
        b += data


def write_count(b: bytearray, items: list | None) -> None:
    b += _I32.pack(-1 if items is None else len(items))


def write_compact_count(b: bytearray, items: list | None) -> None:
    b += uvarint(0 if items is None else len(items) + 1)


def write_tags(b: bytearray, tags: list[tuple[int, bytes | bytearray]]) -> None:
    """A tagged-field section: count, then tag, size and data for each, in tag order."""
    tags.sort(key=lambda t: t[0])
    b += uvarint(len(tags))
    for tag, data in tags:
        b += uvarint(tag)
        b += uvarint(len(data))
        b += data


def splice(b: bytearray, sp: list) -> list[bytes | bytearray | memoryview]:
    """Cut an encoded message into buffers around the record data kept aside in sp."""
    if not sp:
        return [b]
    mv = memoryview(b)
    parts: list[bytes | bytearray | memoryview] = []
    last = 0
    for pos, data in sp:
        if pos > last:
            parts.append(mv[last:pos])
        parts.append(data)
        last = pos
    if last < len(b):
        parts.append(mv[last:])
    return parts


def as_view(data: bytes | bytearray | memoryview) -> memoryview:
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def decode_with(table: tuple, data: bytes | bytearray | memoryview, version: int):  # noqa: ANN201
    """Run the decoder of one version over data; malformed input becomes a ProtocolError."""
    if not 0 <= version < len(table) or table[version] is None:
        raise UnsupportedVersionError(f"version {version} is not supported")
    mv = as_view(data)
    try:
        return table[version](mv, 0)[0]
    except DECODE_ERRORS as e:
        raise ProtocolError(f"malformed message (v{version}): {type(e).__name__}: {e}") from None
    except RecursionError:
        raise ProtocolError("malformed message: nesting too deep") from None


def encode_with(table: tuple, obj: object, version: int, b: bytearray, sp: list | None) -> None:
    if not 0 <= version < len(table) or table[version] is None:
        raise UnsupportedVersionError(f"version {version} is not supported")
    table[version](obj, b, sp)
