"""Size-prefixed frames, request and response headers (v0/v1/v2), and whole-message codecs."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from strom.protocol import messages
from strom.protocol.errors import ErrorCode, ProtocolError, UnsupportedVersionError
from strom.protocol.primitives import (
    DECODE_ERRORS,
    as_view,
    read_nullable_string,
    skip_tags,
    splice,
    write_nullable_string,
)

API_VERSIONS_KEY = 18
CONTROLLED_SHUTDOWN_KEY = 7
DEFAULT_MAX_FRAME = 104857600  # socket.request.max.bytes

_SIZE = struct.Struct(">i")
_REQ_HEAD = struct.Struct(">hhi")
_CORR = struct.Struct(">i")


@dataclass
class FileRange:
    """Bytes of a file to send as they are (sendfile), as a fetch response's record data: the
    encoder hands it on as one of the response's buffers, the server sends it; `release` is
    called once it is sent (or dropped)."""

    fd: int
    offset: int
    length: int
    release: Callable[[], None] | None = None

    def __len__(self) -> int:
        return self.length


class FrameTooLarge(ProtocolError):
    """A size prefix beyond the configured maximum (or negative): the connection must close."""

    code = ErrorCode.INVALID_REQUEST


def frame_size(prefix: bytes | bytearray | memoryview, max_size: int = DEFAULT_MAX_FRAME) -> int:
    """Validate a 4-byte size prefix before anything is allocated for the frame."""
    (n,) = _SIZE.unpack_from(prefix, 0)
    if n < 0 or n > max_size:
        raise FrameTooLarge(f"frame of {n} bytes is outside 0..{max_size}")
    return n


class FrameBuffer:
    """Cuts a byte stream into frames; memory grows only with bytes received, never by a claim."""

    def __init__(self, max_size: int = DEFAULT_MAX_FRAME) -> None:
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> list[memoryview]:
        """Add received bytes; return every frame (without its size prefix) now complete."""
        self._buf += data
        frames = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            n = frame_size(memoryview(buf)[pos : pos + 4], self.max_size)
            if len(buf) - pos - 4 < n:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        if pos:
            del buf[:pos]
        return [memoryview(f) for f in frames]

    @property
    def pending(self) -> int:
        """Bytes held for a frame not yet complete."""
        return len(self._buf)


def request_header_version(api_key: int, api_version: int) -> int:
    """Header v2 for flexible versions, v1 otherwise (v0 only for ControlledShutdown v0)."""
    cls = messages.REQUESTS.get(api_key)
    if cls is None:
        return 1
    if api_key == CONTROLLED_SHUTDOWN_KEY and api_version == 0:
        return 0
    return 2 if api_version >= cls.FLEXIBLE_MIN else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """Header v1 for flexible versions, v0 otherwise; ApiVersions responses always use v0."""
    cls = messages.RESPONSES.get(api_key)
    if cls is None or api_key == API_VERSIONS_KEY:
        return 0
    return 1 if api_version >= cls.FLEXIBLE_MIN else 0


@dataclass(slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None = None
    header_version: int = 1
    unknown_tags: list[tuple[int, bytes]] | None = None


class UnsupportedRequest(UnsupportedVersionError):
    """An API key or version this broker does not know, with the header parsed so far."""

    def __init__(self, message: str, header: RequestHeader) -> None:
        super().__init__(message)
        self.header = header


def parse_request_header(frame: bytes | bytearray | memoryview) -> tuple[RequestHeader, int]:
    """Parse a request header; return it and the offset where the body starts."""
    mv = as_view(frame)
    try:
        api_key, api_version, correlation_id = _REQ_HEAD.unpack_from(mv, 0)
        hv = request_header_version(api_key, api_version)
        pos = 8
        client_id = None
        unknown = None
        if hv >= 1:
            client_id, pos = read_nullable_string(mv, pos)
        if hv >= 2:
            unknown, pos = skip_tags(mv, pos)
    except DECODE_ERRORS as e:
        raise ProtocolError(f"malformed request header: {e}") from None
    return RequestHeader(api_key, api_version, correlation_id, client_id, hv, unknown), pos


def decode_request(frame: bytes | bytearray | memoryview) -> tuple[RequestHeader, object]:
    """Decode a whole request frame (without size prefix) into its header and body message.

    Raises UnsupportedRequest (carrying the header) for unknown keys and versions, and
    ProtocolError for malformed bytes.
    """
    mv = as_view(frame)
    header, pos = parse_request_header(mv)
    cls = messages.REQUESTS.get(header.api_key)
    if cls is None:
        raise UnsupportedRequest(f"unknown api key {header.api_key}", header)
    if not cls.MIN_VERSION <= header.api_version <= cls.MAX_VERSION:
        raise UnsupportedRequest(
            f"{cls.__name__} v{header.api_version} is not supported "
            f"(v{cls.MIN_VERSION}-v{cls.MAX_VERSION})",
            header,
        )
    return header, cls.decode(mv[pos:], header.api_version)


def encode_request(
    body: object, version: int, correlation_id: int, client_id: str | None = "strom"
) -> bytes:
    """A whole request frame, size prefix included (for clients and broker-to-broker calls)."""
    api_key = body.API_KEY  # type: ignore[attr-defined]
    hv = request_header_version(api_key, version)
    b = bytearray(4)
    b += _REQ_HEAD.pack(api_key, version, correlation_id)
    if hv >= 1:
        write_nullable_string(b, client_id)
    if hv >= 2:
        b.append(0)
    body.encode_into(version, b, None)  # type: ignore[attr-defined]
    _SIZE.pack_into(b, 0, len(b) - 4)
    return bytes(b)


def encode_response(
    body: object, version: int, correlation_id: int
) -> list[bytes | bytearray | memoryview]:
    """A whole response frame as buffers (size prefix, header, body; record data not copied)."""
    api_key = body.API_KEY  # type: ignore[attr-defined]
    b = bytearray(4)
    b += _CORR.pack(correlation_id)
    if response_header_version(api_key, version) >= 1:
        b.append(0)
    sp: list = []
    body.encode_into(version, b, sp)  # type: ignore[attr-defined]
    total = len(b) - 4 + sum(len(data) for _, data in sp)
    _SIZE.pack_into(b, 0, total)
    return splice(b, sp)


def decode_response(
    frame: bytes | bytearray | memoryview, api_key: int, version: int
) -> tuple[int, object]:
    """Decode a response frame (without size prefix): its correlation id and body message."""
    mv = as_view(frame)
    cls = messages.RESPONSES.get(api_key)
    if cls is None:
        raise UnsupportedVersionError(f"unknown api key {api_key}")
    try:
        (correlation_id,) = _CORR.unpack_from(mv, 0)
        pos = 4
        if response_header_version(api_key, version) >= 1:
            _, pos = skip_tags(mv, pos)
    except DECODE_ERRORS as e:
        raise ProtocolError(f"malformed response header: {e}") from None
    return correlation_id, cls.decode(mv[pos:], version)
