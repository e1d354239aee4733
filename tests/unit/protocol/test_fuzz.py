"""Hostile input: whatever bytes arrive, decoding returns a message or raises a typed error.

Every request and response class is fed, at every version, truncated, bit-flipped and
length-corrupted encodings of valid messages, frames relabelled to wrong versions and unknown
API keys, and plain random bytes. The only acceptable outcomes are a decoded message or a
KafkaError (ProtocolError, UnsupportedVersionError, ...); each input must be handled quickly
(a CPU-time alarm catches loops sized by a hostile count), and under tracemalloc a frame that
claims huge lengths and counts must not make the decoder allocate by the claim.
"""

from __future__ import annotations

import random
import signal
import struct
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom.protocol import messages
from strom.protocol.errors import KafkaError
from strom.protocol.frames import decode_request, encode_request
from strom.protocol.primitives import FieldSpec

REQUESTS = [
    (cls, v)
    for cls in messages.REQUESTS.values()
    for v in range(cls.MIN_VERSION, cls.MAX_VERSION + 1)
]
RESPONSES = [
    (cls, v)
    for cls in messages.RESPONSES.values()
    for v in range(cls.MIN_VERSION, cls.MAX_VERSION + 1)
]
UNKNOWN_KEYS = [-32768, -1, max(messages.REQUESTS) + 1, 1000, 32767]

# Values that make a length, count or varint claim far more than any frame holds.
HOSTILE = [
    b"\x7f\xff\xff\xff",  # int32 2^31-1 (array count, bytes length)
    b"\xff\xff\xff\xff",  # 2^32-1 as uint32, -1 as int32 (null)
    b"\xff\xff\xff\xfe",  # int32 -2
    b"\x80\x00\x00\x00",  # int32 -2^31
    b"\x7f\xff",  # int16 0x7fff (string length)
    b"\xff\xfe",  # int16 -2
    b"\xff\xff\xff\xff\x07",  # uvarint 2^31-1 (compact length / count)
    b"\xff\xff\xff\xff\x0f",  # uvarint 2^32-1
    b"\xff\xff\xff\xff\xff\x01",  # a 6-byte varint
    b"\x80" * 10 + b"\x01",  # an 11-byte varint
    b"\x80\x80\x80\x80",  # a varint cut by the end of the frame
]

CPU_LIMIT_S = 1.0  # per input: generous for CI, yet a loop sized by a hostile count never fits


class Hang(BaseException):  # noqa: N818 - a BaseException, so no decoder `except` can swallow it
    """Raised from the CPU-time alarm: one input took too long."""


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang


@contextmanager
def cpu_alarm() -> Iterator[None]:
    """Arm ITIMER_VIRTUAL around each decode (pytest-timeout owns SIGALRM/ITIMER_REAL)."""
    old = signal.signal(signal.SIGVTALRM, _on_alarm)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, old)


class Outcomes:
    """Runs decoders over inputs and records anything other than a message or a KafkaError."""

    def __init__(self) -> None:
        self.inputs = 0
        self.decoded = 0
        self.typed_errors = 0
        self.failures: list[tuple[str, bytes, str]] = []
        self.slowest = 0.0

    def run(self, label: str, decode: Callable[[bytes], Any], data: bytes) -> None:
        self.inputs += 1
        signal.setitimer(signal.ITIMER_VIRTUAL, CPU_LIMIT_S)
        t0 = time.perf_counter()
        try:
            decode(data)
            self.decoded += 1
        except KafkaError:
            self.typed_errors += 1
        except Hang:
            self.failures.append((label, data, f"took over {CPU_LIMIT_S} s of CPU"))
        except Exception as e:  # noqa: BLE001 - exactly what this test is looking for
            self.failures.append((label, data, f"{type(e).__name__}: {e}"))
        finally:
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)
            self.slowest = max(self.slowest, time.perf_counter() - t0)

    def check(self, min_inputs: int) -> None:
        shown = "\n".join(
            f"{lbl}: {err} <- {data[:64].hex()}" for lbl, data, err in self.failures[:20]
        )
        assert not self.failures, f"{len(self.failures)} of {self.inputs} inputs failed:\n{shown}"
        assert self.inputs >= min_inputs
        assert self.typed_errors > 0 and self.decoded > 0
        assert self.slowest < CPU_LIMIT_S


