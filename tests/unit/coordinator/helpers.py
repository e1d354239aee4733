"""Shortcuts for driving the coordinator like a client would."""

from __future__ import annotations

import struct

from strom.coordinator.deferred import Deferred
from strom.coordinator.group import GroupCoordinator
from strom.coordinator.group.classic import JoinResult, SyncResult
from strom.protocol.errors import ErrorCode
from strom.protocol.messages.consumer_protocol import ConsumerProtocolSubscription


def subscription(*topics: str, version: int = 0) -> bytes:
    return struct.pack(">h", version) + ConsumerProtocolSubscription(topics=list(topics)).encode(
        version
    )


def join(
    c: GroupCoordinator,
    group: str,
    member_id: str = "",
    instance_id: str | None = None,
    protocols: list[tuple[str, bytes]] | None = None,
    session_ms: int = 10_000,
    rebalance_ms: int = 30_000,
    client_id: str = "client",
    protocol_type: str = "consumer",
    version: int = 9,
) -> Deferred[JoinResult]:
    return c.join_group(
        group,
        member_id,
        instance_id,
        client_id,
        "/127.0.0.1",
        session_ms,
        rebalance_ms,
        protocol_type,
        protocols if protocols is not None else [("range", subscription("orders"))],
        require_known_member_id=version >= 4,
        api_version=version,
    )


def join_new(c: GroupCoordinator, group: str, **kw: object) -> tuple[str, Deferred[JoinResult]]:
    """The v4+ handshake: MEMBER_ID_REQUIRED, then the join with the given id."""
    first = join(c, group, **kw)
    assert first.done and first.result.error == ErrorCode.MEMBER_ID_REQUIRED
    member_id = first.result.member_id
    return member_id, join(c, group, member_id=member_id, **kw)


def sync(
    c: GroupCoordinator,
    group: str,
    generation: int,
    member_id: str,
    assignments: list[tuple[str, bytes]] | None = None,
    instance_id: str | None = None,
) -> Deferred[SyncResult]:
    return c.sync_group(group, generation, member_id, instance_id, None, None, assignments or [])
