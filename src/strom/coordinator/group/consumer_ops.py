"""The consumer group protocol of KIP-848: ConsumerGroupHeartbeat and ConsumerGroupDescribe.

One heartbeat does everything: join (member epoch 0), keep alive, report owned partitions, leave
(epoch -1; -2 for a static member that will come back). The coordinator, not a client leader,
assigns: a change of membership or subscriptions bumps the group epoch, the server-side assignor
("uniform" or "range") computes the target assignment for that epoch, and each member is moved
towards its target one heartbeat at a time, revoking before another member is given a
partition. Every change is written as records (group epoch, subscription metadata, member
metadata, target assignment, current assignment) and applied by replay.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from strom.coordinator.deferred import Deferred
from strom.coordinator.errors import write_error
from strom.coordinator.group.assignors import ASSIGNORS, Assignment, MemberSpec
from strom.coordinator.group.classic import ClassicGroup, ClassicState
from strom.coordinator.group.consumer import (
    LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
    ConsumerGroup,
    ConsumerMember,
    MemberState,
    reconcile,
    same_assignment,
)
from strom.coordinator.group.records import (
    Record,
    consumer_group_metadata_record,
    current_assignment_record,
    member_metadata_record,
    partition_metadata_record,
    target_assignment_member_record,
    target_assignment_metadata_record,
)
from strom.coordinator.group.results import DescribedGroup, DescribedMember
from strom.coordinator.group.state import GroupState
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.messages.consumer_protocol import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)
from strom.protocol.messages.group_coordinator import (
    ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataValue,
    ConsumerGroupPartitionMetadataValue,
    ConsumerGroupTargetAssignmentMemberValue,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ConsumerHeartbeat:
    """A ConsumerGroupHeartbeat request's fields (None: unchanged since the last heartbeat)."""

    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: list[str] | None = None
    server_assignor: str | None = None
    owned: Assignment | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_regex: str | None = None
    api_version: int = 0


@dataclass(slots=True)
class ConsumerHeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Assignment | None = None


def _fail(code: ErrorCode, message: str | None = None) -> Deferred[ConsumerHeartbeatResult]:
    return Deferred.of(ConsumerHeartbeatResult(code, message))


def _topic_partitions(cls: type, a: Assignment) -> list:
    return [cls(topic_id=tid, partitions=sorted(ps)) for tid, ps in sorted(a.items()) if ps]


def _owner(group: ConsumerGroup, tid: bytes, p: int, replaced: ConsumerMember | None) -> str | None:
    holder = group.owners.get((tid, p))
    if replaced is not None and holder == replaced.member_id:
        return None
    return holder


def _is_subset(owned: Assignment | None, assigned: Assignment) -> bool:
    if owned is None:
        return False
    return all(ps <= assigned.get(tid, set()) for tid, ps in owned.items())


