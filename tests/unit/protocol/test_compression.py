"""Tests for strom.protocol.compression: round trips, interop framings, bombs and garbage."""

from __future__ import annotations

import gzip
import random
import struct
import tracemalloc
import types
import zlib

import cramjam
import lz4.frame
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom.protocol.compression import (
    XERIAL_HEADER,
    XERIAL_MAGIC,
    Compression,
    compress,
    decompress,
)
from strom.protocol.errors import CorruptRecordError, ErrorCode, KafkaError

CODECS = list(Compression)
COMPRESSED = [c for c in Compression if c != Compression.NONE]
MiB = 1024 * 1024


@pytest.fixture
def kafka_codec(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """kafka-python's codec module, its snappy backed by cramjam (python-snappy is absent).

    kafka-python's own xerial framing code then runs unchanged on top of raw snappy.
    """
    import kafka.codec

    shim = types.SimpleNamespace(
        compress=lambda b: bytes(cramjam.snappy.compress_raw(bytes(b))),
        decompress=lambda b: bytes(cramjam.snappy.decompress_raw(bytes(b))),
    )
    monkeypatch.setattr(kafka.codec, "snappy", shim)
    return kafka.codec


def compressible(n: int) -> bytes:
    return (b"strom-record-payload-%d;" * (n // 20 + 1))[:n]


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@given(data=st.binary(max_size=5000))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip(codec: Compression, data: bytes) -> None:
    packed = compress(codec, data)
    assert decompress(codec, packed, max_size=len(data)) == data
    if data:
        with pytest.raises(CorruptRecordError):
            decompress(codec, packed, max_size=len(data) - 1)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_accepts_any_buffer(codec: Compression, kind: type) -> None:
    data = compressible(100_000)
    packed = compress(codec, kind(data))
    assert decompress(codec, kind(packed), max_size=len(data)) == data


@pytest.mark.parametrize("codec", COMPRESSED)
def test_large_round_trip(codec: Compression) -> None:
    data = compressible(3 * MiB + 17)
    assert decompress(codec, compress(codec, data), 4 * MiB) == data


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.LZ4, Compression.ZSTD])
def test_levels(codec: Compression) -> None:
    data = compressible(50_000)
    assert decompress(codec, compress(codec, data, level=1), MiB) == data


def test_unknown_codec() -> None:
    for codec in (5, 6, 7):
        with pytest.raises(KafkaError) as err:
            decompress(codec, b"abc", 100)
        assert err.value.code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
        with pytest.raises(KafkaError) as err:
            compress(codec, b"abc")
        assert err.value.code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


# --- snappy framings --------------------------------------------------------------------------


def test_snappy_compress_writes_xerial_blocks() -> None:
    data = compressible(100_000)  # 4 blocks of 32 KiB
    packed = compress(Compression.SNAPPY, data)
    assert packed[:8] == XERIAL_MAGIC
    assert packed[:16] == XERIAL_HEADER == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    pos, blocks, out = 16, 0, b""
    while pos < len(packed):
        (n,) = struct.unpack_from(">i", packed, pos)
        out += bytes(cramjam.snappy.decompress_raw(packed[pos + 4 : pos + 4 + n]))
        pos += 4 + n
        blocks += 1
    assert blocks == 4 and out == data


def test_snappy_raw_decompresses() -> None:
    data = compressible(70_000)
    raw = bytes(cramjam.snappy.compress_raw(data))
    assert raw[:8] != XERIAL_MAGIC
    assert decompress(Compression.SNAPPY, raw, len(data)) == data
    with pytest.raises(CorruptRecordError):
        decompress(Compression.SNAPPY, raw, len(data) - 1)


def test_snappy_xerial_from_kafka_python(kafka_codec: types.ModuleType) -> None:
    data = compressible(200_000)
    framed = kafka_codec.snappy_encode(data)  # xerial, 32 KiB blocks
    assert framed[:8] == XERIAL_MAGIC
    assert decompress(Compression.SNAPPY, framed, len(data)) == data
    small = kafka_codec.snappy_encode(data, xerial_blocksize=1000)
    assert decompress(Compression.SNAPPY, small, len(data)) == data
    raw = kafka_codec.snappy_encode(data, xerial_compatible=False)
    assert decompress(Compression.SNAPPY, raw, len(data)) == data


def test_snappy_ours_read_by_kafka_python(kafka_codec: types.ModuleType) -> None:
    data = compressible(200_000)
    assert kafka_codec.snappy_decode(compress(Compression.SNAPPY, data)) == data


@pytest.mark.parametrize(
    "framed",
    [
        XERIAL_MAGIC + b"\x00\x00",  # truncated header
        XERIAL_HEADER + b"\x00\x00",  # truncated block length
        XERIAL_HEADER + struct.pack(">i", 100) + b"x",  # block longer than the data
        XERIAL_HEADER + struct.pack(">i", -1) + b"x",
        XERIAL_HEADER + struct.pack(">i", 0),
        XERIAL_HEADER + struct.pack(">i", 3) + b"\xff\xff\xff",  # garbage block
    ],
)
def test_snappy_bad_xerial(framed: bytes) -> None:
    with pytest.raises(CorruptRecordError):
        decompress(Compression.SNAPPY, framed, MiB)


def test_snappy_xerial_block_sizes_count_against_cap() -> None:
    block = bytes(cramjam.snappy.compress_raw(b"\0" * 60_000))
    framed = XERIAL_HEADER + (struct.pack(">i", len(block)) + block) * 3
    assert decompress(Compression.SNAPPY, framed, 180_000) == b"\0" * 180_000
    with pytest.raises(CorruptRecordError):
        decompress(Compression.SNAPPY, framed, 179_999)


# --- other framings ---------------------------------------------------------------------------


def test_gzip_is_gzip_and_members_concatenate() -> None:
    a, b = compressible(5000), b"second member"
    packed = compress(Compression.GZIP, a)
    assert packed[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed) == a
    both = packed + gzip.compress(b)
    assert decompress(Compression.GZIP, both, len(a) + len(b)) == a + b
    with pytest.raises(CorruptRecordError):
        decompress(Compression.GZIP, both, len(a) + len(b) - 1)
    with pytest.raises(CorruptRecordError):
        decompress(Compression.GZIP, packed + b"garbage!", MiB)


def test_lz4_frame_has_independent_blocks() -> None:
    data = compressible(300_000)
    packed = compress(Compression.LZ4, data)
    assert packed[:4] == b"\x04\x22\x4d\x18"
    flg = packed[4]
    assert flg >> 6 == 1  # version 01
    assert flg & 0x20  # block independence: Kafka's Java reader needs it
    assert lz4.frame.decompress(packed) == data


def test_lz4_from_library_defaults_and_linked_blocks() -> None:
    data = compressible(300_000)
    for packed in (
        lz4.frame.compress(data),
        lz4.frame.compress(data, block_linked=True, content_checksum=True),
        lz4.frame.compress(data[:1000]) + lz4.frame.compress(data[1000:]),  # two frames
    ):
        assert decompress(Compression.LZ4, packed, len(data)) == data
        with pytest.raises(CorruptRecordError):
            decompress(Compression.LZ4, packed, len(data) - 1)


def test_zstd_streamed_frames_without_content_size() -> None:
    """zstd-jni (the Java client) streams: its frames carry no content size."""
    data = compressible(2 * MiB + 5)
    cobj = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    streamed = cobj.compress(data) + cobj.flush()
    assert zstandard.frame_content_size(streamed) == -1
    assert decompress(Compression.ZSTD, streamed, len(data)) == data
    with pytest.raises(CorruptRecordError):
        decompress(Compression.ZSTD, streamed, len(data) - 1)


def test_zstd_multiple_frames_and_skippable() -> None:
    a, b = compressible(10_000), compressible(7000)[::-1]
    skippable = struct.pack("<II", 0x184D2A50, 3) + b"abc"
    packed = compress(Compression.ZSTD, a) + skippable + compress(Compression.ZSTD, b)
    assert decompress(Compression.ZSTD, packed, len(a) + len(b)) == a + b
    with pytest.raises(CorruptRecordError):
        decompress(Compression.ZSTD, packed, len(a) + len(b) - 1)


@pytest.mark.parametrize("codec", COMPRESSED)
def test_truncated_input_raises(codec: Compression) -> None:
    data = compressible(200_000)
    packed = compress(codec, data)
    for cut in (1, 5, len(packed) // 2, len(packed) - 1):
        with pytest.raises(CorruptRecordError):
            decompress(codec, packed[:cut], MiB)
    with pytest.raises(CorruptRecordError):
        decompress(codec, b"", MiB)


def test_truncated_zstd_streamed_frame_raises() -> None:
    # The streaming decoder returns short output on a cut frame without complaint; the frame
    # walk must notice. Barely compressible data makes the cut land inside the last block.
    data = random.Random(7).randbytes(300_000) + compressible(300_000)
    cobj = zstandard.ZstdCompressor().compressobj()
    streamed = cobj.compress(data) + cobj.flush()
    for cut in (len(streamed) - 1, len(streamed) - 3, len(streamed) - 500, len(streamed) // 2):
        with pytest.raises(CorruptRecordError):
            decompress(Compression.ZSTD, streamed[:cut], 2 * MiB)


# --- decompression bombs ----------------------------------------------------------------------


def _bombs() -> list[tuple[Compression, bytes]]:
    zeros = b"\0" * (64 * MiB)
    cobj = zstandard.ZstdCompressor().compressobj()
    return [
        (Compression.GZIP, zlib.compress(zeros, 9, 31)),
        (Compression.ZSTD, zstandard.ZstdCompressor().compress(zeros)),  # declares its size
        (Compression.ZSTD, cobj.compress(zeros) + cobj.flush()),  # streamed, no size
        (Compression.LZ4, lz4.frame.compress(zeros)),
        (Compression.LZ4, lz4.frame.compress(zeros, store_size=False)),
        (Compression.SNAPPY, compress(Compression.SNAPPY, zeros)),
        (Compression.SNAPPY, bytes(cramjam.snappy.compress_raw(zeros))),
    ]


@pytest.fixture(scope="module")
def bombs() -> list[tuple[Compression, bytes]]:
    return _bombs()


def test_bombs_stop_at_cap_without_inflating(bombs: list[tuple[Compression, bytes]]) -> None:
    for codec, bomb in bombs:
        assert len(bomb) < 4 * MiB
        tracemalloc.start()
        try:
            with pytest.raises(CorruptRecordError, match="exceeds the limit"):
                decompress(codec, bomb, MiB)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * MiB, (codec, peak)


def test_snappy_hostile_declared_length() -> None:
    # A raw snappy stream declaring 4 GiB output in 6 bytes must not allocate 4 GiB.
    hostile = b"\xff\xff\xff\xff\x0f\x00"
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecordError):
            decompress(Compression.SNAPPY, hostile, 64 * MiB)
        with pytest.raises(CorruptRecordError):
            decompress(Compression.SNAPPY, XERIAL_HEADER + struct.pack(">i", 6) + hostile, 64 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MiB


def test_zstd_hostile_declared_content_size() -> None:
    # A frame header declaring 1 TiB (then one empty last block): rejected from the header.
    hostile = struct.pack("<IB", 0xFD2FB528, 0xE0) + struct.pack("<Q", 1 << 40) + b"\x01\x00\x00"
    with pytest.raises(CorruptRecordError):
        decompress(Compression.ZSTD, hostile, 64 * MiB)


# --- garbage never escapes as another exception -----------------------------------------------


@pytest.mark.parametrize("codec", COMPRESSED)
@given(garbage=st.binary(max_size=300))
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_garbage_raises_only_corrupt(codec: Compression, garbage: bytes) -> None:
    try:
        out = decompress(codec, garbage, 100_000)
    except CorruptRecordError:
        return
    assert len(out) <= 100_000


@pytest.mark.parametrize("codec", COMPRESSED)
@given(data=st.data())
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mutated_streams_raise_only_corrupt(codec: Compression, data: st.DataObject) -> None:
    packed = bytearray(compress(codec, compressible(3000) + bytes(range(256))))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(packed) - 1))
        packed[i] = data.draw(st.integers(0, 255))
    try:
        out = decompress(codec, bytes(packed), 10_000)
    except CorruptRecordError:
        return
    assert len(out) <= 10_000
