"""Helpers for tests against a real `strom serve`: a TCP proxy whose connections can be cut, a
broker that advertises another address, topic creation and reading a topic back in full
(confluent-kafka), and raw-socket Kafka frames."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import StromProcess

# -- a broker advertising another address (the proxy's) ----------------------------------------


@dataclass
class AdvertisedStrom(StromProcess):
    """A `strom serve` that tells clients to connect to `advertised` (HOST:PORT), not to itself,
    so every client connection after bootstrap goes through a proxy there."""

    advertised: str = ""

    def start(self, timeout: float = 20.0) -> AdvertisedStrom:
        self.config["advertised.listeners"] = f"PLAINTEXT://{self.advertised}"
        super().start(timeout)
        return self


# -- a TCP proxy between a client and the broker -------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port to an upstream address, one thread pair per connection.

    `drop_responses` discards what the broker sends (requests still arrive), so responses are
    lost; `stop()` resets every connection and stops listening; `start()` listens again on the
    same port. Together they cut a client's connections for real, mid-request.
    """

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self.port = port
        self.drop_responses = False
        self.dropped_bytes = 0
        self.accepted = 0
        self._listener: socket.socket | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._accept_thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(listener,))
        self._accept_thread.daemon = True
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and reset every connection, both sides."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(5)
            self._accept_thread = None
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                _reset(s)

    def cut(self, lose_responses_for: float = 0.3, down_for: float = 0.5) -> None:
        """Lose the broker's responses for a while (requests still reach it), reset every
        connection, refuse connections for a while, then serve again."""
        self.drop_responses = True
        time.sleep(lose_responses_for)
        self.stop()
        self.drop_responses = False
        time.sleep(down_for)
        self.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            self.accepted += 1
            with self._lock:
                self._pairs.append((client, upstream))
            for src, dst, is_response in ((client, upstream, False), (upstream, client, True)):
                t = threading.Thread(target=self._pump, args=(src, dst, is_response))
                t.daemon = True
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket, is_response: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if is_response and self.drop_responses:
                    self.dropped_bytes += len(data)
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _reset(src)
            _reset(dst)


def _reset(s: socket.socket) -> None:
    """Close with RST (no graceful FIN), waking any thread blocked on the socket."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()


# -- confluent-kafka conveniences -------------------------------------------------------------------


def create_topic(
    bootstrap: str, name: str, partitions: int = 1, config: dict[str, str] | None = None
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1, config=config or {})], request_timeout=15
    )
    futures[name].result(15)


def consumer(bootstrap: str, **extra: object) -> Consumer:
    """A consumer for assign() only (Strom has no consumer groups yet; group.id is required by
    confluent-kafka but never used without subscribe() and commits)."""
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": "strom-compat-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "socket.timeout.ms": 10000,
        "fetch.wait.max.ms": 100,
    }
    conf.update(extra)
    return Consumer(conf)


def read_all(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0) -> dict[int, list]:
    """Every record of every partition, from the log start to the high watermark now, as
    confluent-kafka Messages in offset order per partition."""
    c = consumer(bootstrap)
    try:
        ends = {}
        for p in range(partitions):
            _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        out: dict[int, list] = {p: [] for p in range(partitions)}
        wanted = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions) if ends[p]]
        if not wanted:
            return out
        c.assign(wanted)
        deadline = time.monotonic() + timeout
        next_offset = {p: 0 for p in range(partitions)}
        while any(next_offset[p] < ends[p] for p in range(partitions)):
            if time.monotonic() > deadline:
                have = {p: len(v) for p, v in out.items()}
                raise AssertionError(f"read {have} of {ends} records of {topic} in {timeout}s")
            for m in c.consume(500, timeout=0.5):
                if m.error():
                    raise KafkaException(m.error())
                if m.offset() < ends[m.partition()]:
                    out[m.partition()].append(m)
                    next_offset[m.partition()] = m.offset() + 1
        return out
    finally:
        c.close()


# -- raw Kafka frames ----------------------------------------------------------------------------


def request_frame(
    api_key: int,
    api_version: int,
    correlation_id: int,
    body: bytes = b"",
    client_id: str | None = "raw",
    flexible: bool = False,
) -> bytes:
    """A size-prefixed request: header v1 (v2 with `flexible`: an empty tagged-field section
    after client_id) and the body bytes given."""
    head = struct.pack(">hhi", api_key, api_version, correlation_id)
    if client_id is None:
        head += struct.pack(">h", -1)
    else:
        cid = client_id.encode()
        head += struct.pack(">h", len(cid)) + cid
    if flexible:
        head += b"\x00"
    payload = head + body
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """n bytes, or fewer when the connection ends first."""
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> bytes | None:
    """One size-prefixed response frame without its prefix; None if the connection ends."""
    prefix = recv_exact(sock, 4)
    if len(prefix) < 4:
        return None
    (n,) = struct.unpack(">i", prefix)
    assert 0 <= n < 64 << 20, f"response size prefix {n}"
    data = recv_exact(sock, n)
    return data if len(data) == n else None


def parse_api_versions_v0(frame: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """An ApiVersions v0 response (header v0): correlation id, error code, {key: (min, max)};
    the frame must hold exactly that."""
    corr, err, count = struct.unpack_from(">ihi", frame, 0)
    pos = 10
    apis = {}
    for _ in range(count):
        key, lo, hi = struct.unpack_from(">hhh", frame, pos)
        apis[key] = (lo, hi)
        pos += 6
    assert pos == len(frame), f"{len(frame) - pos} unexpected bytes after the v0 api list"
    return corr, err, apis


class RawClient:
    """One connection speaking requests built with Strom's own protocol codec (for requests no
    client library lets a test shape exactly, like a Produce with chosen sequence numbers)."""

    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._corr = 0

    def call(self, body: object, version: int) -> object:
        from strom.protocol.frames import decode_response, encode_request

        self._corr += 1
        self.sock.sendall(encode_request(body, version, self._corr, "strom-test-raw"))
        frame = recv_frame(self.sock)
        assert frame is not None, f"connection closed instead of answering {type(body).__name__}"
        corr, response = decode_response(frame, body.API_KEY, version)  # type: ignore[attr-defined]
        assert corr == self._corr
        return response

    def close(self) -> None:
        self.sock.close()
