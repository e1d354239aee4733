"""Hostile and broken bytes at the broker's socket. After each: the offending connection is
closed (or answered with an error), the broker is alive with bounded memory, still serves a
normal client, says in its log what happened, and no traceback text ever reaches a client."""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
import uuid
import zlib

import google_crc32c
import pytest
from confluent_kafka import Producer

from strom.protocol import messages
from strom.protocol.frames import encode_request
from strom.protocol.messages.fetch import FetchRequest
from strom.protocol.messages.list_offsets import ListOffsetsRequest
from strom.protocol.messages.metadata import MetadataRequest
from strom.protocol.messages.produce import ProduceRequest
from strom.protocol.records import build_batch
from tests.compat.util import (
    RawClient,
    create_topic,
    parse_api_versions_v0,
    read_all,
    recv_frame,
    request_frame,
)
from tests.conftest import StromProcess

MAX_REQUEST = 1 << 20
SMALL_MAX = {"socket.request.max.bytes": str(MAX_REQUEST)}
RSS_LIMIT = 300 << 20
UNSUPPORTED_VERSION = 35
API_VERSIONS = 18


# -- helpers ----------------------------------------------------------------------------------------


def connect(strom: StromProcess, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", strom.port), timeout=timeout)


def drain(
    sock: socket.socket, timeout: float = 5.0, until_answer: bool = False
) -> tuple[bytes, bool]:
    """Everything the broker sends until it closes the connection or `timeout` passes (or,
    with `until_answer`, one whole response frame arrives): (bytes received, whether closed)."""
    got = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(got), True
            got += chunk
            if until_answer and len(got) >= 4 and len(got) >= 4 + struct.unpack_from(">i", got)[0]:
                return bytes(got), False
    except ConnectionResetError:
        return bytes(got), True
    except TimeoutError:
        pass
    return bytes(got), False


def assert_no_traceback(received: bytes) -> None:
    for marker in (b"Traceback", b'File "', b"strom/"):
        assert marker not in received, f"{marker!r} reached a client: {received[:200]!r}"


def assert_healthy(strom: StromProcess) -> None:
    """The process is alive, its memory bounded, and a confluent-kafka client can still produce
    and read back; nothing took the unexpected-error path (a logged traceback)."""
    assert strom.proc is not None and strom.proc.poll() is None, "broker died"
    rss = strom.rss_bytes()
    assert rss < RSS_LIMIT, f"broker RSS {rss >> 20} MiB"
    topic = f"healthy-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": strom.bootstrap, "socket.timeout.ms": 5000})
    for i in range(10):
        producer.produce(topic, key=b"%d" % i, value=b"ok-%d" % i)
    assert producer.flush(15) == 0, "a normal client could not produce"
    got = read_all(strom.bootstrap, topic, 1, timeout=15)[0]
    assert [m.value() for m in got] == [b"ok-%d" % i for i in range(10)]
    assert "Traceback" not in strom.log(), strom.log()[-3000:]