class ConsumerProtocol:
    """ConsumerGroupHeartbeat and ConsumerGroupDescribe, on the group state the coordinator shares."""

    def __init__(self, state: GroupState) -> None:
        self.state = state
        self.groups = state.groups
        self.config = state.config
        self.timer = state.timer
        self.topics = state.topics

    def consumer_group_heartbeat(self, req: ConsumerHeartbeat) -> Deferred[ConsumerHeartbeatResult]:
        """The member's new epoch and assignment, once the records saying so are committed."""
        error = self.state.check_available(req.group_id)
        if error != ErrorCode.NONE:
            return _fail(error)
        invalid = self._invalid_heartbeat(req)
        if invalid is not None:
            log.info(
                "consumer group %s: invalid heartbeat from %s: %s",
                req.group_id,
                req.client_id,
                invalid,
            )
            return _fail(ErrorCode.INVALID_REQUEST, invalid)
        if (
            req.server_assignor is not None
            and req.server_assignor not in self.config.consumer_assignors
        ):
            return _fail(
                ErrorCode.UNSUPPORTED_ASSIGNOR,
                f"ServerAssignor {req.server_assignor} is not supported. Supported assignors: "
                f"{', '.join(self.config.consumer_assignors)}.",
            )
        if req.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
            return self._consumer_leave(req)
        group = self.groups.get(req.group_id)
        if isinstance(group, ClassicGroup):
            if group.members or group.pending_members or group.state != ClassicState.EMPTY:
                return _fail(
                    ErrorCode.GROUP_ID_NOT_FOUND, f"Group {req.group_id} is not a consumer group."
                )
            # An empty classic group (or one that only holds offsets) becomes a consumer group:
            # once its record is deleted (replay drops it), the heartbeat starts over.
            if group.generation > 0:
                return self.state.write(req.group_id, self.state.group_tombstones(group)).then(
                    lambda written: (
                        self.consumer_group_heartbeat(req)
                        if written == ErrorCode.NONE
                        else _fail(write_error(written))
                    )
                )
            self.groups.pop(req.group_id, None)
            group = None
        created = False
        if group is None:
            if req.member_epoch != 0:
                return _fail(
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    f"Group {req.group_id} has no member {req.member_id}.",
                )
            group = ConsumerGroup(req.group_id)
            group.state_timestamp = self.state.now_ms()
            self.groups[req.group_id] = group
            created = True
        try:
            result = self._consumer_heartbeat(group, req)
        except KafkaError as e:
            result = _fail(e.code, e.message)
        if created:
            result.add_callback(lambda _: self._forget_if_empty(group))
        return result

    def _forget_if_empty(self, group: ConsumerGroup) -> None:
        """A group made for a heartbeat that failed leaves nothing behind."""
        if not group.members and self.groups.get(group.group_id) is group:
            del self.groups[group.group_id]

    def _invalid_heartbeat(self, req: ConsumerHeartbeat) -> str | None:
        if not req.group_id:
            return "GroupId can't be empty."
        if req.instance_id is not None and not req.instance_id:
            return "InstanceId can't be empty."
        if req.rack_id is not None and not req.rack_id:
            return "RackId can't be empty."
        if req.member_epoch > 0 or req.member_epoch == LEAVE_EPOCH:
            if not req.member_id:
                return "MemberId can't be empty."
        elif req.member_epoch == 0:
            if req.api_version >= 1 and not req.member_id:
                return "MemberId can't be empty."  # v1: members make their own ids
            if req.rebalance_timeout_ms == -1:
                return "RebalanceTimeoutMs must be provided in first request."
            if req.owned is None or any(req.owned.values()):
                return "TopicPartitions must be empty when (re-)joining."
            if not req.subscribed_topic_names and not req.subscribed_topic_regex:
                return "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
        elif req.member_epoch == STATIC_LEAVE_EPOCH:
            if req.instance_id is None:
                return "InstanceId can't be null."
        else:
            return f"MemberEpoch {req.member_epoch} is invalid."
        if req.subscribed_topic_regex:
            try:
                re.compile(req.subscribed_topic_regex)
            except re.error as e:
                return f"SubscribedTopicRegex {req.subscribed_topic_regex!r} is invalid: {e}"
        return None

    def _consumer_heartbeat(
        self, group: ConsumerGroup, req: ConsumerHeartbeat
    ) -> Deferred[ConsumerHeartbeatResult]:
        gid = group.group_id
        records: list[Record] = []
        replaced: ConsumerMember | None = None
        if req.member_epoch == 0:
            member_id = req.member_id or str(uuid.uuid4())
            existing = group.members.get(member_id)
            if req.instance_id is not None:
                old_id = group.static_members.get(req.instance_id)
                if old_id is not None and old_id != member_id:
                    old = group.members[old_id]
                    if old.member_epoch != STATIC_LEAVE_EPOCH:
                        return _fail(
                            ErrorCode.UNRELEASED_INSTANCE_ID,
                            f"Static member {old_id} with instance id {req.instance_id} is "
                            "present in the consumer group.",
                        )
                    replaced = old
            if (
                existing is None
                and replaced is None
                and len(group.members) >= self.config.consumer_max_size
            ):
                return _fail(
                    ErrorCode.GROUP_MAX_SIZE_REACHED,
                    f"The consumer group has reached its maximum capacity of "
                    f"{self.config.consumer_max_size} members.",
                )
            member = existing or ConsumerMember(member_id)
        else:
            member_id = req.member_id
            member = group.members.get(member_id)
            if member is None:
                return _fail(
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    f"Member {member_id} is not a member of group {gid}.",
                )
            if req.instance_id is not None and member.instance_id != req.instance_id:
                return _fail(ErrorCode.FENCED_INSTANCE_ID)
            if req.member_epoch > member.member_epoch or (
                req.member_epoch < member.member_epoch
                and (
                    req.member_epoch != member.previous_member_epoch
                    or not _is_subset(req.owned, member.assigned)
                )
            ):
                return _fail(
                    ErrorCode.FENCED_MEMBER_EPOCH,
                    f"The consumer group member has a member epoch ({req.member_epoch}) that is "
                    f"not the one known by the group coordinator ({member.member_epoch}). The "
                    "member must abandon all its partitions and rejoin.",
                )
        # The member as this heartbeat leaves it.
        updated = ConsumerMember(
            member_id=member_id,
            instance_id=req.instance_id if req.instance_id is not None else member.instance_id,
            rack_id=req.rack_id if req.rack_id is not None else member.rack_id,
            client_id=req.client_id,
            client_host=req.client_host,
            subscribed_topics=(
                sorted(set(req.subscribed_topic_names))
                if req.subscribed_topic_names is not None
                else member.subscribed_topics
            ),
            subscribed_regex=(
                (req.subscribed_topic_regex or None)
                if req.subscribed_topic_regex is not None
                else member.subscribed_regex
            ),
            rebalance_timeout_ms=(
                req.rebalance_timeout_ms
                if req.rebalance_timeout_ms != -1
                else member.rebalance_timeout_ms
            ),
            server_assignor=(
                req.server_assignor if req.server_assignor is not None else member.server_assignor
            ),
            member_epoch=member.member_epoch,
            previous_member_epoch=member.previous_member_epoch,
            state=member.state,
            assigned=member.assigned,
            pending_revocation=member.pending_revocation,
        )
        target_of = group.target.get(member_id)
        if replaced is not None:
            # A static member back under a new member id takes the old id's place, epoch and
            # partitions: no rebalance.
            updated.member_epoch = replaced.member_epoch
            updated.previous_member_epoch = replaced.previous_member_epoch
            updated.state = replaced.state
            updated.assigned = replaced.assigned
            updated.pending_revocation = replaced.pending_revocation
            target_of = group.target.get(replaced.member_id, {})
            records += self._member_tombstones(gid, replaced.member_id)
            records.append(
                target_assignment_member_record(gid, member_id, _target_value(target_of))
            )
            records.append(current_assignment_record(gid, member_id, _current_value(updated)))
            self.timer.cancel(("cg-session", gid, replaced.member_id))
            self.timer.cancel(("cg-rebalance", gid, replaced.member_id))
            log.info(
                "consumer group %s: static member %s rejoined as %s (was %s)",
                gid,
                req.instance_id,
                member_id,
                replaced.member_id,
            )
        is_new = member_id not in group.members
        assigned_before = member.assigned  # replay replaces the member's dicts, never mutates
        bump = False
        if is_new or updated.metadata_key() != member.metadata_key():
            # The member metadata record goes first so that later records find the member.
            records.insert(0, member_metadata_record(gid, member_id, _member_value(updated)))
            if replaced is None and (
                is_new
                or set(updated.subscribed_topics) != set(member.subscribed_topics)
                or updated.subscribed_regex != member.subscribed_regex
                or updated.server_assignor != member.server_assignor
            ):
                bump = True
        members = {
            mid: m
            for mid, m in group.members.items()
            if replaced is None or mid != replaced.member_id
        }
        members[member_id] = updated
        subscription = self._subscription_metadata(members)
        if subscription != group.subscription_metadata:
            records.append(partition_metadata_record(gid, _partition_metadata_value(subscription)))
            bump = True
        group_epoch = group.epoch + 1 if bump else group.epoch
        if bump:
            records.append(consumer_group_metadata_record(gid, group_epoch))
        target_epoch = group.assignment_epoch
        if group_epoch > group.assignment_epoch:
            assignor = self._group_assignor(members)
            specs = {
                mid: MemberSpec(
                    frozenset(
                        subscription[t][0] for t in self._member_topics(m) if t in subscription
                    ),
                    m.rack_id,
                )
                for mid, m in members.items()
            }
            topics = {tid: n for tid, n in subscription.values()}
            current = {mid: group.target.get(mid, {}) for mid in members}
            if replaced is not None:
                current[member_id] = target_of or {}
            new_target = ASSIGNORS[assignor](specs, topics, current)
            for mid, a in new_target.items():
                if not same_assignment(a, current.get(mid, {})) or mid not in group.target:
                    records.append(target_assignment_member_record(gid, mid, _target_value(a)))
            records.append(target_assignment_metadata_record(gid, group_epoch))
            target_epoch = group_epoch
            my_target = new_target.get(member_id, {})
            log.info(
                "consumer group %s: epoch %d, %d members, assignor %s",
                gid,
                group_epoch,
                len(members),
                assignor,
            )
        else:
            my_target = target_of if target_of is not None else {}
        nxt = reconcile(
            updated,
            my_target,
            target_epoch,
            req.owned,
            lambda tid, p: _owner(group, tid, p, replaced),
        )
        changed = (
            nxt.epoch != updated.member_epoch
            or nxt.previous_epoch != updated.previous_member_epoch
            or nxt.state != updated.state
            or not same_assignment(nxt.assigned, updated.assigned)
            or not same_assignment(nxt.pending_revocation, updated.pending_revocation)
        )
        if changed or is_new:
            updated.member_epoch = nxt.epoch
            updated.previous_member_epoch = nxt.previous_epoch
            updated.state = nxt.state
            updated.assigned = nxt.assigned
            updated.pending_revocation = nxt.pending_revocation
            records.append(current_assignment_record(gid, member_id, _current_value(updated)))
        owned = req.owned
        first = req.member_epoch == 0
        return self.state.write(gid, records).map(
            lambda written: self._heartbeat_stored(
                group, member_id, owned, first, assigned_before, written
            )
        )

    def _heartbeat_stored(
        self,
        group: ConsumerGroup,
        member_id: str,
        owned: Assignment | None,
        first: bool,
        assigned_before: Assignment,
        written: ErrorCode,
    ) -> ConsumerHeartbeatResult:
        """The heartbeat's records are committed and applied (or not): the member's answer."""
        gid = group.group_id
        if written != ErrorCode.NONE:
            log.warning(
                "consumer group %s: heartbeat of %s not stored: %s", gid, member_id, written.name
            )
            return ConsumerHeartbeatResult(write_error(written))
        stored = group.members.get(member_id)
        if stored is None or self.groups.get(gid) is not group:
            return ConsumerHeartbeatResult(ErrorCode.UNKNOWN_MEMBER_ID)  # fenced meanwhile
        self.schedule_session(group, stored)
        if stored.state == MemberState.UNREVOKED_PARTITIONS:
            self._schedule_consumer_rebalance(group, stored)
        else:
            self.timer.cancel(("cg-rebalance", gid, member_id))
        send = owned is not None or first or not same_assignment(stored.assigned, assigned_before)
        return ConsumerHeartbeatResult(
            ErrorCode.NONE,
            None,
            member_id,
            stored.member_epoch,
            self.config.consumer_heartbeat_interval_ms,
            {t: set(ps) for t, ps in stored.assigned.items() if ps} if send else None,
        )

    def _subscription_metadata(
        self, members: dict[str, ConsumerMember]
    ) -> dict[str, tuple[bytes, int]]:
        names: set[str] = set()
        for m in members.values():
            names.update(self._member_topics(m))
        out = {}
        for name in sorted(names):
            tid = self.topics.topic_id(name)
            count = self.topics.partition_count(name)
            if tid is not None and count is not None:
                out[name] = (tid, count)
        return out

    def _member_topics(self, member: ConsumerMember) -> set[str]:
        """The topics a member subscribes to: by name, and those its regex matches (internal
        topics excepted)."""
        names = set(member.subscribed_topics)
        if member.subscribed_regex:
            try:
                pattern = re.compile(member.subscribed_regex)
            except re.error:
                return names
            names.update(
                t for t in self.topics.names() if not t.startswith("__") and pattern.fullmatch(t)
            )
        return names

    def _group_assignor(self, members: dict[str, ConsumerMember]) -> str:
        """The assignor most members ask for, else the first configured one."""
        votes: dict[str, int] = {}
        for m in members.values():
            if m.server_assignor in self.config.consumer_assignors:
                votes[m.server_assignor] = votes.get(m.server_assignor, 0) + 1
        if not votes:
            return self.config.consumer_assignors[0]
        return max(sorted(votes), key=lambda a: votes[a])

    def _member_tombstones(self, group_id: str, member_id: str) -> list[Record]:
        return [
            current_assignment_record(group_id, member_id, None),
            target_assignment_member_record(group_id, member_id, None),
            member_metadata_record(group_id, member_id, None),
        ]

    def _fence_records(self, group: ConsumerGroup, member_id: str) -> list[Record]:
        """Records removing a member: its records, then a group epoch bump (and the new
        subscription metadata when a topic is no longer subscribed)."""
        gid = group.group_id
        records = self._member_tombstones(gid, member_id)
        rest = {mid: m for mid, m in group.members.items() if mid != member_id}
        subscription = self._subscription_metadata(rest)
        if subscription != group.subscription_metadata:
            records.append(partition_metadata_record(gid, _partition_metadata_value(subscription)))
        records.append(consumer_group_metadata_record(gid, group.epoch + 1))
        return records

    def _fence_member(self, group: ConsumerGroup, member_id: str, why: str) -> Deferred[bool]:
        """Remove a member (records written, then applied): True once done."""
        gid = group.group_id

        def fenced(written: ErrorCode) -> bool:
            if written != ErrorCode.NONE:
                log.warning(
                    "consumer group %s: cannot remove member %s: %s", gid, member_id, written.name
                )
                return False
            self.timer.cancel(("cg-session", gid, member_id))
            self.timer.cancel(("cg-rebalance", gid, member_id))
            log.info("consumer group %s: member %s removed (%s)", gid, member_id, why)
            return True

        return self.state.write(gid, self._fence_records(group, member_id)).map(fenced)

    def _consumer_leave(self, req: ConsumerHeartbeat) -> Deferred[ConsumerHeartbeatResult]:
        group = self.groups.get(req.group_id)
        if not isinstance(group, ConsumerGroup):
            return _fail(ErrorCode.UNKNOWN_MEMBER_ID, f"Group {req.group_id} has no such member.")
        member = group.members.get(req.member_id)
        if member is None and req.instance_id is not None:
            mid = group.static_members.get(req.instance_id)
            member = group.members.get(mid) if mid is not None else None
        if member is None:
            return _fail(ErrorCode.UNKNOWN_MEMBER_ID, f"Member {req.member_id} is unknown.")
        if req.instance_id is not None and member.instance_id != req.instance_id:
            return _fail(ErrorCode.FENCED_INSTANCE_ID)
        member_id = member.member_id
        if req.member_epoch == LEAVE_EPOCH or member.instance_id is None:
            return self._fence_member(group, member_id, "left the group").map(
                lambda fenced: (
                    ConsumerHeartbeatResult(ErrorCode.NONE, None, member_id, LEAVE_EPOCH, 0, None)
                    if fenced
                    else ConsumerHeartbeatResult(ErrorCode.COORDINATOR_NOT_AVAILABLE)
                )
            )
        # A static member leaving for a while: it keeps its partitions for the session timeout.
        left = ConsumerMember(
            member_id=member.member_id,
            member_epoch=STATIC_LEAVE_EPOCH,
            previous_member_epoch=member.member_epoch,
            state=member.state,
            assigned=member.assigned,
            pending_revocation=member.pending_revocation,
        )

        def left_for_now(written: ErrorCode) -> ConsumerHeartbeatResult:
            if written != ErrorCode.NONE:
                return ConsumerHeartbeatResult(write_error(written))
            stored = group.members.get(member_id)
            if stored is not None:
                self.schedule_session(group, stored)
            return ConsumerHeartbeatResult(
                ErrorCode.NONE, None, member_id, STATIC_LEAVE_EPOCH, 0, None
            )

        record = current_assignment_record(group.group_id, member_id, _current_value(left))
        return self.state.write(group.group_id, [record]).map(left_for_now)

    # -- timers ------------------------------------------------------------------------------

    def schedule_session(self, group: ConsumerGroup, member: ConsumerMember) -> None:
        gid, mid = group.group_id, member.member_id
        self.timer.schedule(
            ("cg-session", gid, mid),
            self.config.consumer_session_timeout_ms,
            lambda: self._consumer_session_expired(gid, mid),
        )

    def _consumer_session_expired(self, group_id: str, member_id: str) -> None:
        group = self.groups.get(group_id)
        if isinstance(group, ConsumerGroup) and member_id in group.members:
            self._fence_member(group, member_id, "session timed out")

    def _schedule_consumer_rebalance(self, group: ConsumerGroup, member: ConsumerMember) -> None:
        gid, mid, epoch = group.group_id, member.member_id, member.member_epoch
        key = ("cg-rebalance", gid, mid)
        if self.timer.scheduled(key):
            return
        timeout = member.rebalance_timeout_ms if member.rebalance_timeout_ms > 0 else 300_000
        self.timer.schedule(key, timeout, lambda: self._consumer_rebalance_expired(gid, mid, epoch))

    def _consumer_rebalance_expired(self, group_id: str, member_id: str, epoch: int) -> None:
        group = self.groups.get(group_id)
        if not isinstance(group, ConsumerGroup):
            return
        member = group.members.get(member_id)
        if (
            member is not None
            and member.state == MemberState.UNREVOKED_PARTITIONS
            and member.member_epoch == epoch
        ):
            self._fence_member(group, member_id, "did not revoke its partitions in time")

    # -- describe ------------------------------------------------------------------------------

    def consumer_group_describe(self, group_ids: list[str]) -> list[dict]:
        """ConsumerGroupDescribe: one dict per group (the handler shapes the response)."""
        out = []
        for gid in group_ids:
            error = self.state.check_available(gid)
            if error != ErrorCode.NONE:
                out.append({"group_id": gid, "error": error, "message": None})
                continue
            if not gid:
                out.append({"group_id": gid, "error": ErrorCode.INVALID_GROUP_ID, "message": None})
                continue
            group = self.groups.get(gid)
            if not isinstance(group, ConsumerGroup):
                message = (
                    f"Group {gid} not found."
                    if group is None
                    else f"Group {gid} is not a consumer group."
                )
                out.append(
                    {"group_id": gid, "error": ErrorCode.GROUP_ID_NOT_FOUND, "message": message}
                )
                continue
            members = []
            for m in group.members.values():
                members.append(
                    {
                        "member_id": m.member_id,
                        "instance_id": m.instance_id,
                        "rack_id": m.rack_id,
                        "member_epoch": m.member_epoch,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "subscribed_topic_names": list(m.subscribed_topics),
                        "subscribed_topic_regex": m.subscribed_regex,
                        "assignment": self._named(m.assigned),
                        "target_assignment": self._named(group.target.get(m.member_id, {})),
                    }
                )
            out.append(
                {
                    "group_id": gid,
                    "error": ErrorCode.NONE,
                    "message": None,
                    "state": group.state().value,
                    "group_epoch": group.epoch,
                    "assignment_epoch": group.assignment_epoch,
                    "assignor": self._group_assignor(group.members),
                    "members": members,
                }
            )
        return out

    def _named(self, a: Assignment) -> list[tuple[bytes, str, list[int]]]:
        out = []
        for tid, parts in sorted(a.items()):
            if parts:
                out.append((tid, self.topics.topic_name(tid) or "", sorted(parts)))
        return out

    def describe_as_classic(self, group: ConsumerGroup) -> DescribedGroup:
        """DescribeGroups of a consumer group: its members with consumer-protocol encoded
        subscriptions and assignments, as a classic consumer group would show them."""

        members = []
        for m in group.members.values():
            sub = ConsumerProtocolSubscription(topics=list(m.subscribed_topics))
            assigned = ConsumerProtocolAssignment(
                assigned_partitions=[
                    ConsumerProtocolAssignment.TopicPartition(topic=name, partitions=parts)
                    for _, name, parts in self._named(m.assigned)
                ]
            )
            members.append(
                DescribedMember(
                    m.member_id,
                    m.instance_id,
                    m.client_id,
                    m.client_host,
                    b"\x00\x00" + sub.encode(0),
                    b"\x00\x00" + assigned.encode(0),
                )
            )
        return DescribedGroup(
            group.group_id,
            ErrorCode.NONE,
            group.state().value,
            "consumer",
            self._group_assignor(group.members),
            members,
        )