# --- valid messages to start from (deterministic) ----------------------------------------------


def _scalar(kind: str, rng: random.Random) -> Any:
    if kind == "int8":
        return rng.randint(-128, 127)
    if kind == "int16":
        return rng.choice([0, 1, -1, rng.randint(-(2**15), 2**15 - 1)])
    if kind == "uint16":
        return rng.randint(0, 2**16 - 1)
    if kind == "int32":
        return rng.choice([0, 3, -1, rng.randint(-(2**31), 2**31 - 1)])
    if kind == "int64":
        return rng.choice([0, 7, -1, rng.randint(-(2**63), 2**63 - 1)])
    if kind == "float64":
        return rng.random()
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "uuid":
        return rng.randbytes(16)
    if kind == "string":
        return rng.choice(["", "t", "topic-é", "x" * rng.randint(1, 20)])
    if kind in ("bytes", "records"):
        return rng.randbytes(rng.randint(0, 40))
    raise AssertionError(kind)


def _value(f: FieldSpec, version: int, rng: random.Random, depth: int) -> Any:
    if f.nullable_min <= version <= f.nullable_max and rng.random() < 0.15:
        return None
    if f.type.startswith("[]"):
        n = rng.randint(1, 3 if depth < 2 else 1)
        if f.struct is not None:
            return [sample(f.struct, version, rng, depth + 1) for _ in range(n)]
        return [_scalar(f.type[2:], rng) for _ in range(n)]
    if f.struct is not None:
        return sample(f.struct, version, rng, depth + 1)
    return _scalar(f.type, rng)


def sample(cls: type, version: int, rng: random.Random, depth: int = 0) -> Any:
    """A valid message with every field of this version set, arrays non-empty."""
    kwargs = {
        f.name: _value(f, version, rng, depth)
        for f in cls.FIELDS
        if f.min_version <= version <= f.max_version
    }
    return cls(**kwargs)


def _request_frames(seeds: int) -> list[tuple[str, type, int, bytes]]:
    out = []
    for cls, version in REQUESTS:
        for seed in range(seeds):
            rng = random.Random(f"{cls.__name__}/{version}/{seed}")
            body = sample(cls, version, rng)
            frame = encode_request(body, version, rng.randint(0, 2**31 - 1), "fuzz")[4:]
            out.append((f"{cls.__name__} v{version}", cls, version, frame))
    return out


def _bodies(classes: list[tuple[type, int]], seeds: int) -> list[tuple[str, type, int, bytes]]:
    out = []
    for cls, version in classes:
        for seed in range(seeds):
            rng = random.Random(f"{cls.__name__}/{version}/{seed}")
            body = sample(cls, version, rng).encode(version)
            out.append((f"{cls.__name__} v{version}", cls, version, body))
    return out


def _mutants(data: bytes, rng: random.Random, offsets: int, header: int = 0) -> Iterator[bytes]:
    """Truncations at every position, byte flips, hostile values written over and inserted."""
    n = len(data)
    for i in range(n):
        yield data[:i]
    for _ in range(12):
        i = rng.randrange(n)
        yield data[:i] + bytes([data[i] ^ rng.randint(1, 255)]) + data[i + 1 :]
    for _ in range(3):
        b = bytearray(data)
        for _ in range(rng.randint(2, 8)):
            b[rng.randrange(header, n)] = rng.randrange(256)
        yield bytes(b)
    positions = {rng.randrange(header, n) for _ in range(offsets)} if n > header else set()
    for i in positions:
        for value in HOSTILE:
            yield data[:i] + value + data[i + len(value) :]
            yield data[:i] + value + data[i:]
    yield data + rng.randbytes(rng.randint(1, 16))


def _relabelled(frame: bytes, cls: type) -> Iterator[bytes]:
    """The same frame under every other version of its API (and some that do not exist), and
    under unknown API keys."""
    api_key, version = struct.unpack_from(">hh", frame)
    for v in range(-1, cls.MAX_VERSION + 3):
        if v != version:
            yield struct.pack(">hh", api_key, v) + frame[4:]
    for key in UNKNOWN_KEYS:
        yield struct.pack(">h", key) + frame[2:]


