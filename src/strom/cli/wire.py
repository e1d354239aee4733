"""A blocking Kafka protocol connection for what no client library offers the CLI (the
transaction admin APIs): requests and responses through Strom's sans-IO codec, so it works
against any Kafka broker, not only Strom."""

from __future__ import annotations

import socket

from strom.protocol.frames import FrameBuffer, decode_response, encode_request

CLIENT_ID = "strom-cli"


class WireError(Exception):
    """The connection failed or closed before the answer came."""


class Connection:
    """One connection to one broker; `call` sends a request and waits for its answer."""

    def __init__(self, address: str, timeout: float) -> None:
        host, _, port = address.rpartition(":")
        try:
            self.sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)
        except (OSError, ValueError) as e:
            raise WireError(f"cannot connect to {address}: {e}") from None
        self.address = address
        self._frames = FrameBuffer()
        self._correlation = 0

    def call(self, body: object, version: int) -> object:
        self._correlation += 1
        try:
            self.sock.sendall(encode_request(body, version, self._correlation, CLIENT_ID))
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    raise WireError(f"{self.address} closed the connection")
                frames = self._frames.feed(data)
                if frames:
                    break
        except OSError as e:
            raise WireError(f"{self.address}: {e}") from None
        correlation, response = decode_response(frames[0], body.API_KEY, version)  # type: ignore[attr-defined]
        if correlation != self._correlation:
            raise WireError(
                f"{self.address} answered request {correlation}, not {self._correlation}"
            )
        return response

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
