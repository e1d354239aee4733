"""RecordBatch v2 (magic 2): zero-copy header view, CRC32C, record iteration, building, varints."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import google_crc32c

from strom.protocol.compression import Compression, compress, decompress
from strom.protocol.errors import CorruptRecordError, ErrorCode, KafkaError

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "LOG_OVERHEAD",
    "CONTROL_TYPE_ABORT",
    "CONTROL_TYPE_COMMIT",
    "DEFAULT_MAX_DECOMPRESSED",
    "BatchView",
    "ControlRecord",
    "Record",
    "build_batch",
    "build_control_batch",
    "crc32c",
    "decode_varint",
    "decode_varlong",
    "encode_varint",
    "iter_batches",
    "size_of_varint",
]

# --- layout -----------------------------------------------------------------------------------

BASE_OFFSET_OFFSET = 0  # int64
BATCH_LENGTH_OFFSET = 8  # int32: bytes after this field
PARTITION_LEADER_EPOCH_OFFSET = 12  # int32
MAGIC_OFFSET = 16  # int8
CRC_OFFSET = 17  # uint32, CRC32C of attributes..end
ATTRIBUTES_OFFSET = 21  # int16; the CRC covers from here to the end of the batch
LAST_OFFSET_DELTA_OFFSET = 23  # int32
BASE_TIMESTAMP_OFFSET = 27  # int64
MAX_TIMESTAMP_OFFSET = 35  # int64
PRODUCER_ID_OFFSET = 43  # int64
PRODUCER_EPOCH_OFFSET = 51  # int16
BASE_SEQUENCE_OFFSET = 53  # int32
RECORDS_COUNT_OFFSET = 57  # int32
HEADER_SIZE = 61
#: Bytes before the batch length is known: base offset and batch length.
LOG_OVERHEAD = 12
MAGIC = 2

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40

CREATE_TIME = 0
LOG_APPEND_TIME = 1
NO_PRODUCER_ID = -1
NO_SEQUENCE = -1

CONTROL_TYPE_ABORT = 0
CONTROL_TYPE_COMMIT = 1

DEFAULT_MAX_DECOMPRESSED = 64 * 1024 * 1024
#: Smallest possible record: length, attributes, timestamp delta, offset delta, key length,
#: value length and header count, one byte each.
MIN_RECORD_SIZE = 7

_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)

_HEADER = struct.Struct(">qiibIhiqqqhii")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_CONTROL_KEY = struct.Struct(">hh")
_CONTROL_VALUE = struct.Struct(">hi")

_CRC_CHUNK = 256 * 1024
_CODECS = frozenset(int(c) for c in Compression)


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC32C (Castagnoli) of a bytes-like object.

    google_crc32c only takes ``bytes`` (its "y#" argument rejects memoryview and bytearray),
    so other buffers are copied, in pieces of at most 256 KiB to bound the extra memory.
    """
    return _crc32c_extend(0, data)


def _crc32c_extend(crc: int, data: bytes | bytearray | memoryview) -> int:
    extend = google_crc32c.extend
    if type(data) is bytes:
        return extend(crc, data)
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    n = len(view)
    if n <= _CRC_CHUNK:
        return extend(crc, view.tobytes())
    for start in range(0, n, _CRC_CHUNK):
        crc = extend(crc, view[start : start + _CRC_CHUNK].tobytes())
    return crc


# --- varints ----------------------------------------------------------------------------------


def encode_varint(n: int) -> bytes:
    """Zigzag varint of a signed 64-bit integer (1 to 10 bytes), as Kafka records use."""
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise KafkaError(f"varint out of int64 range: {n}", code=ErrorCode.INVALID_RECORD)
    z = ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF
    if z < 0x80:
        return _SMALL_VARINTS[z]
    if z < 0x4000:
        return bytes(((z & 0x7F) | 0x80, z >> 7))
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL_VARINTS = tuple(bytes((z,)) for z in range(0x80))


def size_of_varint(n: int) -> int:
    """Number of bytes ``encode_varint(n)`` produces."""
    z = ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF
    size = 1
    while z >= 0x80:
        z >>= 7
        size += 1
    return size