# --- the deterministic mutation loops ----------------------------------------------------------


@pytest.mark.slow
def test_mutated_request_frames() -> None:
    outcomes = Outcomes()
    rng = random.Random(1)
    with cpu_alarm():
        for label, cls, _version, frame in _request_frames(seeds=4):
            for mutant in _mutants(frame, rng, offsets=16, header=8):
                outcomes.run(label, decode_request, mutant)
            for relabelled in _relabelled(frame, cls):
                outcomes.run(label + " relabelled", decode_request, relabelled)
    outcomes.check(min_inputs=500_000)


@pytest.mark.slow
def test_mutated_bodies_every_class_and_version() -> None:
    """Class.decode of every request and response class, at every version."""
    outcomes = Outcomes()
    rng = random.Random(2)
    bodies = _bodies(RESPONSES, seeds=3) + _bodies(REQUESTS, seeds=2)
    with cpu_alarm():
        for label, cls, version, body in bodies:
            if not body:
                continue

            def decode(data: bytes, cls: type = cls, version: int = version) -> Any:
                return cls.decode(data, version)

            for mutant in _mutants(body, rng, offsets=12):
                outcomes.run(label, decode, mutant)
            for other in (version - 1, version + 1, cls.MAX_VERSION + 1, -1):
                outcomes.run(f"{label} as v{other}", lambda d, c=cls, o=other: c.decode(d, o), body)
    outcomes.check(min_inputs=400_000)


# --- random input (hypothesis) -----------------------------------------------------------------

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(data=st.data(), body=st.binary(max_size=200))
def test_random_bodies_behind_valid_headers(data: st.DataObject, body: bytes) -> None:
    cls, version = data.draw(st.sampled_from(REQUESTS))
    flexible = version >= cls.FLEXIBLE_MIN
    header = (
        struct.pack(">hhi", cls.API_KEY, version, 1) + b"\x00\x01c" + (b"\x00" if flexible else b"")
    )
    outcomes = Outcomes()
    with cpu_alarm():
        outcomes.run(f"{cls.__name__} v{version}", decode_request, header + body)
    assert not outcomes.failures, outcomes.failures


@FUZZ
@given(data=st.data(), body=st.binary(max_size=200))
def test_random_bytes_every_class(data: st.DataObject, body: bytes) -> None:
    cls, version = data.draw(st.sampled_from(REQUESTS + RESPONSES))
    outcomes = Outcomes()
    with cpu_alarm():
        outcomes.run(f"{cls.__name__} v{version}", lambda d: cls.decode(d, version), body)
        outcomes.run("frame", decode_request, body)
    assert not outcomes.failures, outcomes.failures


@FUZZ
@given(data=st.data())
def test_random_edits_of_valid_frames(data: st.DataObject) -> None:
    cls, version = data.draw(st.sampled_from(REQUESTS))
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    frame = bytearray(encode_request(sample(cls, version, rng), version, 7, "h")[4:])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(frame)))
        value = data.draw(st.sampled_from(HOSTILE) | st.binary(min_size=1, max_size=5))
        if data.draw(st.booleans()):
            frame[pos : pos + len(value)] = value
        else:
            frame[pos:pos] = value
    cut = data.draw(st.integers(0, len(frame)))
    outcomes = Outcomes()
    with cpu_alarm():
        outcomes.run(f"{cls.__name__} v{version}", decode_request, bytes(frame[:cut]))
        outcomes.run(f"{cls.__name__} v{version}", decode_request, bytes(frame))
    assert not outcomes.failures, outcomes.failures


# --- memory: no allocation sized by a claim ---------------------------------------------------


