"""Framing and headers: size prefixes, header versions, whole-request and whole-response codecs."""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom.protocol import frames, messages
from strom.protocol.errors import ErrorCode, KafkaError, ProtocolError, UnsupportedVersionError
from strom.protocol.frames import (
    FrameBuffer,
    FrameTooLarge,
    UnsupportedRequest,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    frame_size,
    request_header_version,
    response_header_version,
)
from strom.protocol.primitives import SPLICE_MIN

from .strategies import message

PRODUCE, FETCH, METADATA, CONTROLLED_SHUTDOWN, API_VERSIONS = 0, 1, 3, 7, 18
ProduceRequest = messages.REQUESTS[PRODUCE]
FetchResponse = messages.RESPONSES[FETCH]
ApiVersionsRequest = messages.REQUESTS[API_VERSIONS]
ApiVersionsResponse = messages.RESPONSES[API_VERSIONS]

ALL_VERSIONS = [
    (key, version)
    for key, cls in messages.REQUESTS.items()
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1)
]
RESPONSE_VERSIONS = [
    (key, version)
    for key, cls in messages.RESPONSES.items()
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1)
]
LOOSE = settings(deadline=None, suppress_health_check=list(HealthCheck))


def _join(buffers: list) -> bytes:
    return b"".join(bytes(b) for b in buffers)


# --- header version rules ---------------------------------------------------------------------


def test_request_header_versions() -> None:
    seen = set()
    for key, version in ALL_VERSIONS:
        hv = request_header_version(key, version)
        seen.add(hv)
        if (key, version) == (CONTROLLED_SHUTDOWN, 0):
            assert hv == 0
        elif version >= messages.REQUESTS[key].FLEXIBLE_MIN:
            assert hv == 2
        else:
            assert hv == 1
    assert seen == {0, 1, 2}
    assert request_header_version(CONTROLLED_SHUTDOWN, 1) == 1
    assert request_header_version(CONTROLLED_SHUTDOWN, 3) == 2
    assert [request_header_version(API_VERSIONS, v) for v in range(5)] == [1, 1, 1, 2, 2]
    # never-flexible APIs stay on header v1 at every version
    assert {request_header_version(17, v) for v in (0, 1)} == {1}
    assert request_header_version(PRODUCE, 8) == 1
    assert request_header_version(PRODUCE, 9) == 2


def test_response_header_versions() -> None:
    for key, version in RESPONSE_VERSIONS:
        hv = response_header_version(key, version)
        if key == API_VERSIONS:
            assert hv == 0
        else:
            assert hv == (1 if version >= messages.RESPONSES[key].FLEXIBLE_MIN else 0)
    # ApiVersions: header v0 even for its flexible versions, and for versions it does not know
    assert [response_header_version(API_VERSIONS, v) for v in (0, 3, 4, 5, 200)] == [0] * 5
    assert response_header_version(FETCH, 11) == 0
    assert response_header_version(FETCH, 12) == 1


def test_controlled_shutdown_v0_has_no_client_id() -> None:
    body = messages.REQUESTS[CONTROLLED_SHUTDOWN](broker_id=7)
    frame = encode_request(body, 0, correlation_id=5, client_id="ignored")
    assert frame == bytes.fromhex("0000000c 0007 0000 00000005 00000007")
    header, decoded = decode_request(frame[4:])
    assert header.header_version == 0
    assert header.client_id is None
    assert (header.api_key, header.api_version, header.correlation_id) == (7, 0, 5)
    assert decoded == body
    # from v1 the client id is there
    frame = encode_request(body, 1, correlation_id=5, client_id="c")
    assert frame[12:15] == b"\x00\x01c"
    assert decode_request(frame[4:])[0].client_id == "c"


def test_request_header_v2_keeps_a_non_compact_client_id() -> None:
    body = ApiVersionsRequest(client_software_name="sw", client_software_version="1.0")
    frame = encode_request(body, 3, correlation_id=1, client_id="abc")
    # int16 length 3, "abc", then an empty tag section, then the body
    assert frame[4:] == bytes.fromhex("0012 0003 00000001 0003") + b"abc" + b"\x00" + (
        b"\x03sw\x041.0\x00"
    )
    header, decoded = decode_request(frame[4:])
    assert header.header_version == 2
    assert header.client_id == "abc"
    assert decoded == body


def test_request_header_keeps_unknown_tags() -> None:
    raw = bytes.fromhex("0012 0003 00000009 ffff") + b"\x01" + b"\x05\x02hi" + b"\x01\x01\x00"
    header, body = decode_request(raw)
    assert header.client_id is None
    assert header.unknown_tags == [(5, b"hi")]
    assert body == ApiVersionsRequest()