def wait_for_log(strom: StromProcess, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in strom.log():
        assert time.monotonic() < deadline, (
            f"{text!r} not in the broker log:\n{strom.log()[-3000:]}"
        )
        time.sleep(0.05)


def send_and_expect_close(strom: StromProcess, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh connection; the broker must close it (answering nothing)."""
    with connect(strom) as s:
        s.sendall(data)
        received, closed = drain(s, timeout)
    assert_no_traceback(received)
    assert closed, f"connection still open {timeout}s after {data[:40]!r}"
    assert received == b"", f"unexpected answer {received[:100]!r}"
    return received


# -- the cases ----------------------------------------------------------------------------------------


def test_random_bytes(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory(config=SMALL_MAX)
    rnd = random.Random(20240611)
    # a blob of noise: its first four bytes are a size prefix way over the limit (or negative)
    blob = bytes(rnd.getrandbits(8) for _ in range(65536))
    with connect(strom) as s:
        with contextlib.suppress(OSError):  # the broker may reset before all is sent
            s.sendall(blob)
        received, closed = drain(s)
    assert closed and received == b""
    assert_no_traceback(received)

    # well-framed noise: a valid size prefix around random header and body bytes
    closed_count = 0
    for i in range(150):
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 300)))
        if i % 3 == 0 and len(body) >= 4:  # a known api key and version, random body
            body = (
                struct.pack(">hh", rnd.choice([0, 1, 2, 3, 18, 19, 20, 22]), rnd.randrange(12))
                + body[4:]
            )
        with connect(strom) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            received, closed = drain(s, timeout=3, until_answer=True)
        assert_no_traceback(received)
        assert closed or received, f"frame {i} neither answered nor closed: {body[:30]!r}"
        closed_count += closed
    assert closed_count > 100
    wait_for_log(strom, "closing connection from")
    assert_healthy(strom)


def test_truncated_frames(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory(config=SMALL_MAX)
    metadata = encode_request(MetadataRequest(topics=None), 12, 7, "truncated")

    # the stream ends mid-frame: the broker closes its side
    with connect(strom) as s:
        s.sendall(metadata[: len(metadata) // 2])
        s.shutdown(socket.SHUT_WR)
        received, closed = drain(s)
    assert closed and received == b""

    # a frame whose body is a request cut short (the size prefix fits what is sent)
    cut = metadata[4 : len(metadata) - 3]
    send_and_expect_close(strom, struct.pack(">i", len(cut)) + cut)
    wait_for_log(strom, "malformed request")
    # frames too short to hold a request header
    for head in (b"", b"\x00", b"\x00\x03\x00", b"\x00\x03\x00\x0c\x00\x00"):
        send_and_expect_close(strom, struct.pack(">i", len(head)) + head)

    # a half-sent frame held open does not stop the broker serving others
    with connect(strom) as held:
        held.sendall(struct.pack(">i", 1000) + b"\x7f\xff\x00\x00")
        assert_healthy(strom)
        # and finishing it later (a request of an unknown api) gets it closed
        held.sendall(b"\xff" * 996)
        received, closed = drain(held)
    assert closed and received == b""
    wait_for_log(strom, "unknown api key 32767")
    assert_healthy(strom)


def test_size_prefix_over_the_limit(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory(config=SMALL_MAX)
    for size in (MAX_REQUEST + 1, 50 << 20):
        start = time.monotonic()
        # only the prefix and a few bytes: the broker must not wait for the rest
        send_and_expect_close(strom, struct.pack(">i", size) + b"\x00\x12\x00\x03", timeout=3)
        assert time.monotonic() - start < 3
        wait_for_log(strom, f"frame of {size} bytes is outside 0..{MAX_REQUEST}")
    assert_healthy(strom)


def test_max_int_and_negative_size_prefix(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory()  # the default socket.request.max.bytes (100 MiB)
    rss_before = strom.rss_bytes()
    for size in (2**31 - 1, -1, -(2**31)):
        send_and_expect_close(strom, struct.pack(">i", size) + b"\x00" * 16, timeout=3)
        wait_for_log(strom, f"frame of {size} bytes is outside")
    assert strom.rss_bytes() < rss_before + (20 << 20), "a size claim cost memory"
    assert_healthy(strom)


def _served_apis(strom: StromProcess) -> dict[int, tuple[int, int]]:
    with connect(strom) as s:
        s.sendall(request_frame(API_VERSIONS, 0, 1))
        return parse_api_versions_v0(recv_frame(s) or b"")[2]


@pytest.mark.parametrize("api_key", [9999, -1, None])
def test_unknown_api_keys(strom_factory, api_key: int | None) -> None:  # noqa: ANN001
    """Keys no Kafka has, and (None) a real Kafka API this broker does not advertise, sent as a
    well-formed request so only the api itself is refused."""
    strom = strom_factory(config=SMALL_MAX)
    if api_key is None:
        served = _served_apis(strom)
        api_key = min(k for k in messages.REQUESTS if k not in served)
        cls = messages.REQUESTS[api_key]
        version = cls.MIN_VERSION
        frame = encode_request(cls(), version, 1, "raw")
        logged = f"api {api_key} v{version} is not supported"
    else:
        frame = request_frame(api_key, 0, 1)
        logged = f"unknown api key {api_key}"
    send_and_expect_close(strom, frame)
    wait_for_log(strom, logged)
    assert_healthy(strom)


def test_api_versions_unknown_version_answered_with_v0(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory(config=SMALL_MAX)
    with connect(strom) as s:
        s.sendall(request_frame(API_VERSIONS, 0, 1))
        known = parse_api_versions_v0(recv_frame(s) or b"")
    assert known[:2] == (1, 0)
    supported = known[2]
    assert supported[API_VERSIONS] == (0, 4)
    assert {0, 1, 2, 3, 18, 19, 20, 22} <= set(supported)

    for version in (99, 5, 32767):
        with connect(strom) as s:
            # a newer client: flexible header v2, a body this broker cannot know
            s.sendall(
                request_frame(API_VERSIONS, version, 42, b"\x05strom\x040.1\x00", flexible=True)
            )
            frame = recv_frame(s)
            assert frame is not None, f"ApiVersions v{version}: closed instead of answered"
            assert_no_traceback(frame)
            corr, err, apis = parse_api_versions_v0(frame)
            assert (corr, err) == (42, UNSUPPORTED_VERSION)
            assert apis == supported
            # the connection stays usable: the client retries with a version it now knows
            s.sendall(request_frame(API_VERSIONS, 0, 43))
            assert parse_api_versions_v0(recv_frame(s) or b"") == (43, 0, supported)
    assert_healthy(strom)


@pytest.mark.parametrize(
    ("frame", "logged"),
    [
        pytest.param(request_frame(3, 99, 1, b"\x00"), "v99 is not supported", id="Metadata-v99"),
        pytest.param(
            request_frame(0, 99, 1, b"\x00" * 12), "v99 is not supported", id="Produce-v99"
        ),
        pytest.param(  # a well-formed request of a version below the v4 Strom answers
            encode_request(FetchRequest(max_wait_ms=0, topics=[]), 3, 1),
            "api 1 v3 is not supported",
            id="Fetch-v3",
        ),
        pytest.param(
            encode_request(ListOffsetsRequest(replica_id=-1, topics=[]), 0, 1),
            "api 2 v0 is not supported",
            id="ListOffsets-v0",
        ),
    ],
)
def test_unsupported_versions_close_the_connection(strom_factory, frame, logged) -> None:  # noqa: ANN001
    strom = strom_factory(config=SMALL_MAX)
    send_and_expect_close(strom, frame)
    wait_for_log(strom, logged)
    assert_healthy(strom)


MALFORMED = {
    # counts and lengths that claim far more than the frame holds
    "array count 2^31-1": request_frame(3, 1, 1, struct.pack(">i", 0x7FFFFFFF)),
    "negative array count": request_frame(3, 1, 1, struct.pack(">i", -5)),
    "compact array count huge": request_frame(3, 12, 1, b"\xff\xff\xff\xff\x07", flexible=True),
    "string longer than frame": request_frame(
        19, 4, 1, struct.pack(">i", 1) + struct.pack(">h", 30000) + b"abc"
    ),
    "records longer than frame": request_frame(
        0,
        8,
        1,
        struct.pack(">h", -1)  # transactional id
        + struct.pack(">hi", 1, 1000)  # acks, timeout
        + struct.pack(">i", 1)
        + struct.pack(">h", 1)
        + b"t"
        + struct.pack(">i", 1)
        + struct.pack(">i", 0)
        + struct.pack(">i", 0x7FFFFFF0)
        + b"\x00" * 20,
    ),
    "client id longer than frame": struct.pack(">i", 12)
    + struct.pack(">hhih", 18, 0, 1, 20000)
    + b"ab",
    "varint that never ends": request_frame(18, 3, 1, b"\xff" * 40, flexible=True),
    "tagged field longer than frame": request_frame(
        3, 12, 1, b"\x01\x01\x00" + b"\x01\x00\x7f" + b"\x05", flexible=True
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_bodies(strom_factory, case: str) -> None:  # noqa: ANN001
    strom = strom_factory(config=SMALL_MAX)
    send_and_expect_close(strom, MALFORMED[case])
    wait_for_log(strom, "malformed")
    assert_healthy(strom)


def test_flood_of_connections(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory(config=SMALL_MAX)
    held: list[socket.socket] = []
    try:
        for i in range(500):
            s = connect(strom)
            if i % 2:
                s.sendall(request_frame(API_VERSIONS, 0, i))
            held.append(s)
        # every connection that asked is answered, while all 500 stay open
        for i, s in enumerate(held):
            if i % 2:
                frame = recv_frame(s)
                assert frame is not None, f"connection {i} closed"
                assert parse_api_versions_v0(frame)[:2] == (i, 0)
        assert_healthy(strom)
    finally:
        for s in held:
            s.close()
    assert_healthy(strom)


def test_pipelined_requests_never_read(strom_factory) -> None:  # noqa: ANN001
    """A client that sends 100,000 requests without reading a response: the broker applies
    back-pressure (memory stays bounded), keeps serving others, and when the client finally
    reads, every response is there, in order."""
    strom = strom_factory(config=SMALL_MAX)
    n = 100_000
    payload = b"".join(request_frame(API_VERSIONS, 0, i) for i in range(n))
    with connect(strom, timeout=30) as s:
        sender = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
        sender.start()
        time.sleep(1.0)
        assert_healthy(strom)
        s.settimeout(30)
        for i in range(n):
            frame = recv_frame(s)
            assert frame is not None, f"closed after {i} responses"
            assert struct.unpack_from(">ih", frame) == (i, 0), f"response {i}"
        sender.join(10)
        assert not sender.is_alive()
    assert_healthy(strom)


def test_flood_of_partial_frames_claiming_the_limit(strom_factory) -> None:  # noqa: ANN001
    """Many connections each announce a frame of the full allowed size and send a few bytes:
    memory must follow the bytes received, not the sizes claimed."""
    strom = strom_factory(config=SMALL_MAX)
    held: list[socket.socket] = []
    try:
        for _ in range(400):
            s = connect(strom)
            s.sendall(struct.pack(">i", MAX_REQUEST) + b"\x00\x12\x00\x00\x00\x00\x00\x01")
            held.append(s)
        time.sleep(0.5)
        assert_healthy(strom)
    finally:
        for s in held:
            s.close()
    assert_healthy(strom)


def _with_crc(batch: bytearray) -> bytes:
    """Recompute a RecordBatch's CRC32C (over attributes to the end) after editing it."""
    struct.pack_into(">I", batch, 17, google_crc32c.value(bytes(batch[21:])))
    return bytes(batch)


def _raw_batch(payload: bytes, count: int, attributes: int) -> bytes:
    """A RecordBatch v2 around `payload` (the records section, compressed or not)."""
    head = struct.pack(">hiqqqhii", attributes, count - 1, 0, 0, -1, -1, -1, count)
    batch = bytearray(struct.pack(">qiib", 0, 4 + 1 + 4 + len(head) + len(payload), -1, 2))
    batch += b"\x00\x00\x00\x00" + head + payload
    return _with_crc(batch)


def _gzip_bomb() -> bytes:
    """~0.5 MB of gzip that inflates to 512 MiB of zeros."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join([*(z.compress(chunk) for _ in range(512)), z.flush()])


def _bad_batches() -> dict[str, bytes]:
    good = bytearray(build_batch([(b"k%d" % i, b"v%d" % i) for i in range(3)]))
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    too_long = bytearray(good)
    struct.pack_into(">i", too_long, 8, len(good) + 100)
    miscounted = bytearray(good)
    struct.pack_into(">ii", miscounted, 23, 999, 1000)  # last offset delta and record count
    return {
        "crc-mismatch": bytes(bad_crc),
        "batch-length-beyond-data": bytes(too_long),
        "record-count-beyond-records": _with_crc(miscounted),
        "records-of-noise": _raw_batch(bytes(range(256)) * 4, 5, 0),
        "gzip-noise": _raw_batch(b"\x1f\x8b" + bytes(range(200)), 1, 1),
        "zstd-noise": _raw_batch(b"\x28\xb5\x2f\xfd" + bytes(100), 1, 4),
        "gzip-bomb": _raw_batch(_gzip_bomb(), 1, 1),
    }


@pytest.fixture(scope="module")
def batch_broker(tmp_path_factory: pytest.TempPathFactory) -> StromProcess:
    p = StromProcess(tmp_path_factory.mktemp("batches") / "data", dict(SMALL_MAX)).start()
    yield p
    p.stop()


@pytest.mark.parametrize(
    "case",
    [
        "crc-mismatch",
        "batch-length-beyond-data",
        "record-count-beyond-records",
        "records-of-noise",
        "gzip-noise",
        "zstd-noise",
        "gzip-bomb",
    ],
)
def test_malformed_record_batches_are_answered_with_errors(
    batch_broker: StromProcess, case: str
) -> None:
    """A well-formed Produce whose record data is broken gets an error for its partition
    (CORRUPT_MESSAGE or INVALID_RECORD, as Kafka), on a connection that stays usable; nothing
    of it is stored, and a bomb does not cost its inflated size."""
    strom = batch_broker
    topic = f"victim-{case}"
    create_topic(strom.bootstrap, topic, 1)
    batch = _bad_batches()[case]
    client = RawClient(strom.bootstrap)
    try:
        req = ProduceRequest(
            acks=-1,
            timeout_ms=5000,
            topic_data=[
                ProduceRequest.TopicProduceData(
                    name=topic,
                    partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)],
                )
            ],
        )
        response = client.call(req, 9)
        part = response.responses[0].partition_responses[0]  # type: ignore[attr-defined]
        assert strom.rss_bytes() < RSS_LIMIT, f"RSS {strom.rss_bytes() >> 20} MiB"
        assert (part.error_code, part.base_offset) in ((2, -1), (87, -1))
        # the same connection still answers
        assert client.call(MetadataRequest(topics=None), 12).brokers  # type: ignore[attr-defined]
    finally:
        client.close()
    assert read_all(strom.bootstrap, topic, 1)[0] == []
    wait_for_log(strom, f"produce to {topic}-0 from strom-test-raw refused")
    assert_healthy(strom)