def _read_varint(
    buf: bytes | bytearray | memoryview, pos: int, end: int, max_bytes: int
) -> tuple[int, int]:
    """Decode a zigzag varint of at most ``max_bytes`` bytes from ``buf[pos:end]``."""
    if pos >= end:
        raise CorruptRecordError("truncated varint")
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    result = b & 0x7F
    shift = 7
    limit = pos + max_bytes
    pos += 1
    while True:
        if pos >= end:
            raise CorruptRecordError("truncated varint")
        if pos >= limit:
            raise CorruptRecordError(f"varint longer than {max_bytes} bytes")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
    if result >> (7 * max_bytes - (3 if max_bytes == 5 else 6)):
        # 5 bytes carry 35 bits but a varint is 32; 10 bytes carry 70 but a varlong is 64.
        raise CorruptRecordError("varint out of range")
    return (result >> 1) ^ -(result & 1), pos


def decode_varint(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode a zigzag varint (int32, at most 5 bytes) at ``pos``; returns (value, new_pos)."""
    return _read_varint(buf, pos, len(buf), 5)


def decode_varlong(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode a zigzag varlong (int64, at most 10 bytes) at ``pos``; returns (value, new_pos)."""
    return _read_varint(buf, pos, len(buf), 10)


# --- records ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    """One record of a batch, with its absolute offset and timestamp."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    attributes: int = 0


@dataclass
class ControlRecord:
    """The content of a control batch: an end-transaction marker (0 abort, 1 commit) or other."""

    type: int
    coordinator_epoch: int


class BatchView:
    """A zero-copy view over one RecordBatch v2 at the start of a buffer.

    Reading a field reads the buffer; setters write into it (the buffer must be writable).
    The constructor only needs the 61 header bytes; ``validate()`` checks the rest.
    """

    __slots__ = ("_buf",)

    def __init__(self, buf: memoryview | bytes | bytearray) -> None:
        view = memoryview(buf)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        if len(view) < HEADER_SIZE:
            raise CorruptRecordError(
                f"record batch header truncated: {len(view)} of {HEADER_SIZE} bytes"
            )
        size = LOG_OVERHEAD + _I32.unpack_from(view, BATCH_LENGTH_OFFSET)[0]
        if HEADER_SIZE <= size < len(view):
            view = view[:size]
        self._buf = view

    def __repr__(self) -> str:
        return (
            f"BatchView(base_offset={self.base_offset}, size={self.size}, "
            f"records_count={self.records_count}, attributes={self.attributes:#x})"
        )

    # -- fields --

    @property
    def base_offset(self) -> int:
        return _I64.unpack_from(self._buf, BASE_OFFSET_OFFSET)[0]

    @property
    def batch_length(self) -> int:
        return _I32.unpack_from(self._buf, BATCH_LENGTH_OFFSET)[0]

    @property
    def size(self) -> int:
        """Total bytes of the batch: 12 + batch_length."""
        return LOG_OVERHEAD + _I32.unpack_from(self._buf, BATCH_LENGTH_OFFSET)[0]

    @property
    def partition_leader_epoch(self) -> int:
        return _I32.unpack_from(self._buf, PARTITION_LEADER_EPOCH_OFFSET)[0]

    @property
    def magic(self) -> int:
        return _I8.unpack_from(self._buf, MAGIC_OFFSET)[0]

    @property
    def crc(self) -> int:
        return _U32.unpack_from(self._buf, CRC_OFFSET)[0]

    @property
    def attributes(self) -> int:
        return _I16.unpack_from(self._buf, ATTRIBUTES_OFFSET)[0]

    @property
    def compression(self) -> Compression:
        codec = self._buf[ATTRIBUTES_OFFSET + 1] & COMPRESSION_MASK
        try:
            return Compression(codec)
        except ValueError:
            raise KafkaError(
                f"unknown compression type {codec}", code=ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
            ) from None

    @property
    def timestamp_type(self) -> int:
        """0 = CreateTime, 1 = LogAppendTime."""
        return (self._buf[ATTRIBUTES_OFFSET + 1] & TIMESTAMP_TYPE_MASK) >> 3

    @property
    def is_transactional(self) -> bool:
        return bool(self._buf[ATTRIBUTES_OFFSET + 1] & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self._buf[ATTRIBUTES_OFFSET + 1] & CONTROL_MASK)

    @property
    def has_delete_horizon(self) -> bool:
        """Whether base_timestamp holds the delete horizon set by log compaction (KIP-534)."""
        return bool(self._buf[ATTRIBUTES_OFFSET + 1] & DELETE_HORIZON_MASK)

    @property
    def last_offset_delta(self) -> int:
        return _I32.unpack_from(self._buf, LAST_OFFSET_DELTA_OFFSET)[0]

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def base_timestamp(self) -> int:
        return _I64.unpack_from(self._buf, BASE_TIMESTAMP_OFFSET)[0]

    @property
    def max_timestamp(self) -> int:
        return _I64.unpack_from(self._buf, MAX_TIMESTAMP_OFFSET)[0]

    @property
    def producer_id(self) -> int:
        return _I64.unpack_from(self._buf, PRODUCER_ID_OFFSET)[0]

    @property
    def producer_epoch(self) -> int:
        return _I16.unpack_from(self._buf, PRODUCER_EPOCH_OFFSET)[0]

    @property
    def base_sequence(self) -> int:
        return _I32.unpack_from(self._buf, BASE_SEQUENCE_OFFSET)[0]

    @property
    def last_sequence(self) -> int:
        """base_sequence + last_offset_delta, wrapping past 2^31 - 1 to 0 as Kafka does."""
        base = self.base_sequence
        if base == NO_SEQUENCE:
            return NO_SEQUENCE
        last = base + self.last_offset_delta
        return last - 2**31 if last > _INT32_MAX else last

    @property
    def records_count(self) -> int:
        return _I32.unpack_from(self._buf, RECORDS_COUNT_OFFSET)[0]

    # -- checks --

    def _complete_size(self) -> int:
        """The batch size, after checking the whole batch is in the buffer."""
        size = self.size
        if size < HEADER_SIZE:
            raise CorruptRecordError(
                f"record batch size {size} below the {HEADER_SIZE}-byte header"
            )
        if size > len(self._buf):
            raise CorruptRecordError(
                f"record batch truncated: {len(self._buf)} of {size} bytes in the buffer"
            )
        return size

    def compute_crc(self) -> int:
        """CRC32C over attributes..end of the batch (the whole batch must be in the buffer)."""
        size = self._complete_size()
        return crc32c(self._buf[ATTRIBUTES_OFFSET:size])

    def crc_valid(self) -> bool:
        return self.compute_crc() == self.crc

    def validate(self) -> None:
        """Check sizes, magic, CRC and header sanity; raise CorruptRecordError if any fails."""
        size = self._complete_size()
        # one unpack of the header, not a property (and a struct call) per field: the
        # produce path validates every batch
        _, _, _, magic, crc, attributes, last_delta, _, _, _, _, _, count = _HEADER.unpack_from(
            self._buf, 0
        )
        if magic != MAGIC:
            raise CorruptRecordError(f"unsupported record batch magic {magic}")
        computed = crc32c(self._buf[ATTRIBUTES_OFFSET:size])
        if crc != computed:
            raise CorruptRecordError(
                f"record batch CRC mismatch: stored {crc:#010x}, computed {computed:#010x}"
            )
        if count < 0:
            raise CorruptRecordError(f"negative record count {count}")
        if last_delta < 0:
            raise CorruptRecordError(f"negative last offset delta {last_delta}")
        codec = attributes & COMPRESSION_MASK
        if codec not in _CODECS:
            raise KafkaError(
                f"unknown compression type {codec}", code=ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
            )
        if codec == Compression.NONE and count * MIN_RECORD_SIZE > size - HEADER_SIZE:
            raise CorruptRecordError(f"{count} records cannot fit in {size - HEADER_SIZE} bytes")

    # -- stamping --

    def _writable(self) -> memoryview:
        if self._buf.readonly:
            raise TypeError("record batch buffer is read-only")
        return self._buf

    def set_base_offset(self, offset: int) -> None:
        """Write the base offset in place; outside CRC coverage, so the CRC stays valid."""
        if not _INT64_MIN <= offset <= _INT64_MAX:
            raise ValueError(f"base offset out of range: {offset}")
        _I64.pack_into(self._writable(), BASE_OFFSET_OFFSET, offset)

    def set_partition_leader_epoch(self, epoch: int) -> None:
        """Write the partition leader epoch in place; outside CRC coverage."""
        if not _INT32_MIN <= epoch <= _INT32_MAX:
            raise ValueError(f"partition leader epoch out of range: {epoch}")
        _I32.pack_into(self._writable(), PARTITION_LEADER_EPOCH_OFFSET, epoch)

    def set_max_timestamp(self, timestamp: int, log_append_time: bool) -> None:
        """Write max_timestamp and the timestamp type (LogAppendTime if asked, else CreateTime)
        in place, then recompute the CRC as both lie inside its coverage."""
        if not _INT64_MIN <= timestamp <= _INT64_MAX:
            raise ValueError(f"timestamp out of range: {timestamp}")
        buf = self._writable()
        size = self._complete_size()
        attrs = _I16.unpack_from(buf, ATTRIBUTES_OFFSET)[0]
        if log_append_time:
            attrs |= TIMESTAMP_TYPE_MASK
        else:
            attrs &= ~TIMESTAMP_TYPE_MASK
        _I16.pack_into(buf, ATTRIBUTES_OFFSET, attrs)
        _I64.pack_into(buf, MAX_TIMESTAMP_OFFSET, timestamp)
        _U32.pack_into(buf, CRC_OFFSET, crc32c(buf[ATTRIBUTES_OFFSET:size]))

    def emptied(self) -> bytes:
        """This batch's header alone: no records, uncompressed, every other field (offsets,
        producer id, epoch, sequences, timestamps) kept. The cleaner leaves one in place of a
        producer's last batch when it removes all its records, as Kafka does, so the producer's
        sequence state survives a rebuild from the log."""
        header = bytearray(self._buf[:HEADER_SIZE])
        _I32.pack_into(header, BATCH_LENGTH_OFFSET, HEADER_SIZE - LOG_OVERHEAD)
        attrs = _I16.unpack_from(header, ATTRIBUTES_OFFSET)[0] & ~COMPRESSION_MASK
        _I16.pack_into(header, ATTRIBUTES_OFFSET, attrs)
        _I32.pack_into(header, RECORDS_COUNT_OFFSET, 0)
        _U32.pack_into(header, CRC_OFFSET, crc32c(header[ATTRIBUTES_OFFSET:]))
        return bytes(header)

    # -- content --

    def raw(self) -> memoryview:
        """Exactly this batch's bytes (a view, not a copy)."""
        size = self._complete_size()
        return self._buf[:size]

    def records(self, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> Iterator[Record]:
        """Decode the records, decompressing first if needed (at most ``max_decompressed``
        bytes). Every length is checked against the bytes that remain before it is used."""
        size = self._complete_size()
        fields = _HEADER.unpack_from(self._buf, 0)
        base_offset, attributes, base_timestamp, max_timestamp, count = (
            fields[0],
            fields[5],
            fields[7],
            fields[8],
            fields[12],
        )
        if count < 0:
            raise CorruptRecordError(f"negative record count {count}")
        codec = attributes & COMPRESSION_MASK
        body = self._buf[HEADER_SIZE:size]
        if codec == Compression.NONE:
            data = body.tobytes()
        else:
            data = decompress(codec, body, max_decompressed)
        log_append = bool(attributes & TIMESTAMP_TYPE_MASK)
        return _iter_records(data, count, base_offset, base_timestamp, max_timestamp, log_append)

    def verify_records(self, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> None:
        """Check the records section without decoding records: it decompresses (within
        ``max_decompressed``) and holds exactly ``records_count`` records, by their lengths;
        raise CorruptRecordError otherwise. Cheap enough for the produce path."""
        size = self._complete_size()
        fields = _HEADER.unpack_from(self._buf, 0)
        codec = fields[5] & COMPRESSION_MASK
        count = fields[12]
        body = self._buf[HEADER_SIZE:size]
        data = body if codec == Compression.NONE else decompress(codec, body, max_decompressed)
        _walk_records(data, count)

    def control_record(self) -> ControlRecord | None:
        """The control record of a control batch (None for data batches or empty ones)."""
        if not self.is_control:
            return None
        for record in self.records():
            key = record.key
            if key is None or len(key) < 4:
                raise CorruptRecordError("control record key shorter than 4 bytes")
            version, ctype = _CONTROL_KEY.unpack_from(key, 0)
            if version < 0:
                raise CorruptRecordError(f"invalid control record key version {version}")
            if ctype not in (CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT):
                return ControlRecord(type=ctype, coordinator_epoch=-1)
            value = record.value
            if value is None or len(value) < 6:
                raise CorruptRecordError("transaction marker value shorter than 6 bytes")
            value_version, coordinator_epoch = _CONTROL_VALUE.unpack_from(value, 0)
            if value_version < 0:
                raise CorruptRecordError(f"invalid transaction marker version {value_version}")
            return ControlRecord(type=ctype, coordinator_epoch=coordinator_epoch)
        return None


def _walk_records(data: bytes | memoryview, count: int) -> None:
    """``data`` holds exactly ``count`` length-prefixed records (lengths only are read: about
    0.25 µs a record; one- and two-byte lengths, the common ones, are decoded inline). After two
    records of one size (fixed-size values: only the offset delta's varint width changes it),
    the next records' length prefixes are compared in C, a strided slice at a time (16, then 8x
    more while all match), so a run of equal lengths costs ~30 ns a record, not ~250."""
    end = len(data)
    pos = 0
    i = 0
    prev = -1
    try:
        while i < count:
            b0 = data[pos]
            if b0 < 0x80:
                length = (b0 >> 1) ^ -(b0 & 1)
                width = 1
            else:
                b1 = data[pos + 1]
                if b1 < 0x80:
                    raw = (b0 & 0x7F) | (b1 << 7)
                    length = (raw >> 1) ^ -(raw & 1)
                    width = 2
                else:
                    length, after = _read_varint(data, pos, end, 5)
                    width = after - pos
            if length < 6:
                raise CorruptRecordError(f"record {i} has length {length}")
            size = width + length
            i += 1
            pos += size
            if size == prev and width <= 2:
                # the records at pos, pos + size, ... while their prefixes equal this one's
                p0 = bytes((b0,))
                n = 16
                while i < count:
                    n = min(n, count - i, (end - pos) // size)
                    if n <= 0:
                        break
                    stop = pos + n * size
                    same = n - len(bytes(data[pos:stop:size]).lstrip(p0))
                    if width == 2:
                        col = bytes(data[pos + 1 : stop : size])
                        same = min(same, n - len(col.lstrip(bytes((b1,)))))
                    i += same
                    pos += same * size
                    if same < n:
                        break
                    n *= 8
            prev = size
    except IndexError:
        raise CorruptRecordError(f"records end before the {count} the batch counts") from None
    if pos != end:
        raise CorruptRecordError(f"records take {pos} bytes, the batch holds {end}")


def _iter_records(
    data: bytes,
    count: int,
    base_offset: int,
    base_timestamp: int,
    max_timestamp: int,
    log_append: bool,
) -> Iterator[Record]:
    """Decode ``count`` records from ``data``, which must hold exactly those records.

    Most varints here are one byte, so that case is decoded inline (bounds checked by the
    ``pos < rec_end`` test); longer or truncated ones go through ``_read_varint``.
    """
    read = _read_varint
    end = len(data)
    pos = 0
    for _ in range(count):
        length, pos = read(data, pos, end, 5)
        rec_end = pos + length
        if length < 6 or rec_end > end:
            raise CorruptRecordError(f"record length {length} invalid with {end - pos} bytes left")
        attributes = data[pos]
        pos += 1
        ts_delta, pos = read(data, pos, rec_end, 10)
        b = data[pos] if pos < rec_end else 0x80
        if b < 0x80:
            offset_delta = (b >> 1) ^ -(b & 1)
            pos += 1
        else:
            offset_delta, pos = read(data, pos, rec_end, 5)
        b = data[pos] if pos < rec_end else 0x80
        if b < 0x80:
            key_len = (b >> 1) ^ -(b & 1)
            pos += 1
        else:
            key_len, pos = read(data, pos, rec_end, 5)
        if key_len >= 0:
            if key_len > rec_end - pos:
                raise CorruptRecordError(f"key length {key_len} exceeds the record")
            key: bytes | None = data[pos : pos + key_len]
            pos += key_len
        elif key_len == -1:
            key = None
        else:
            raise CorruptRecordError(f"invalid key length {key_len}")
        b = data[pos] if pos < rec_end else 0x80
        if b < 0x80:
            value_len = (b >> 1) ^ -(b & 1)
            pos += 1
        else:
            value_len, pos = read(data, pos, rec_end, 5)
        if value_len >= 0:
            if value_len > rec_end - pos:
                raise CorruptRecordError(f"value length {value_len} exceeds the record")
            value: bytes | None = data[pos : pos + value_len]
            pos += value_len
        elif value_len == -1:
            value = None
        else:
            raise CorruptRecordError(f"invalid value length {value_len}")
        headers: list[tuple[str, bytes | None]] = []
        if pos < rec_end and data[pos] == 0:  # no headers, the common case
            pos += 1
        else:
            header_count, pos = read(data, pos, rec_end, 5)
            if header_count < 0 or header_count * 2 > rec_end - pos:
                raise CorruptRecordError(f"invalid header count {header_count}")
            for _h in range(header_count):
                hk_len, pos = read(data, pos, rec_end, 5)
                if hk_len < 0 or hk_len > rec_end - pos:
                    raise CorruptRecordError(f"invalid header key length {hk_len}")
                try:
                    hkey = data[pos : pos + hk_len].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise CorruptRecordError(f"header key is not UTF-8: {exc}") from None
                pos += hk_len
                hv_len, pos = read(data, pos, rec_end, 5)
                if hv_len >= 0:
                    if hv_len > rec_end - pos:
                        raise CorruptRecordError(f"header value length {hv_len} exceeds the record")
                    hvalue: bytes | None = data[pos : pos + hv_len]
                    pos += hv_len
                elif hv_len == -1:
                    hvalue = None
                else:
                    raise CorruptRecordError(f"invalid header value length {hv_len}")
                headers.append((hkey, hvalue))
        if pos != rec_end:
            raise CorruptRecordError(f"record has {rec_end - pos} bytes past its last header")
        yield Record(
            base_offset + offset_delta,
            max_timestamp if log_append else base_timestamp + ts_delta,
            key,
            value,
            headers,
            attributes,
        )
    if pos != end:
        raise CorruptRecordError(f"{end - pos} bytes after the last of {count} records")


def iter_batches(
    buf: memoryview | bytes | bytearray,
    *,
    verify: bool = False,
    allow_partial_tail: bool = False,
) -> Iterator[BatchView]:
    """Walk back-to-back batches, checking each length against the bytes that remain.

    A truncated last batch raises CorruptRecordError, or ends the iteration silently when
    ``allow_partial_tail`` (fetch responses may end in a partial batch). ``verify`` runs
    ``validate()`` (CRC included) on every batch; otherwise only length and magic are checked.
    """
    view = memoryview(buf)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    n = len(view)
    pos = 0
    unpack_i32 = _I32.unpack_from
    while pos < n:
        remaining = n - pos
        if remaining < LOG_OVERHEAD:
            if allow_partial_tail:
                return
            raise CorruptRecordError(f"truncated record batch: {remaining} trailing bytes")
        size = LOG_OVERHEAD + unpack_i32(view, pos + BATCH_LENGTH_OFFSET)[0]
        if size < HEADER_SIZE:
            raise CorruptRecordError(
                f"record batch size {size} below the {HEADER_SIZE}-byte header"
            )
        if size > remaining:
            if allow_partial_tail:
                return
            raise CorruptRecordError(f"truncated record batch: {remaining} of {size} bytes")
        magic = view[pos + MAGIC_OFFSET]
        if magic != MAGIC:
            raise CorruptRecordError(f"unsupported record batch magic {magic}")
        batch = BatchView(view[pos : pos + size])
        if verify:
            batch.validate()
        yield batch
        pos += size


# --- building ---------------------------------------------------------------------------------


def _invalid(message: str) -> KafkaError:
    return KafkaError(message, code=ErrorCode.INVALID_RECORD)


def _append_bytes(out: bytearray, data: bytes | bytearray | memoryview | None, what: str) -> None:
    if data is None:
        out += b"\x01"  # varint -1
        return
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _invalid(f"record {what} must be bytes or None, not {type(data).__name__}")
    n = data.nbytes if isinstance(data, memoryview) else len(data)
    out += encode_varint(n)
    out += data


def build_batch(
    records: Iterable[Record | tuple],
    *,
    base_offset: int = 0,
    compression: Compression | int = Compression.NONE,
    timestamp: int | None = None,
    timestamp_type: int = CREATE_TIME,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = NO_SEQUENCE,
    partition_leader_epoch: int = -1,
    transactional: bool = False,
) -> bytes:
    """Encode records as one RecordBatch v2.

    Records are ``Record`` objects (their own timestamps and attributes are kept; offsets are
    their positions) or ``(key, value)`` / ``(key, value, headers)`` tuples stamped with
    ``timestamp`` (milliseconds, default now). With LogAppendTime, max_timestamp is
    ``timestamp``.
    """
    return _build(
        records,
        base_offset,
        compression,
        timestamp,
        timestamp_type,
        producer_id,
        producer_epoch,
        base_sequence,
        partition_leader_epoch,
        transactional,
        False,
    )


def _build(
    records: Iterable[Record | tuple],
    base_offset: int,
    compression: Compression | int,
    timestamp: int | None,
    timestamp_type: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    partition_leader_epoch: int,
    transactional: bool,
    control: bool,
) -> bytes:
    if timestamp is None:
        timestamp = int(time.time() * 1000)
    codec = Compression(compression) if 0 <= int(compression) <= 4 else None
    if codec is None:
        raise KafkaError(
            f"unknown compression type {compression}", code=ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
        )
    body = bytearray()
    first_ts: int | None = None
    max_ts: int | None = None
    count = 0
    rec = bytearray()
    for item in records:
        if isinstance(item, Record):
            key, value, headers = item.key, item.value, item.headers
            ts, rec_attrs = item.timestamp, item.attributes
        else:
            if not isinstance(item, tuple) or len(item) not in (2, 3):
                raise _invalid("a record must be a Record or a (key, value[, headers]) tuple")
            key, value = item[0], item[1]
            headers = item[2] if len(item) == 3 else ()
            ts, rec_attrs = timestamp, 0
        if first_ts is None:
            first_ts = max_ts = ts
        elif ts > max_ts:  # type: ignore[operator]
            max_ts = ts
        rec.clear()
        rec.append(rec_attrs & 0xFF)
        rec += encode_varint(ts - first_ts)
        if count > _INT32_MAX:
            raise _invalid("too many records for one batch")
        rec += encode_varint(count)
        _append_bytes(rec, key, "key")
        _append_bytes(rec, value, "value")
        headers = list(headers or ())
        rec += encode_varint(len(headers))
        for header in headers:
            try:
                hkey, hvalue = header
            except (TypeError, ValueError):
                raise _invalid("a header must be a (key, value) pair") from None
            if isinstance(hkey, str):
                hkey = hkey.encode("utf-8")
            elif not isinstance(hkey, bytes | bytearray):
                raise _invalid(f"header key must be str, not {type(hkey).__name__}")
            out_key = hkey
            rec += encode_varint(len(out_key))
            rec += out_key
            _append_bytes(rec, hvalue, "header value")
        body += encode_varint(len(rec))
        body += rec
        count += 1
    if first_ts is None:
        first_ts = max_ts = timestamp
    if timestamp_type == LOG_APPEND_TIME:
        max_ts = timestamp
    elif timestamp_type != CREATE_TIME:
        raise _invalid(f"invalid timestamp type {timestamp_type}")
    payload: bytes | bytearray = body if codec == Compression.NONE else compress(codec, body)
    attributes = codec | (TIMESTAMP_TYPE_MASK if timestamp_type == LOG_APPEND_TIME else 0)
    if transactional:
        attributes |= TRANSACTIONAL_MASK
    if control:
        attributes |= CONTROL_MASK
    batch_length = HEADER_SIZE - LOG_OVERHEAD + len(payload)
    if batch_length > _INT32_MAX:
        raise _invalid("record batch larger than 2 GiB")
    header = bytearray(HEADER_SIZE)
    try:
        _HEADER.pack_into(
            header,
            0,
            base_offset,
            batch_length,
            partition_leader_epoch,
            MAGIC,
            0,
            attributes,
            max(count - 1, 0),
            first_ts,
            max_ts,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        )
    except struct.error as exc:
        raise _invalid(f"record batch field out of range: {exc}") from None
    crc = _crc32c_extend(google_crc32c.value(bytes(header[ATTRIBUTES_OFFSET:])), payload)
    _U32.pack_into(header, CRC_OFFSET, crc)
    return b"".join((header, payload))


def build_control_batch(
    control_type: int,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int = 0,
    base_offset: int = 0,
    timestamp: int | None = None,
    partition_leader_epoch: int = -1,
) -> bytes:
    """Encode a transaction marker: a transactional control batch holding one control record
    (key: version 0 + type, 0 abort / 1 commit; value: version 0 + coordinator epoch)."""
    try:
        key = _CONTROL_KEY.pack(0, control_type)
        value = _CONTROL_VALUE.pack(0, coordinator_epoch)
    except struct.error as exc:
        raise _invalid(f"control record field out of range: {exc}") from None
    return _build(
        [(key, value)],
        base_offset,
        Compression.NONE,
        timestamp,
        CREATE_TIME,
        producer_id,
        producer_epoch,
        NO_SEQUENCE,
        partition_leader_epoch,
        True,
        True,
    )
