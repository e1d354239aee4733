"""Byte-for-byte agreement with an independent codec: kafka-python 3.x's ``kafka.protocol``.

kafka-python interprets its own copy of Kafka's JSON message specs at run time; Strom compiles
its copy (Kafka 3.9) into Python ahead of time. For every API and version both of them know,
random messages must encode to identical bytes in both directions:

- Strom encodes -> kafka-python decodes -> kafka-python re-encodes the same bytes, and
- kafka-python encodes -> Strom decodes -> Strom re-encodes the same bytes,

and the values that come out must be the values that went in. Headers are compared too.
"""

from __future__ import annotations

import importlib
import pkgutil
import struct
import uuid
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom.protocol import frames, messages
from strom.protocol.primitives import FieldSpec

from .strategies import message

with warnings.catch_warnings():
    # kafka-python loads its JSON specs with importlib.resources' deprecated read_text
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka.protocol as kp
    from kafka.protocol.api_header import RequestHeader as KpRequestHeader
    from kafka.protocol.api_header import ResponseHeader as KpResponseHeader
    from kafka.protocol.api_message import ApiMessage
    from kafka.protocol.schemas.fields.codecs import BitField
    from kafka.protocol.schemas.fields.simple import SimpleField

# --- kafka-python's message classes, found by walking its package ------------------------------


def _kafka_python_classes() -> dict[tuple[int, bool], type]:
    """(api key, is request) -> kafka-python's primary (unversioned) message class."""
    found: dict[tuple[int, bool], type] = {}
    for info in pkgutil.walk_packages(kp.__path__, "kafka.protocol."):
        if ".old" in info.name or info.name.endswith("generate_stubs"):
            continue  # the legacy hand-written structs; the stub generator script
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, ApiMessage)
                and obj is not ApiMessage
                and obj._class_version is None  # not a versioned wrapper like Foo_v3
            ):
                found[(obj.API_KEY, obj.is_request())] = obj
    return found


KP_CLASSES = _kafka_python_classes()
KP_REQUESTS = {key: cls for (key, is_req), cls in KP_CLASSES.items() if is_req}
KP_RESPONSES = {key: cls for (key, is_req), cls in KP_CLASSES.items() if not is_req}


def _json_versions(kp_cls: type) -> tuple[int, int]:
    """The versions kafka-python's own JSON spec declares (it clamps the minimum to 0 itself)."""
    lo, _, hi = kp_cls.json["validVersions"].partition("-")
    return int(lo), int(hi or lo)


# Field names that differ on purpose between the two copies of the specs (kafka-python patches
# MetadataResponse's authorized-operations ints into "bitfield" sets; Kafka 4.1 renamed
# ListClientMetricsResources (key 74) to ListConfigResources, with renamed fields).
NAME_ALIASES = {
    ("cluster_authorized_operations", "authorized_operations"),
    ("topic_authorized_operations", "authorized_operations"),
    ("client_metrics_resources", "config_resources"),
    ("name", "resource_name"),
}


def _pairs(strom_cls: type, kp_struct: Any, version: int) -> list[tuple[FieldSpec, Any]]:
    """Strom's and kafka-python's fields of one struct at one version, paired in spec order."""
    mine = [f for f in strom_cls.FIELDS if f.min_version <= version <= f.max_version]
    theirs = [f for f in kp_struct._fields if f.for_version_q(version)]
    names = ([f.name for f in mine], [f.name for f in theirs])
    assert len(mine) == len(theirs), f"{strom_cls.__qualname__} v{version}: {names}"
    for a, b in zip(mine, theirs, strict=True):
        assert a.name == b.name or (a.name, b.name) in NAME_ALIASES, names
    return list(zip(mine, theirs, strict=True))


def _is_bitfield(kf: Any) -> bool:
    return isinstance(kf, SimpleField) and kf._type is BitField


