"""Classic groups (JoinGroup/SyncGroup): members, states and protocol selection.

The state machine is Kafka's: Empty -> PreparingRebalance (members join) -> CompletingRebalance
(the leader assigns) -> Stable, and Dead once the group is deleted. The transitions live in
`classic_ops`; this module holds the data and the pure rules.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

from strom.coordinator.deferred import Deferred
from strom.protocol.errors import ErrorCode, ProtocolError
from strom.protocol.messages.consumer_protocol import ConsumerProtocolSubscription
from strom.protocol.messages.group_coordinator import GroupMetadataValue


class ClassicState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


CONSUMER_PROTOCOL_TYPE = "consumer"


@dataclass(slots=True)
class JoinResult:
    error: ErrorCode
    member_id: str
    generation: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)
    skip_assignment: bool = False


@dataclass(slots=True)
class SyncResult:
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(eq=False)
class ClassicMember:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    join: Deferred[JoinResult] | None = None
    sync: Deferred[SyncResult] | None = None
    is_new: bool = True

    @property
    def awaiting_join(self) -> bool:
        return self.join is not None and not self.join.done

    @property
    def awaiting_sync(self) -> bool:
        return self.sync is not None and not self.sync.done

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata(self, protocol: str) -> bytes:
        for name, data in self.protocols:
            if name == protocol:
                return data
        raise KeyError(protocol)

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols

    def metadata_bytes(self) -> int:
        return sum(len(n) + len(d) for n, d in self.protocols)


def subscribed_topics(metadata: bytes) -> set[str] | None:
    """Topics of a consumer-protocol subscription, or None if it cannot be read."""
    if len(metadata) < 2:
        return None
    version = int.from_bytes(metadata[:2], "big", signed=True)
    if version < 0:
        return None
    try:
        # Newer versions only append fields; read with the newest layout known (Kafka does).
        sub = ConsumerProtocolSubscription.decode(memoryview(metadata)[2:], min(version, 3))
    except ProtocolError:
        return None
    return set(sub.topics)


class ClassicGroup:
    """A classic group: its members, generation, chosen protocol and leader."""

    kind = "classic"

    def __init__(self, group_id: str, now_ms: int) -> None:
        self.group_id = group_id
        self.state = ClassicState.EMPTY
        self.state_timestamp = now_ms
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.generation = 0
        self.leader_id: str | None = None
        self.members: dict[str, ClassicMember] = {}
        self.static_members: dict[str, str] = {}  # instance id -> member id
        self.pending_members: set[str] = set()  # ids handed out with MEMBER_ID_REQUIRED
        self.pending_sync: set[str] = set()  # members that must still send SyncGroup
        self.initial_join = False  # the current join phase is the initial delayed join
        self.new_member_added = False
        self.initial_remaining_ms = 0
        self.subscribed: set[str] | None = None  # consumer-protocol topics, when known

    # -- queries -----------------------------------------------------------------------------

    def is_in(self, *states: ClassicState) -> bool:
        return self.state in states

    @property
    def empty(self) -> bool:
        return not self.members

    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def static_member_id(self, instance_id: str | None) -> str | None:
        return None if instance_id is None else self.static_members.get(instance_id)

    def is_fenced(self, member_id: str, instance_id: str | None) -> bool:
        """A static member whose instance id now belongs to another member id."""
        if instance_id is None:
            return False
        current = self.static_members.get(instance_id)
        return current is not None and current != member_id

    def validate_member(self, member_id: str, instance_id: str | None) -> ErrorCode:
        if instance_id is not None:
            current = self.static_members.get(instance_id)
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if current != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
            return ErrorCode.NONE
        return ErrorCode.NONE if member_id in self.members else ErrorCode.UNKNOWN_MEMBER_ID

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def all_members_joined(self) -> bool:
        return all(m.awaiting_join for m in self.members.values()) and not self.pending_members

    def candidate_protocols(self) -> set[str]:
        members = list(self.members.values())
        if not members:
            return set()
        common = set(members[0].protocol_names())
        for m in members[1:]:
            common &= set(m.protocol_names())
        return common

    def supports(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        """Whether a member with these protocols may join (Kafka's supportsProtocols)."""
        names = {name for name, _ in protocols}
        if not self.members:
            return bool(protocol_type) and bool(names)
        return protocol_type == self.protocol_type and bool(names & self.candidate_protocols())

    def select_protocol(self) -> str:
        """Each member votes for its most preferred protocol that all members support; the
        protocol with the most votes wins (ties: the earliest in the leader's preference)."""
        candidates = self.candidate_protocols()
        if not candidates:
            raise ValueError("no protocol is supported by every member")
        votes: Counter[str] = Counter()
        for m in self.members.values():
            for name in m.protocol_names():
                if name in candidates:
                    votes[name] += 1
                    break
        leader = self.members.get(self.leader_id or "") or next(iter(self.members.values()))
        order = {name: i for i, name in enumerate(leader.protocol_names())}
        return min(votes, key=lambda n: (-votes[n], order.get(n, len(order)), n))

    def update_subscription(self) -> None:
        """Recompute the topics the group consumes (consumer protocol only)."""
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE or self.protocol_name is None:
            self.subscribed = None
            return
        topics: set[str] = set()
        for m in self.members.values():
            try:
                found = subscribed_topics(m.metadata(self.protocol_name))
            except KeyError:
                found = None
            if found is None:
                self.subscribed = None
                return
            topics |= found
        self.subscribed = topics

    # -- changes -----------------------------------------------------------------------------

    def transition(self, state: ClassicState, now_ms: int) -> None:
        self.state = state
        self.state_timestamp = now_ms

    def add(self, member: ClassicMember) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id

    def remove(self, member_id: str) -> ClassicMember | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        if member.instance_id is not None and self.static_members.get(member.instance_id) == (
            member_id
        ):
            del self.static_members[member.instance_id]
        self.pending_sync.discard(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def replace_static_member(self, instance_id: str, old_id: str, new_id: str) -> ClassicMember:
        """The static member with old_id continues as new_id (a restarted static consumer)."""
        member = self.members.pop(old_id)
        if member.join is not None:
            member.join.complete(JoinResult(ErrorCode.FENCED_INSTANCE_ID, old_id))
        if member.sync is not None:
            member.sync.complete(SyncResult(ErrorCode.FENCED_INSTANCE_ID))
        member.join = member.sync = None
        member.member_id = new_id
        self.members[new_id] = member
        self.static_members[instance_id] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        return member

    def elect_joined_leader(self) -> None:
        """Make sure the leader is a member that has joined this round."""
        leader = self.members.get(self.leader_id or "")
        if leader is not None and leader.awaiting_join:
            return
        for m in self.members.values():
            if m.awaiting_join:
                self.leader_id = m.member_id
                return
        self.leader_id = next(iter(self.members), None)

    # -- the persisted form --------------------------------------------------------------------

    def to_record(self, now_ms: int) -> GroupMetadataValue:
        protocol = self.protocol_name
        return GroupMetadataValue(
            protocol_type=self.protocol_type or "",
            generation=self.generation,
            protocol=protocol,
            leader=self.leader_id,
            current_state_timestamp=now_ms,
            members=[
                GroupMetadataValue.MemberMetadata(
                    member_id=m.member_id,
                    group_instance_id=m.instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout=m.rebalance_timeout_ms,
                    session_timeout=m.session_timeout_ms,
                    subscription=_metadata_or_empty(m, protocol),
                    assignment=m.assignment,
                )
                for m in self.members.values()
            ],
        )

    def apply_record(self, value: GroupMetadataValue, live: bool) -> None:
        """Replay a GroupMetadataValue. Loading (not live) rebuilds the group from it; on a
        live group the record was made from the group's own state, so this only keeps the
        persisted fields in step (generation, protocol, leader, member assignments)."""
        self.protocol_type = value.protocol_type or None
        self.generation = value.generation
        self.protocol_name = value.protocol
        if value.current_state_timestamp >= 0:
            self.state_timestamp = value.current_state_timestamp
        if live:
            for rec in value.members:
                m = self.members.get(rec.member_id)
                if m is not None:
                    m.assignment = bytes(rec.assignment)
            self.update_subscription()
            return
        self.members.clear()
        self.static_members.clear()
        self.pending_members.clear()
        self.pending_sync.clear()
        self.leader_id = None
        for rec in value.members:
            protocol = value.protocol or ""
            rebalance = rec.rebalance_timeout if rec.rebalance_timeout >= 0 else rec.session_timeout
            member = ClassicMember(
                member_id=rec.member_id,
                instance_id=rec.group_instance_id,
                client_id=rec.client_id,
                client_host=rec.client_host,
                rebalance_timeout_ms=rebalance,
                session_timeout_ms=rec.session_timeout,
                protocol_type=value.protocol_type,
                protocols=[(protocol, bytes(rec.subscription))],
                assignment=bytes(rec.assignment),
                is_new=False,
            )
            self.add(member)
        self.leader_id = value.leader if value.leader in self.members else self.leader_id
        self.state = ClassicState.STABLE if self.members else ClassicState.EMPTY
        self.update_subscription()


def _metadata_or_empty(member: ClassicMember, protocol: str | None) -> bytes:
    if protocol is None:
        return b""
    try:
        return member.metadata(protocol)
    except KeyError:
        return b""