@pytest.mark.parametrize("version", [5, 6, 100, 32767])
def test_api_versions_above_max_still_parses_header_v2(version: int) -> None:
    """An ApiVersions request newer than ours: its header is read (as v2) so the broker can
    answer UNSUPPORTED_VERSION in v0 to the right correlation id."""
    raw = (
        struct.pack(">hhi", API_VERSIONS, version, 4242)
        + b"\x00\x06client"
        + b"\x00"  # header tag section
        + b"\x07future\x021\x00whatever-comes-next"
    )
    with pytest.raises(UnsupportedRequest) as info:
        decode_request(raw)
    err = info.value
    assert isinstance(err, UnsupportedVersionError)
    assert err.code == ErrorCode.UNSUPPORTED_VERSION
    assert err.header.api_key == API_VERSIONS
    assert err.header.api_version == version
    assert err.header.correlation_id == 4242
    assert err.header.client_id == "client"
    assert err.header.header_version == 2
    # the answer: a v0 body behind a v0 header, whatever version was asked for
    answer = ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION,
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=4)],
    )
    out = _join(encode_response(answer, 0, err.header.correlation_id))
    assert out == bytes.fromhex("00000010 00001092 0023 00000001 0012 0000 0004")


def test_unknown_api_key_and_version_carry_the_header() -> None:
    raw = struct.pack(">hhi", 999, 0, 17) + b"\x00\x01x" + b"body"
    with pytest.raises(UnsupportedRequest) as info:
        decode_request(raw)
    assert (info.value.header.api_key, info.value.header.correlation_id) == (999, 17)
    assert info.value.header.client_id == "x"

    raw = struct.pack(">hhi", METADATA, 99, 18) + b"\x00\x01y" + b"\x00"
    with pytest.raises(UnsupportedRequest) as info:
        decode_request(raw)
    assert (info.value.header.api_version, info.value.header.correlation_id) == (99, 18)

    raw = struct.pack(">hhi", METADATA, -1, 19) + b"\xff\xff"
    with pytest.raises(UnsupportedRequest):
        decode_request(raw)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\x03", b"\x00\x03\x00\x0c\x00\x00\x00", b"\x00\x03\x00\x01\x00\x00\x00\x01\x00"],
    ids=["empty", "key-only", "no-correlation", "half-client-id"],
)
def test_truncated_header_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_request(raw)


# --- size prefixes and FrameBuffer ------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff", b"\x80\x00\x00\x00", b"\x06\x40\x00\x01"],
    ids=["2^31-1", "minus-1", "-2^31", "max+1"],
)
def test_oversized_or_negative_frames_are_refused_before_allocation(prefix: bytes) -> None:
    with pytest.raises(FrameTooLarge) as info:
        frame_size(prefix)
    assert isinstance(info.value, ProtocolError)
    assert isinstance(info.value, KafkaError)
    buf = FrameBuffer()
    tracemalloc.start()
    try:
        with pytest.raises(FrameTooLarge):
            buf.feed(prefix + b"a few bytes of what claims to be a huge frame")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_frame_size_limits() -> None:
    assert frame_size(b"\x00\x00\x00\x00") == 0
    assert frame_size(struct.pack(">i", frames.DEFAULT_MAX_FRAME)) == frames.DEFAULT_MAX_FRAME
    assert frame_size(b"\x00\x00\x01\x00", max_size=256) == 256
    with pytest.raises(FrameTooLarge):
        frame_size(b"\x00\x00\x01\x01", max_size=256)
    with pytest.raises(FrameTooLarge):
        frame_size(struct.pack(">i", frames.DEFAULT_MAX_FRAME + 1))


def test_frame_buffer_holds_only_what_arrived() -> None:
    """A prefix claiming the maximum frame costs only the bytes received, and the prefix may
    itself arrive split."""
    buf = FrameBuffer()
    tracemalloc.start()
    try:
        assert buf.feed(b"\x06\x40") == []
        assert buf.feed(b"\x00\x00") == []  # 100 MiB claimed, allowed
        assert buf.feed(b"x" * 1000) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert buf.pending == 1004
    assert peak < 64 * 1024
    small = FrameBuffer(max_size=16)
    assert small.feed(b"\x00\x00") == []
    with pytest.raises(FrameTooLarge):
        small.feed(b"\x00\x11")


@LOOSE
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=12),
    cuts=st.lists(st.integers(0, 4000), max_size=30),
)
def test_frame_buffer_any_split_points(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(struct.pack(">i", len(p)) + p for p in payloads)
    points = sorted({c for c in cuts if c <= len(stream)} | {0, len(stream)})
    buf = FrameBuffer(max_size=300)
    out: list[bytes] = []
    for a, b in zip(points, points[1:]):
        got = buf.feed(memoryview(stream)[a:b])
        assert all(isinstance(f, memoryview) for f in got)
        out.extend(bytes(f) for f in got)
        # what is held is exactly what arrived and was not yet returned as frames
        assert buf.pending == b - sum(4 + len(p) for p in out)
    assert out == payloads
    assert buf.pending == 0


@LOOSE
@given(payloads=st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=5))
def test_frame_buffer_byte_by_byte(payloads: list[bytes]) -> None:
    stream = b"".join(struct.pack(">i", len(p)) + p for p in payloads)
    buf = FrameBuffer()
    out = []
    for i in range(len(stream)):
        out.extend(bytes(f) for f in buf.feed(stream[i : i + 1]))
    assert out == payloads