def _scalar_to_kp(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "uuid":
        # kafka-python's zero uuid is None (so a zero tagged uuid stays unwritten, as in Kafka)
        return None if bytes(value) == bytes(16) else uuid.UUID(bytes=bytes(value))
    if kind in ("bytes", "records"):
        return bytes(value)
    return value


def _scalar_from_kp(value: Any, kind: str) -> Any:
    if kind == "uuid":
        return bytes(16) if value is None else value.bytes  # kafka-python: zero uuid <-> None
    if kind in ("bytes", "records") and value is not None:
        return bytes(value)
    return value


def to_kp(obj: Any, strom_cls: type, kp_struct: Any, data_class: type, version: int) -> Any:
    """A Strom message (or nested struct) as the equivalent kafka-python object."""
    kwargs = {}
    for sf, kf in _pairs(strom_cls, kp_struct, version):
        value = getattr(obj, sf.name)
        if sf.struct is not None:
            sub = kf.array_of if sf.type.startswith("[]") else kf
            if value is None:
                conv = None
            elif sf.type.startswith("[]"):
                conv = [to_kp(v, sf.struct, sub, kf.data_class, version) for v in value]
            else:
                conv = to_kp(value, sf.struct, sub, kf.data_class, version)
        elif _is_bitfield(kf):
            bits = BitField.from_32_bit_field(value & 0xFFFFFFFF)
            conv = None if bits == {31} else bits
        elif sf.type.startswith("[]"):
            kind = sf.type[2:]
            conv = None if value is None else [_scalar_to_kp(v, kind) for v in value]
        else:
            conv = _scalar_to_kp(value, sf.type)
        kwargs[kf.name] = conv
    return data_class(version=version, **kwargs)


def from_kp(obj: Any, strom_cls: type, kp_struct: Any, version: int) -> Any:
    """A kafka-python object as the equivalent Strom message (or nested struct)."""
    kwargs = {}
    for sf, kf in _pairs(strom_cls, kp_struct, version):
        value = getattr(obj, kf.name)
        if sf.struct is not None:
            sub = kf.array_of if sf.type.startswith("[]") else kf
            if value is None:
                conv = None
            elif sf.type.startswith("[]"):
                conv = [from_kp(v, sf.struct, sub, version) for v in value]
            else:
                conv = from_kp(value, sf.struct, sub, version)
        elif _is_bitfield(kf):
            bits = BitField.to_32_bit_field({31} if value is None else value)
            conv = struct.unpack(">i", struct.pack(">I", bits))[0]
        elif sf.type.startswith("[]"):
            kind = sf.type[2:]
            conv = None if value is None else [_scalar_from_kp(v, kind) for v in value]
        else:
            conv = _scalar_from_kp(value, sf.type)
        kwargs[sf.name] = conv
    return strom_cls(**kwargs)


def kp_encode(obj: Any, version: int) -> bytes:
    """kafka-python's body encoding (a decoded object lacks the header slot encode() touches)."""
    try:
        obj._header  # noqa: B018
    except AttributeError:
        obj._header = None
    return bytes(obj.encode(version=version))


# --- the cases: every (api, version) both codecs know ------------------------------------------

SHARED_KEYS = sorted(set(KP_REQUESTS) & set(messages.REQUESTS))
MISSING_IN_KAFKA_PYTHON = sorted(set(messages.REQUESTS) - set(KP_REQUESTS))


def _versions(key: int, is_request: bool) -> range:
    mine = (messages.REQUESTS if is_request else messages.RESPONSES)[key]
    theirs = (KP_REQUESTS if is_request else KP_RESPONSES)[key]
    return range(mine.MIN_VERSION, min(mine.MAX_VERSION, theirs.max_version) + 1)


CASES = [
    pytest.param(
        (messages.REQUESTS if is_request else messages.RESPONSES)[key],
        (KP_REQUESTS if is_request else KP_RESPONSES)[key],
        version,
        id=f"{(messages.REQUESTS if is_request else messages.RESPONSES)[key].__name__}-v{version}",
    )
    for key in SHARED_KEYS
    for is_request in (True, False)
    for version in _versions(key, is_request)
]


def test_coverage_of_kafka_python() -> None:
    """Every API kafka-python implements is compared, at every version Strom also knows."""
    assert len(SHARED_KEYS) == len(KP_REQUESTS) == len(KP_RESPONSES) >= 52
    assert set(KP_RESPONSES) == set(KP_REQUESTS)
    assert len(CASES) >= 480
    # kafka-python's specs are Kafka 4.x, which dropped old versions (Produce v0-2, Fetch v0-3,
    # ...); it still encodes them and agrees with Strom there, so they are compared too
    below = [p for p in CASES if p.values[2] < _json_versions(p.values[1])[0]]
    assert len(below) >= 40
    # kafka-python is a client: what it lacks is broker-internal, KRaft, share-group and
    # telemetry APIs (and ControlledShutdown, the only user of request header v0)
    assert {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 22, 36}.isdisjoint(
        MISSING_IN_KAFKA_PYTHON
    )
    assert {4, 5, 6, 7, 58, 62, 63, 68, 76, 78}.issubset(MISSING_IN_KAFKA_PYTHON)


def _strategy(cls: type, version: int) -> st.SearchStrategy:
    # Unknown tagged fields are left out: kafka-python keeps them on decode but never writes
    # them back (see test_unknown_tags_reach_kafka_python for the part it does).
    strategy = message(cls, version, False)
    if cls is messages.RESPONSES[frames.API_VERSIONS_KEY]:
        # kafka-python decodes an ApiVersions response with a non-zero error as v0 whatever the
        # version (a broker answers UNSUPPORTED_VERSION in v0); tested apart below.
        strategy = strategy.map(_no_error)
    return strategy


def _no_error(msg: Any) -> Any:
    msg.error_code = 0
    return msg


@pytest.mark.parametrize(("cls", "kp_cls", "version"), CASES)
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_agrees_with_kafka_python(
    cls: type, kp_cls: type, version: int, data: st.DataObject
) -> None:
    original = data.draw(_strategy(cls, version))
    mine = original.encode(version)

    # Strom encodes -> kafka-python decodes to the same values and re-encodes the same bytes
    theirs = kp_cls.decode(mine, version=version)
    assert from_kp(theirs, cls, kp_cls._struct, version) == original
    assert kp_encode(theirs, version) == mine

    # kafka-python encodes -> Strom decodes to the same values and re-encodes the same bytes
    built = to_kp(original, cls, kp_cls._struct, kp_cls, version)
    encoded = kp_encode(built, version)
    assert encoded == mine
    decoded = cls.decode(encoded, version)
    assert decoded == original
    assert decoded.encode(version) == encoded


# --- ApiVersions: the v0 fallback -------------------------------------------------------------


@pytest.mark.parametrize("requested", [0, 3, 4])
def test_api_versions_error_answer_is_read_as_v0_by_kafka_python(requested: int) -> None:
    """A broker answers an ApiVersions request it cannot serve with a v0 body and header v0;
    kafka-python reads it (whatever version it asked for) and finds the error and the ranges."""
    resp_cls = messages.RESPONSES[frames.API_VERSIONS_KEY]
    body = resp_cls(
        error_code=35,
        api_keys=[resp_cls.ApiVersion(api_key=18, min_version=0, max_version=4)],
    )
    frame = b"".join(bytes(p) for p in frames.encode_response(body, 0, correlation_id=77))
    assert frame == bytes.fromhex("00000010 0000004d 0023 00000001 0012 0000 0004")
    theirs = KP_RESPONSES[frames.API_VERSIONS_KEY].decode(
        frame, version=requested, header=True, framed=True
    )
    assert theirs.header.correlation_id == 77
    assert theirs.error_code == 35
    assert [(k.api_key, k.min_version, k.max_version) for k in theirs.api_keys] == [(18, 0, 4)]


# --- unknown tagged fields --------------------------------------------------------------------


def test_unknown_tags_reach_kafka_python() -> None:
    """Tagged fields Strom passes through are seen by kafka-python as unknown tags, raw."""
    req_cls = messages.REQUESTS[0]
    partition = req_cls.PartitionProduceData(index=3, records=b"rec", unknown_tags=[(1001, b"xy")])
    topic = req_cls.TopicProduceData(name="t", partition_data=[partition])
    body = req_cls(acks=-1, timeout_ms=5, topic_data=[topic], unknown_tags=[(1000, b"abc")])
    theirs = KP_REQUESTS[0].decode(body.encode(9), version=9)
    assert theirs.unknown_tags == {"_1000": b"abc"}
    assert theirs.topic_data[0].partition_data[0].unknown_tags == {"_1001": b"xy"}
    assert theirs.topic_data[0].partition_data[0].records == b"rec"


# --- headers ----------------------------------------------------------------------------------


def test_header_versions_follow_flexible_versions() -> None:
    """Request header v2 / response header v1 exactly where kafka-python's specs are flexible
    (ApiVersions responses excepted: always header v0), for every shared api and version."""
    checked = 0
    for key in SHARED_KEYS:
        for version in _versions(key, True):
            flexible = KP_REQUESTS[key].flexible_version_q(version)
            assert frames.request_header_version(key, version) == (2 if flexible else 1)
            checked += 1
        for version in _versions(key, False):
            flexible = KP_RESPONSES[key].flexible_version_q(version)
            expected = 1 if flexible and key != frames.API_VERSIONS_KEY else 0
            assert frames.response_header_version(key, version) == expected
            checked += 1
    assert checked == len(CASES)


HEADER_CASES = [
    (0, 3),  # Produce: header v1
    (0, 8),
    (0, 9),  # first flexible: header v2
    (0, 11),
    (1, 11),
    (1, 12),
    (1, 17),
    (3, 0),
    (3, 8),
    (3, 9),
    (3, 12),
    (17, 1),  # SaslHandshake: never flexible
    (18, 0),  # ApiVersions: request header v1 then v2, response header always v0
    (18, 2),
    (18, 3),
    (18, 4),
    (47, 0),  # OffsetDelete: never flexible
    (60, 0),  # DescribeCluster: flexible from v0
    (60, 1),
]


@pytest.mark.parametrize(("key", "version"), HEADER_CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("client_id", ["strom-test", "", None, "clïent/ü"])
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), correlation_id=st.integers(-(2**31), 2**31 - 1))
def test_request_frames_agree(
    key: int, version: int, client_id: str | None, data: st.DataObject, correlation_id: int
) -> None:
    cls, kp_cls = messages.REQUESTS[key], KP_REQUESTS[key]
    body = data.draw(_strategy(cls, version))
    mine = frames.encode_request(body, version, correlation_id, client_id)

    theirs = to_kp(body, cls, kp_cls._struct, kp_cls, version)
    theirs.with_header(correlation_id=correlation_id, client_id=client_id)
    assert bytes(theirs.encode(framed=True, header=True)) == mine

    # and Strom reads kafka-python's frame: header fields and body
    header, decoded = frames.decode_request(mine[4:])
    assert (header.api_key, header.api_version) == (key, version)
    assert (header.correlation_id, header.client_id) == (correlation_id, client_id)
    assert header.header_version == (2 if kp_cls.flexible_version_q(version) else 1)
    assert decoded == body