def _peak_over(decode: Callable[[], Any]) -> int:
    """Peak bytes allocated while decoding, above what was allocated before."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    with suppress(KafkaError):
        decode()
    return tracemalloc.get_traced_memory()[1] - before


@pytest.mark.slow
def test_hostile_claims_do_not_allocate() -> None:
    """Every length and count position of every request (and a sample of responses), claiming
    2^31-1 / 2^32-1 / 0x7fff: the decoder's peak allocation stays far below the claim."""
    limit = 1 << 20
    worst = (0, "")
    checked = 0
    rng = random.Random(3)
    cases = [(label, frame, decode_request) for label, _, _, frame in _request_frames(seeds=1)]
    for label, cls, version, body in _bodies(RESPONSES, seeds=1)[::3]:
        cases.append((label, body, lambda d, c=cls, v=version: c.decode(d, v)))
    tracemalloc.start()
    try:
        for label, data, decode in cases:
            for i in range(len(data)):
                value = rng.choice(HOSTILE[:2] + HOSTILE[4:5] + HOSTILE[6:8])
                mutant = data[:i] + value + data[i + len(value) :]
                peak = _peak_over(lambda m=mutant, d=decode: d(m))
                checked += 1
                if peak - len(mutant) > worst[0]:
                    worst = (peak - len(mutant), f"{label} @ {i} {value.hex()}")
    finally:
        tracemalloc.stop()
    assert checked > 20_000, checked
    assert worst[0] < limit, worst


def test_big_frame_with_huge_claims_stays_small() -> None:
    """A 4 MiB frame whose arrays and records claim 2^31-1 items / bytes: peak allocation is
    bounded by the frame, not by the claims."""
    produce = messages.REQUESTS[0]
    padding = b"\x00" * (4 << 20)
    hostile = [
        # ProduceRequest v3: transactional id null, acks, timeout, topics count 2^31-1
        struct.pack(">hhi", 0, 3, 1)
        + b"\xff\xff"
        + b"\xff\xff"
        + struct.pack(">hii", -1, 1000, 2**31 - 1),
        # ProduceRequest v3: one topic, one partition, records length 2^31-1
        struct.pack(">hhi", 0, 3, 1)
        + b"\xff\xff\xff\xff"
        + struct.pack(">hii", -1, 1000, 1)
        + b"\x00\x01t"
        + struct.pack(">iii", 1, 0, 2**31 - 1),
        # ProduceRequest v9 (flexible): compact topics count 2^32-2
        struct.pack(">hhi", 0, 9, 1)
        + b"\xff\xff\x00"
        + b"\x00"
        + struct.pack(">hi", -1, 1000)
        + b"\xff\xff\xff\xff\x0f",
        # MetadataRequest v12: compact topics count 2^31-1 over 4 MiB of zero bytes
        struct.pack(">hhi", 3, 12, 1) + b"\xff\xff\x00" + b"\xff\xff\xff\xff\x07",
        # FetchRequest v4: topic count 2^31-1
        struct.pack(">hhi", 1, 4, 1)
        + b"\xff\xff"
        + struct.pack(">iiiib", -1, 0, 0, 0, 0)
        + b"\x7f\xff\xff\xff",
        # ApiVersionsRequest v3: compact string claiming 2^31-1 bytes
        struct.pack(">hhi", 18, 3, 1) + b"\xff\xff\x00" + b"\xff\xff\xff\xff\x07",
    ]
    tracemalloc.start()
    try:
        for frame in hostile:
            data = frame + padding
            peak = _peak_over(lambda d=data: decode_request(d))
            assert peak < len(data) + (1 << 20), (frame.hex(), peak)
    finally:
        tracemalloc.stop()
    # sanity: the well-formed version of the second frame decodes and keeps records as a view
    ok = struct.pack(">hhi", 0, 3, 1) + b"\xff\xff\xff\xff" + struct.pack(">hii", -1, 1000, 1)
    ok += b"\x00\x01t" + struct.pack(">iii", 1, 0, len(padding)) + padding
    _, body = decode_request(ok)
    assert isinstance(body, produce)
    assert isinstance(body.topic_data[0].partition_data[0].records, memoryview)


def test_allocation_is_proportional_to_the_frame() -> None:
    """What a frame can legitimately cost: 1 MiB of minimal array elements (empty topic names)
    decodes into objects of about 32x the frame (one dataclass per 2 bytes). Bounded by the
    frame size, not by any claim; socket.request.max.bytes must account for the factor."""
    n = (1 << 20) // 2
    frame = struct.pack(">hhi", 3, 0, 1) + b"\xff\xff" + struct.pack(">i", n) + b"\x00\x00" * n
    tracemalloc.start()
    try:
        peak = _peak_over(lambda: decode_request(frame))
    finally:
        tracemalloc.stop()
    assert len(decode_request(frame)[1].topics) == n
    assert peak < 64 * len(frame)