def test_frame_buffer_returned_frames_survive_more_feeding() -> None:
    buf = FrameBuffer()
    first = buf.feed(b"\x00\x00\x00\x03abc\x00\x00")
    assert [bytes(f) for f in first] == [b"abc"]
    second = buf.feed(b"\x00\x02de" + b"\x00\x00\x00\x00")
    assert [bytes(f) for f in second] == [b"de", b""]
    assert bytes(first[0]) == b"abc"  # not overwritten by the buffer compacting


# --- whole requests and responses -------------------------------------------------------------


@settings(LOOSE, max_examples=300)
@given(data=st.data(), correlation_id=st.integers(-(2**31), 2**31 - 1))
def test_request_round_trip_every_api(data: st.DataObject, correlation_id: int) -> None:
    key, version = data.draw(st.sampled_from(ALL_VERSIONS))
    cls = messages.REQUESTS[key]
    body = data.draw(message(cls, version, version >= cls.FLEXIBLE_MIN))
    client_id = data.draw(st.none() | st.text(max_size=10))
    frame = encode_request(body, version, correlation_id, client_id)
    assert struct.unpack_from(">i", frame)[0] == len(frame) - 4
    header, decoded = decode_request(frame[4:])
    assert (header.api_key, header.api_version, header.correlation_id) == (
        key,
        version,
        correlation_id,
    )
    assert header.client_id == (None if (key, version) == (CONTROLLED_SHUTDOWN, 0) else client_id)
    assert decoded == body
    assert frame.endswith(body.encode(version))


@settings(LOOSE, max_examples=300)
@given(data=st.data(), correlation_id=st.integers(-(2**31), 2**31 - 1))
def test_response_buffers_and_round_trip_every_api(
    data: st.DataObject, correlation_id: int
) -> None:
    key, version = data.draw(st.sampled_from(RESPONSE_VERSIONS))
    cls = messages.RESPONSES[key]
    body = data.draw(message(cls, version, version >= cls.FLEXIBLE_MIN))
    frame = _join(encode_response(body, version, correlation_id))
    header = struct.pack(">i", correlation_id)
    if response_header_version(key, version) == 1:
        header += b"\x00"
    assert frame == struct.pack(">i", len(header) + len(body.encode(version))) + header + (
        body.encode(version)
    )
    assert decode_response(frame[4:], key, version) == (correlation_id, body)


def _fetch_response(records: list) -> object:
    partitions = [
        FetchResponse.PartitionData(partition_index=i, high_watermark=10, records=r)
        for i, r in enumerate(records)
    ]
    topic = FetchResponse.FetchableTopicResponse(topic="t", topic_id=b"\x01" * 16)
    topic.partitions = partitions
    return FetchResponse(responses=[topic])


@pytest.mark.parametrize("version", [4, 11, 12, 16])
def test_large_record_data_is_passed_through_not_copied(version: int) -> None:
    big = bytes(range(256)) * 40  # 10240 bytes
    view = memoryview(bytearray(b"v" * 8192))
    exact = b"e" * SPLICE_MIN
    small = b"s" * (SPLICE_MIN - 1)
    body = _fetch_response([big, view, exact, small, None])
    buffers = encode_response(body, version, correlation_id=3)
    assert any(b is big for b in buffers)
    assert any(b is view for b in buffers)
    assert any(b is exact for b in buffers)
    assert not any(b is small for b in buffers)  # below SPLICE_MIN: copied into the header run
    # the joined buffers are the plain encoding behind the size prefix and header
    joined = _join(buffers)
    plain = body.encode(version)
    assert joined.endswith(plain)
    assert struct.unpack_from(">i", joined)[0] == len(joined) - 4
    assert len(joined) == 4 + 4 + (version >= 12) + len(plain)
    corr, decoded = decode_response(joined[4:], FETCH, version)
    assert corr == 3
    got = [p.records for p in decoded.responses[0].partitions]
    assert [None if g is None else bytes(g) for g in got] == [big, bytes(view), exact, small, None]
    # the copies in memory are few: everything but the spliced record data is in few buffers
    assert len(buffers) <= 7


def test_request_records_are_a_view_of_the_frame() -> None:
    records = b"r" * 10000
    body = ProduceRequest(
        acks=-1,
        timeout_ms=1000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="t", partition_data=[ProduceRequest.PartitionProduceData(0, records)]
            )
        ],
    )
    for version in (3, 8, 9, 11):
        frame = encode_request(body, version, 1)[4:]
        _, decoded = decode_request(frame)
        got = decoded.topic_data[0].partition_data[0].records
        assert isinstance(got, memoryview)
        assert got.obj is frame
        assert got == records


def test_decode_response_errors() -> None:
    with pytest.raises(UnsupportedVersionError):
        decode_response(b"\x00\x00\x00\x01", 999, 0)
    with pytest.raises(ProtocolError):
        decode_response(b"\x00\x00", METADATA, 0)
    with pytest.raises(ProtocolError):
        decode_response(b"\x00\x00\x00\x01", METADATA, 12)  # no tag section
    with pytest.raises(UnsupportedVersionError):
        decode_response(b"\x00\x00\x00\x01\x00", METADATA, 99)