# -- record values -----------------------------------------------------------------------------


def _member_value(m: ConsumerMember) -> ConsumerGroupMemberMetadataValue:
    return ConsumerGroupMemberMetadataValue(
        instance_id=m.instance_id,
        rack_id=m.rack_id,
        client_id=m.client_id,
        client_host=m.client_host,
        subscribed_topic_names=list(m.subscribed_topics),
        subscribed_topic_regex=m.subscribed_regex,
        rebalance_timeout_ms=m.rebalance_timeout_ms,
        server_assignor=m.server_assignor,
    )


def _current_value(m: ConsumerMember) -> ConsumerGroupCurrentMemberAssignmentValue:
    cls = ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions
    return ConsumerGroupCurrentMemberAssignmentValue(
        member_epoch=m.member_epoch,
        previous_member_epoch=m.previous_member_epoch,
        state=int(m.state),
        assigned_partitions=_topic_partitions(cls, m.assigned),
        partitions_pending_revocation=_topic_partitions(cls, m.pending_revocation),
    )


def _target_value(a: Assignment) -> ConsumerGroupTargetAssignmentMemberValue:
    cls = ConsumerGroupTargetAssignmentMemberValue.TopicPartition
    return ConsumerGroupTargetAssignmentMemberValue(topic_partitions=_topic_partitions(cls, a))


def _partition_metadata_value(
    subscription: dict[str, tuple[bytes, int]],
) -> ConsumerGroupPartitionMetadataValue:
    cls = ConsumerGroupPartitionMetadataValue.TopicMetadata
    return ConsumerGroupPartitionMetadataValue(
        topics=[
            cls(topic_id=tid, topic_name=name, num_partitions=n, partition_metadata=[])
            for name, (tid, n) in sorted(subscription.items())
        ]
    )