@pytest.mark.parametrize(("key", "version"), HEADER_CASES, ids=lambda v: str(v))
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), correlation_id=st.integers(-(2**31), 2**31 - 1))
def test_response_frames_agree(
    key: int, version: int, data: st.DataObject, correlation_id: int
) -> None:
    cls, kp_cls = messages.RESPONSES[key], KP_RESPONSES[key]
    body = data.draw(_strategy(cls, version))
    mine = b"".join(bytes(p) for p in frames.encode_response(body, version, correlation_id))
    header_len = 4 + (frames.response_header_version(key, version) == 1)
    assert mine[4:8] == struct.pack(">i", correlation_id)
    assert mine[8 : 4 + header_len] == b"\x00" * (header_len - 4)  # empty tag section
    assert mine[4 + header_len :] == body.encode(version)

    theirs = to_kp(body, cls, kp_cls._struct, kp_cls, version)
    theirs.with_header(correlation_id=correlation_id)
    assert bytes(theirs.encode(framed=True, header=True)) == mine

    parsed = kp_cls.decode(mine, version=version, header=True, framed=True)
    assert parsed.header.correlation_id == correlation_id
    assert from_kp(parsed, cls, kp_cls._struct, version) == body
    assert frames.decode_response(mine[4:], key, version) == (correlation_id, body)


def test_request_header_agrees_with_kafka_python_header_codec() -> None:
    """Strom's header parser reads kafka-python's RequestHeader encodings (v1 and v2)."""
    for flexible in (False, True):
        for client_id in ("c", None, "x" * 300):
            hdr = KpRequestHeader(
                request_api_key=3,
                request_api_version=12 if flexible else 8,
                correlation_id=-5,
                client_id=client_id,
            )
            raw = bytes(hdr.encode(flexible=flexible))
            parsed, pos = frames.parse_request_header(raw + b"body")
            assert pos == len(raw)
            assert parsed.header_version == (2 if flexible else 1)
            assert (parsed.api_key, parsed.correlation_id, parsed.client_id) == (3, -5, client_id)
    for flexible in (False, True):
        raw = bytes(KpResponseHeader(correlation_id=12345).encode(flexible=flexible))
        assert raw == struct.pack(">i", 12345) + (b"\x00" if flexible else b"")
