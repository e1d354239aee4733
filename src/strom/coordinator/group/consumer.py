"""Consumer groups of KIP-848 (ConsumerGroupHeartbeat): the state the records describe.

Every field here is set only by replaying a record (group epoch, subscription metadata, member
metadata, target assignment, current member assignment), so the group after loading is the
group before a restart. `reconcile` is the pure rule that moves a member from its current
assignment towards its target: partitions are revoked before they are given to another member.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from strom.coordinator.group.assignors import Assignment

LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2


class MemberState(enum.IntEnum):
    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127


class ConsumerGroupState(enum.Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(eq=False)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topics: list[str] = field(default_factory=list)
    subscribed_regex: str | None = None
    rebalance_timeout_ms: int = -1
    server_assignor: str | None = None
    # current assignment (record 8)
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)

    def metadata_key(self) -> tuple:
        return (
            self.instance_id,
            self.rack_id,
            self.client_id,
            self.client_host,
            tuple(self.subscribed_topics),
            self.subscribed_regex,
            self.rebalance_timeout_ms,
            self.server_assignor,
        )

    def assignment_key(self) -> tuple:
        return (
            self.member_epoch,
            self.previous_member_epoch,
            self.state,
            _frozen(self.assigned),
            _frozen(self.pending_revocation),
        )


def _frozen(a: Assignment) -> frozenset:
    return frozenset((t, frozenset(ps)) for t, ps in a.items() if ps)


def same_assignment(a: Assignment, b: Assignment) -> bool:
    return _frozen(a) == _frozen(b)


class ConsumerGroup:
    """A consumer group as its records left it."""

    kind = "consumer"

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.epoch = 0
        self.subscription_metadata: dict[str, tuple[bytes, int]] = {}  # name -> (id, parts)
        self.members: dict[str, ConsumerMember] = {}
        self.static_members: dict[str, str] = {}
        self.assignment_epoch = 0
        self.target: dict[str, Assignment] = {}
        self.owners: dict[tuple[bytes, int], str] = {}  # partition -> member owning it now
        self.deleted = False
        self.state_timestamp = 0

    # -- queries -----------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not self.members

    def state(self) -> ConsumerGroupState:
        if self.deleted:
            return ConsumerGroupState.DEAD
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.epoch != self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        for m in self.members.values():
            if m.member_epoch != self.assignment_epoch or m.state != MemberState.STABLE:
                return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def subscribed_topic_names(self) -> set[str]:
        names: set[str] = set()
        for m in self.members.values():
            names.update(m.subscribed_topics)
        return names

    def owner_of(self, topic_id: bytes, partition: int) -> str | None:
        return self.owners.get((topic_id, partition))

    # -- replay --------------------------------------------------------------------------------

    def _unown(self, member: ConsumerMember) -> None:
        for a in (member.assigned, member.pending_revocation):
            for tid, parts in a.items():
                for p in parts:
                    if self.owners.get((tid, p)) == member.member_id:
                        del self.owners[(tid, p)]

    def _own(self, member: ConsumerMember) -> None:
        for a in (member.assigned, member.pending_revocation):
            for tid, parts in a.items():
                for p in parts:
                    self.owners[(tid, p)] = member.member_id

    def put_member_metadata(self, member: ConsumerMember) -> None:
        old = self.members.get(member.member_id)
        if old is not None:
            # Keep the current assignment, which another record carries.
            member.member_epoch = old.member_epoch
            member.previous_member_epoch = old.previous_member_epoch
            member.state = old.state
            member.assigned = old.assigned
            member.pending_revocation = old.pending_revocation
            if (
                old.instance_id is not None
                and old.instance_id != member.instance_id
                and self.static_members.get(old.instance_id) == member.member_id
            ):
                del self.static_members[old.instance_id]
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id

    def remove_member(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        if member is None:
            return
        self._unown(member)
        if member.instance_id is not None and (
            self.static_members.get(member.instance_id) == member_id
        ):
            del self.static_members[member.instance_id]

    def put_current_assignment(
        self,
        member_id: str,
        epoch: int,
        previous_epoch: int,
        state: MemberState,
        assigned: Assignment,
        pending: Assignment,
    ) -> None:
        member = self.members.get(member_id)
        if member is None:
            # The metadata record comes first in every write; on load a compacted log may
            # order them either way, so make the member and let its metadata fill in later.
            member = ConsumerMember(member_id)
            self.members[member_id] = member
        self._unown(member)
        member.member_epoch = epoch
        member.previous_member_epoch = previous_epoch
        member.state = state
        member.assigned = assigned
        member.pending_revocation = pending
        self._own(member)

    def clear_current_assignment(self, member_id: str) -> None:
        member = self.members.get(member_id)
        if member is None:
            return
        self._unown(member)
        member.assigned = {}
        member.pending_revocation = {}
        member.member_epoch = 0
        member.previous_member_epoch = 0
        member.state = MemberState.STABLE


# -- reconciliation ------------------------------------------------------------------------------


@dataclass(slots=True)
class NextAssignment:
    epoch: int
    previous_epoch: int
    state: MemberState
    assigned: Assignment
    pending_revocation: Assignment


def _owns_any(owned: Assignment | None, partitions: Assignment) -> bool:
    """Whether the member still reports any of these partitions (None: it did not report, so
    it is taken to still own them)."""
    if owned is None:
        return True
    return any(parts & owned.get(tid, set()) for tid, parts in partitions.items())


def reconcile(
    member: ConsumerMember,
    target: Assignment,
    target_epoch: int,
    owned: Assignment | None,
    owner_of: callable,  # (topic id, partition) -> member id or None
) -> NextAssignment:
    """The member's next current assignment (Kafka's reconciliation rules):

    - in STABLE at the target epoch nothing changes;
    - partitions it has that the target drops are revoked first: the member keeps its epoch,
      goes to UNREVOKED_PARTITIONS and waits until its heartbeat no longer reports them;
    - then it moves to the target epoch with every target partition that no other member still
      owns; the rest are UNRELEASED_PARTITIONS, given as their owners release them.
    """
    epoch = member.member_epoch
    keep = NextAssignment(
        epoch,
        member.previous_member_epoch,
        member.state,
        member.assigned,
        member.pending_revocation,
    )
    if member.state == MemberState.STABLE and epoch == target_epoch:
        return keep
    if member.state == MemberState.UNREVOKED_PARTITIONS and _owns_any(
        owned, member.pending_revocation
    ):
        return keep
    base_epoch = epoch
    assigned_now: Assignment = {}
    revoke: Assignment = {}
    pending_assign: Assignment = {}
    unreleased = False
    for tid in set(target) | set(member.assigned):
        want = target.get(tid, set())
        have = member.assigned.get(tid, set())
        kept = have & want
        if kept:
            assigned_now[tid] = set(kept)
        gone = have - kept
        if gone:
            revoke[tid] = gone
        new = set()
        for p in want - kept:
            holder = owner_of(tid, p)
            if holder is not None and holder != member.member_id:
                unreleased = True
            else:
                new.add(p)
        if new:
            pending_assign[tid] = new
    if revoke and _owns_any(owned, revoke):
        return NextAssignment(
            base_epoch,
            member.previous_member_epoch,
            MemberState.UNREVOKED_PARTITIONS,
            assigned_now,
            revoke,
        )
    for tid, parts in pending_assign.items():
        assigned_now.setdefault(tid, set()).update(parts)
    state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
    previous = epoch if target_epoch != epoch else member.previous_member_epoch
    return NextAssignment(target_epoch, previous, state, assigned_now, {})
