"""A minimal blocking Kafka client over Strom's own codec, for tests that need exact requests."""

from __future__ import annotations

import socket
import struct

from strom.protocol.frames import decode_response, encode_request


class RawClient:
    """One connection; send a request message at a version, get the response message back."""

    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def send(self, request: object, version: int) -> None:
        self.correlation_id += 1
        self.sock.sendall(encode_request(request, version, self.correlation_id, "raw-test"))

    def receive(self, api_key: int, version: int) -> object:
        (size,) = struct.unpack(">i", self._read_exact(4))
        correlation_id, response = decode_response(self._read_exact(size), api_key, version)
        assert correlation_id == self.correlation_id
        return response

    def call(self, request: object, version: int) -> object:
        self.send(request, version)
        return self.receive(request.API_KEY, version)  # type: ignore[attr-defined]
