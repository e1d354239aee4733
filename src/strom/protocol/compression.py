"""Kafka's record batch compression codecs (gzip, snappy, lz4, zstd) with bounded decompression."""

from __future__ import annotations

import struct
import threading
import zlib
from enum import IntEnum

import cramjam
import lz4.frame
import zstandard

from strom.protocol.errors import CorruptRecordError, ErrorCode, KafkaError

__all__ = [
    "XERIAL_MAGIC",
    "XERIAL_HEADER",
    "XERIAL_BLOCK_SIZE",
    "Compression",
    "compress",
    "decompress",
]


class Compression(IntEnum):
    """Compression codec ids: the low three bits of a record batch's attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


#: Magic of the xerial snappy stream (Java's SnappyOutputStream): magic, version 1, compatible 1.
XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
#: Uncompressed bytes per xerial block; 32 KiB is the Java library's default.
XERIAL_BLOCK_SIZE = 32 * 1024

_ZSTD_DEFAULT_LEVEL = 3  # Kafka's default (KIP-390)
_GZIP_DEFAULT_LEVEL = 6  # java.util.zip.Deflater's default
_STREAM_CHUNK = 1 << 20  # largest piece read at once when stream-decompressing with a cap
_ZSTD_BLOCK_MAX = 128 * 1024
_ZSTD_MAGIC = 0xFD2FB528
_I32 = struct.Struct(">i")
_U32LE = struct.Struct("<I")

# Per-thread caches of zstd contexts (zstandard objects are not safe for concurrent use).
# They hold no state that outlives a call, so they change nothing but speed.
_local = threading.local()


def _corrupt(codec: str, exc: BaseException | str) -> CorruptRecordError:
    return CorruptRecordError(f"invalid {codec} data: {exc}")


def _too_large(max_size: int) -> CorruptRecordError:
    return CorruptRecordError(f"decompressed data exceeds the limit of {max_size} bytes")


def _unsupported(codec: int) -> KafkaError:
    return KafkaError(
        f"unknown compression type {codec}", code=ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    )


def _codec(codec: int) -> Compression:
    try:
        return Compression(codec)
    except ValueError:
        raise _unsupported(codec) from None


# ---------------------------------------------------------------------------------------------
# compress


def compress(
    codec: Compression | int, data: bytes | bytearray | memoryview, level: int | None = None
) -> bytes:
    """Compress ``data`` with ``codec`` as Kafka producers do; ``level`` overrides the default."""
    c = _codec(codec)
    if c == Compression.NONE:
        return bytes(data)
    try:
        if c == Compression.GZIP:
            return zlib.compress(data, _GZIP_DEFAULT_LEVEL if level is None else level, 31)
        if c == Compression.SNAPPY:
            return _xerial_compress(data)
        if c == Compression.LZ4:
            # Independent blocks: Kafka's Java LZ4 reader does not support linked blocks.
            kwargs = {} if level is None else {"compression_level": level}
            return lz4.frame.compress(data, block_linked=False, store_size=False, **kwargs)
        return _zstd_compressor(_ZSTD_DEFAULT_LEVEL if level is None else level).compress(data)
    except (zlib.error, RuntimeError, zstandard.ZstdError, cramjam.CompressionError) as exc:
        raise KafkaError(
            f"{c.name.lower()} compression failed: {exc}", code=ErrorCode.INVALID_RECORD
        ) from exc


def _xerial_compress(data: bytes | bytearray | memoryview) -> bytes:
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if not view:
        # A bare xerial header is not recognised as xerial by some readers (kafka-python wants
        # more than 16 bytes); raw snappy of nothing is read by all of them.
        return b"\x00"
    parts: list[bytes | cramjam.Buffer] = [XERIAL_HEADER]
    pack = _I32.pack
    compress_raw = cramjam.snappy.compress_raw
    for start in range(0, len(view), XERIAL_BLOCK_SIZE):
        block = compress_raw(view[start : start + XERIAL_BLOCK_SIZE])
        parts.append(pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def _zstd_compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "zstd_c", None)
    if cache is None:
        cache = _local.zstd_c = {}
    cctx = cache.get(level)
    if cctx is None:
        cctx = cache[level] = zstandard.ZstdCompressor(level=level)
    return cctx


def _zstd_decompressor() -> zstandard.ZstdDecompressor:
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "zstd_d", None)
    if dctx is None:
        dctx = _local.zstd_d = zstandard.ZstdDecompressor()
    return dctx


# ---------------------------------------------------------------------------------------------
# decompress


def decompress(
    codec: Compression | int, data: bytes | bytearray | memoryview, max_size: int
) -> bytes:
    """Decompress ``data``; more than ``max_size`` bytes of output raises CorruptRecordError.

    The cap is enforced while decompressing: no declared size is trusted for an allocation
    larger than ``max_size``.
    """
    c = _codec(codec)
    if max_size < 0:
        raise ValueError("max_size must not be negative")
    if c == Compression.NONE:
        if len(data) > max_size:
            raise _too_large(max_size)
        return bytes(data)
    if c == Compression.GZIP:
        return _gzip_decompress(data, max_size)
    if c == Compression.SNAPPY:
        return _snappy_decompress(data, max_size)
    if c == Compression.LZ4:
        return _lz4_decompress(data, max_size)
    return _zstd_decompress(data, max_size)


def _gzip_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    out: list[bytes] = []
    total = 0
    rest: bytes | bytearray | memoryview = data
    try:
        while True:  # one gzip member per turn (concatenated members are one stream)
            d = zlib.decompressobj(31)
            chunk = d.decompress(rest, max_size - total + 1)
            total += len(chunk)
            if total > max_size:
                raise _too_large(max_size)
            out.append(chunk)
            # Output below the limit means all input was consumed: no end of stream, truncated.
            if not d.eof:
                raise _corrupt("gzip", "truncated stream")
            rest = d.unused_data
            if not rest:
                break
    except zlib.error as exc:
        raise _corrupt("gzip", exc) from exc
    return out[0] if len(out) == 1 else b"".join(out)


def _lz4_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    out: list[bytes] = []
    total = 0
    rest: bytes | bytearray | memoryview = data
    try:
        while True:  # one lz4 frame per turn
            d = lz4.frame.LZ4FrameDecompressor()
            chunk = d.decompress(rest, max_length=max_size - total + 1)
            total += len(chunk)
            if total > max_size:
                raise _too_large(max_size)
            out.append(chunk)
            # Output below the limit means all input was consumed: no end of frame, truncated.
            if not d.eof:
                raise _corrupt("lz4", "truncated frame")
            rest = d.unused_data
            if not rest:
                break
    except RuntimeError as exc:
        raise _corrupt("lz4", exc) from exc
    return out[0] if len(out) == 1 else b"".join(out)


def _snappy_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    raw_len = cramjam.snappy.decompress_raw_len
    decompress_raw = cramjam.snappy.decompress_raw
    try:
        if view[:8] != XERIAL_MAGIC:
            # Raw snappy: the declared length is what the decoder must produce, exactly.
            if raw_len(view) > max_size:
                raise _too_large(max_size)
            return bytes(decompress_raw(view))
        n = len(view)
        if n < len(XERIAL_HEADER):
            raise _corrupt("snappy", "truncated xerial header")
        # First pass: find the blocks and check their declared sizes against the cap.
        blocks: list[tuple[memoryview, int]] = []
        total = 0
        pos = len(XERIAL_HEADER)
        unpack_i32 = _I32.unpack_from
        while pos < n:
            if n - pos < 4:
                raise _corrupt("snappy", "truncated xerial block length")
            (length,) = unpack_i32(view, pos)
            pos += 4
            if length <= 0 or length > n - pos:
                raise _corrupt("snappy", f"bad xerial block length {length}")
            block = view[pos : pos + length]
            pos += length
            size = raw_len(block)
            total += size
            if total > max_size:
                raise _too_large(max_size)
            blocks.append((block, size))
        if len(blocks) == 1:
            return bytes(decompress_raw(blocks[0][0]))
        # Second pass: decompress every block into one buffer.
        out = bytearray(total)
        out_view = memoryview(out)
        at = 0
        into = cramjam.snappy.decompress_raw_into
        for block, size in blocks:
            written = into(block, out_view[at : at + size])
            if written != size:
                raise _corrupt("snappy", "block shorter than declared")
            at += size
        out_view.release()
        return bytes(out)
    except cramjam.DecompressionError as exc:
        raise _corrupt("snappy", exc) from exc


def _zstd_frames(view: memoryview) -> list[tuple[memoryview, int]]:
    """Split zstd data into (frame, content size or -1), checking each frame is complete.

    Skippable frames are dropped. Walking the block headers tells where a frame ends, so a
    truncated frame is an error rather than silently short output.
    """
    frames: list[tuple[memoryview, int]] = []
    n = len(view)
    pos = 0
    while pos < n:
        start = pos
        if n - pos < 4:
            raise _corrupt("zstd", "truncated frame magic")
        (magic,) = _U32LE.unpack_from(view, pos)
        pos += 4
        if magic & 0xFFFFFFF0 == 0x184D2A50:  # skippable frame
            if n - pos < 4:
                raise _corrupt("zstd", "truncated skippable frame")
            (size,) = _U32LE.unpack_from(view, pos)
            pos += 4 + size
            if pos > n:
                raise _corrupt("zstd", "truncated skippable frame")
            continue
        if magic != _ZSTD_MAGIC:
            raise _corrupt("zstd", "bad frame magic")
        if pos >= n:
            raise _corrupt("zstd", "truncated frame header")
        fhd = view[pos]
        pos += 1
        single_segment = fhd & 0x20
        if fhd & 0x08:
            raise _corrupt("zstd", "reserved bit set in frame header")
        fcs_flag = fhd >> 6
        fcs_size = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
        header_rest = (0 if single_segment else 1) + (0, 1, 2, 4)[fhd & 0x03] + fcs_size
        if n - pos < header_rest:
            raise _corrupt("zstd", "truncated frame header")
        content_size = -1
        if fcs_size:
            fcs_at = pos + header_rest - fcs_size
            content_size = int.from_bytes(view[fcs_at : fcs_at + fcs_size], "little")
            if fcs_size == 2:
                content_size += 256
        pos += header_rest
        while True:  # blocks
            if n - pos < 3:
                raise _corrupt("zstd", "truncated block header")
            bh = view[pos] | (view[pos + 1] << 8) | (view[pos + 2] << 16)
            pos += 3
            block_type = (bh >> 1) & 0x03
            block_size = bh >> 3
            if block_type == 3 or block_size > _ZSTD_BLOCK_MAX:
                raise _corrupt("zstd", "invalid block header")
            pos += 1 if block_type == 1 else block_size
            if pos > n:
                raise _corrupt("zstd", "truncated block")
            if bh & 1:
                break
        if fhd & 0x04:  # content checksum
            pos += 4
            if pos > n:
                raise _corrupt("zstd", "truncated frame checksum")
        frames.append((view[start:pos], content_size))
    return frames


def _zstd_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if not view:
        raise _corrupt("zstd", "empty input")
    dctx = _zstd_decompressor()
    out: list[bytes] = []
    total = 0
    try:
        for frame, content_size in _zstd_frames(view):
            room = max_size - total
            if content_size > room:
                raise _too_large(max_size)
            if content_size > 0:
                # Declared size within the cap: one shot; the decoder fails unless the frame
                # produces exactly that many bytes, so the allocation is bounded by the cap.
                chunk = dctx.decompress(frame)
                total += len(chunk)
                out.append(chunk)
                continue
            # Unknown size (Java's streaming zstd-jni) or empty: stream with the cap.
            frame_total = 0
            with dctx.stream_reader(frame, read_across_frames=False) as reader:
                while True:
                    chunk = reader.read(min(max_size - total + 1, _STREAM_CHUNK))
                    if not chunk:
                        break
                    total += len(chunk)
                    frame_total += len(chunk)
                    if total > max_size:
                        raise _too_large(max_size)
                    out.append(chunk)
            if content_size == 0 and frame_total:
                raise _corrupt("zstd", "frame larger than its declared size")
    except zstandard.ZstdError as exc:
        raise _corrupt("zstd", exc) from exc
    if len(out) == 1:
        return out[0]
    return b"".join(out)
