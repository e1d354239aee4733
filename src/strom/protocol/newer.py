"""Message versions newer than the shared specs (Kafka 3.9) that clients already speak.

ConsumerGroupHeartbeat v1 (Kafka 4.0, KIP-848 generally available): the request adds
SubscribedTopicRegex, a nullable string after SubscribedTopicNames, and the member generates
its own member id (KIP-1082); the response is laid out as v0's. librdkafka (2.12 and later)
sends only v1 with group.protocol=consumer. These classes are written by hand, not generated,
until the specs the generator reads include them; `frames.decode_request` uses them for the
versions past the generated classes, and responses built from them encode any version.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import ClassVar

from strom.protocol.errors import ProtocolError
from strom.protocol.messages.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest as _GeneratedHeartbeatRequest,
)
from strom.protocol.messages.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatResponse as _GeneratedHeartbeatResponse,
)
from strom.protocol.primitives import (
    ARRAY_FORMATS,
    DECODE_ERRORS,
    as_view,
    raise_count,
    read_compact_array,
    read_compact_nullable_string,
    read_compact_string,
    read_string_array,
    read_uvarint,
    skip_tags,
    write_compact_count,
    write_compact_nullable_string,
    write_compact_string,
    write_tags,
)

_I32 = struct.Struct(">i")
_UUID = struct.Struct(">16s")


def _read_compact_count(mv: memoryview, pos: int, min_size: int) -> tuple[int, int]:
    n, pos = read_uvarint(mv, pos)
    n -= 1
    if n > 0 and n * min_size > len(mv) - pos:
        raise_count(n, len(mv) - pos)
    return n, pos


@dataclass(slots=True)
class ConsumerGroupHeartbeatRequest(_GeneratedHeartbeatRequest):
    """ConsumerGroupHeartbeat request, v0 (generated layout) and v1 (adds the topic regex)."""

    MAX_VERSION: ClassVar[int] = 1
    subscribed_topic_regex: str | None = None

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, version: int):  # noqa: ANN206
        if version == 0:
            base = _GeneratedHeartbeatRequest.decode(data, 0)
            out = cls()
            for f in fields(_GeneratedHeartbeatRequest):
                setattr(out, f.name, getattr(base, f.name))
            return out
        if version != 1:
            raise ProtocolError(f"ConsumerGroupHeartbeatRequest v{version} is not known")
        mv = as_view(data)
        try:
            return cls._decode_v1(mv)
        except DECODE_ERRORS as e:
            raise ProtocolError(f"malformed message (v1): {type(e).__name__}: {e}") from None

    @classmethod
    def _decode_v1(cls, mv: memoryview) -> ConsumerGroupHeartbeatRequest:
        o = cls()
        pos = 0
        o.group_id, pos = read_compact_string(mv, pos)
        o.member_id, pos = read_compact_string(mv, pos)
        (o.member_epoch,) = _I32.unpack_from(mv, pos)
        pos += 4
        o.instance_id, pos = read_compact_nullable_string(mv, pos)
        o.rack_id, pos = read_compact_nullable_string(mv, pos)
        (o.rebalance_timeout_ms,) = _I32.unpack_from(mv, pos)
        pos += 4
        n, pos = _read_compact_count(mv, pos, 1)
        if n < 0:
            o.subscribed_topic_names = None
        else:
            o.subscribed_topic_names, pos = read_string_array(mv, pos, n, True)
        o.subscribed_topic_regex, pos = read_compact_nullable_string(mv, pos)
        o.server_assignor, pos = read_compact_nullable_string(mv, pos)
        n, pos = _read_compact_count(mv, pos, 18)
        if n < 0:
            o.topic_partitions = None
        else:
            o.topic_partitions = []
            for _ in range(n):
                tp = _GeneratedHeartbeatRequest.TopicPartitions()
                (tp.topic_id,) = _UUID.unpack_from(mv, pos)
                pos += 16
                parts, pos = read_compact_array(mv, pos, ARRAY_FORMATS["i"], 4)
                if parts is None:
                    raise ProtocolError("null partitions")
                tp.partitions = parts
                tp.unknown_tags, pos = skip_tags(mv, pos)
                o.topic_partitions.append(tp)
        o.unknown_tags, pos = skip_tags(mv, pos)
        if pos != len(mv):
            raise ProtocolError(f"{len(mv) - pos} bytes after ConsumerGroupHeartbeatRequest v1")
        return o

    def encode_into(self, version: int, b: bytearray, sp: list | None) -> None:
        if version == 0:
            _GeneratedHeartbeatRequest.encode_into(self, 0, b, sp)
            return
        if version != 1:
            raise ProtocolError(f"ConsumerGroupHeartbeatRequest v{version} is not known")
        write_compact_string(b, self.group_id)
        write_compact_string(b, self.member_id)
        b += _I32.pack(self.member_epoch)
        write_compact_nullable_string(b, self.instance_id)
        write_compact_nullable_string(b, self.rack_id)
        b += _I32.pack(self.rebalance_timeout_ms)
        write_compact_count(b, self.subscribed_topic_names)
        for name in self.subscribed_topic_names or ():
            write_compact_string(b, name)
        write_compact_nullable_string(b, self.subscribed_topic_regex)
        write_compact_nullable_string(b, self.server_assignor)
        write_compact_count(b, self.topic_partitions)
        for tp in self.topic_partitions or ():
            b += _UUID.pack(tp.topic_id)
            write_compact_count(b, tp.partitions)
            for p in tp.partitions:
                b += _I32.pack(p)
            _end_tags(b, tp.unknown_tags)
        _end_tags(b, self.unknown_tags)


@dataclass(slots=True)
class ConsumerGroupHeartbeatResponse(_GeneratedHeartbeatResponse):
    """ConsumerGroupHeartbeat response: v1 is laid out as v0."""

    MAX_VERSION: ClassVar[int] = 1

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, version: int):  # noqa: ANN206
        base = _GeneratedHeartbeatResponse.decode(data, min(version, 0))
        out = cls()
        for f in fields(_GeneratedHeartbeatResponse):
            setattr(out, f.name, getattr(base, f.name))
        return out

    def encode_into(self, version: int, b: bytearray, sp: list | None) -> None:
        _GeneratedHeartbeatResponse.encode_into(self, min(version, 0), b, sp)


def _end_tags(b: bytearray, tags: list | None) -> None:
    if tags:
        write_tags(b, list(tags))
    else:
        b.append(0)


#: api key -> the class that decodes that API's versions beyond the generated ones.
REQUESTS: dict[int, type] = {68: ConsumerGroupHeartbeatRequest}
RESPONSES: dict[int, type] = {68: ConsumerGroupHeartbeatResponse}
