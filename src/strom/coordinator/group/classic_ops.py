"""The classic group protocol: JoinGroup, SyncGroup, Heartbeat and LeaveGroup (Kafka's rules).

A rebalance: the first join of an Empty group starts PreparingRebalance with the initial delay
(group.initial.rebalance.delay.ms, extended while members keep arriving, up to the rebalance
timeout); later rebalances wait until every known member has rejoined or the rebalance timeout
passes (members that did not rejoin are removed). Then the generation is bumped, a protocol
chosen, and the JoinGroup answers go out (the leader gets every member's metadata); the group
is CompletingRebalance until the leader's SyncGroup brings the assignments, which are written
to __consumer_offsets before anyone gets theirs (Stable).

Dynamic members joining with JoinGroup v4+ first get MEMBER_ID_REQUIRED and an id, which they
must bring back within the session timeout. Static members (group.instance.id, KIP-345) skip
that; one rejoining under a new member id replaces the old id without a rebalance when nothing
else changed.
"""

from __future__ import annotations

import logging
import uuid

from strom.coordinator.deferred import Deferred
from strom.coordinator.errors import write_error
from strom.coordinator.group.classic import (
    ClassicGroup,
    ClassicMember,
    ClassicState,
    JoinResult,
    SyncResult,
)
from strom.coordinator.group.records import group_metadata_record
from strom.coordinator.group.state import GroupState
from strom.protocol.errors import ErrorCode

log = logging.getLogger(__name__)


def _log_failure(written: ErrorCode, message: str, group_id: str) -> None:
    if written != ErrorCode.NONE:
        log.warning(message + ": %s", group_id, written.name)


def _new_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


class ClassicProtocol:
    """JoinGroup, SyncGroup, Heartbeat and LeaveGroup, on the group state the coordinator shares."""

    def __init__(self, state: GroupState) -> None:
        self.state = state
        self.groups = state.groups
        self.config = state.config
        self.timer = state.timer
        self.offsets = state.offsets

    # -- JoinGroup ---------------------------------------------------------------------------

    def join_group(
        self,
        group_id: str,
        member_id: str,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        require_known_member_id: bool = True,
        api_version: int = 9,
        reason: str | None = None,
    ) -> Deferred[JoinResult]:
        def fail(code: ErrorCode) -> Deferred[JoinResult]:
            return Deferred.of(JoinResult(code, member_id))

        error = self.state.check_available(group_id)
        if error != ErrorCode.NONE:
            return fail(error)
        if not group_id:
            return fail(ErrorCode.INVALID_GROUP_ID)
        cfg = self.config
        if not cfg.min_session_timeout_ms <= session_timeout_ms <= cfg.max_session_timeout_ms:
            return fail(ErrorCode.INVALID_SESSION_TIMEOUT)
        if rebalance_timeout_ms < 0:
            rebalance_timeout_ms = session_timeout_ms
        if sum(len(n) + len(d) for n, d in protocols) > cfg.max_member_metadata_bytes:
            log.warning(
                "group %s: refusing a join with %d bytes of protocol metadata",
                group_id,
                sum(len(d) for _, d in protocols),
            )
            return fail(ErrorCode.INVALID_REQUEST)
        group = self.groups.get(group_id)
        if group is not None and not isinstance(group, ClassicGroup):
            if group.members:
                return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)

            # An empty consumer group becomes a classic group (its offsets stay): once its
            # records are deleted (replay drops it), the join starts over.
            def rejoin(written: ErrorCode) -> Deferred[JoinResult]:
                if written != ErrorCode.NONE:
                    return fail(write_error(written))
                return self.join_group(
                    group_id,
                    member_id,
                    instance_id,
                    client_id,
                    client_host,
                    session_timeout_ms,
                    rebalance_timeout_ms,
                    protocol_type,
                    protocols,
                    require_known_member_id,
                    api_version,
                    reason,
                )

            return self.state.write(group_id, self.state.group_tombstones(group)).then(rejoin)
        if group is None:
            if member_id:
                return fail(ErrorCode.UNKNOWN_MEMBER_ID)
            group = ClassicGroup(group_id, self.state.now_ms())
            self.groups[group_id] = group
        if group.state == ClassicState.DEAD:
            return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if not group.supports(protocol_type, protocols):
            return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        args = (
            client_id,
            client_host,
            session_timeout_ms,
            rebalance_timeout_ms,
            protocol_type,
            protocols,
        )
        if not member_id:
            result = self._join_new_member(
                group, instance_id, require_known_member_id, api_version, *args
            )
        else:
            result = self._join_known_member(group, member_id, instance_id, *args)
        self._try_complete_join(group)
        if result.done and result.result.error != ErrorCode.NONE:
            self._maybe_forget(group)  # a refused join leaves nothing behind
        return result

    def _join_new_member(
        self,
        group: ClassicGroup,
        instance_id: str | None,
        require_known_member_id: bool,
        api_version: int,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
    ) -> Deferred[JoinResult]:
        if instance_id is not None:
            old_id = group.static_member_id(instance_id)
            new_id = _new_member_id(instance_id)
            if old_id is not None:
                return self._replace_static_member(
                    group,
                    instance_id,
                    old_id,
                    new_id,
                    api_version,
                    client_id,
                    client_host,
                    session_timeout_ms,
                    rebalance_timeout_ms,
                    protocols,
                )
        else:
            new_id = _new_member_id(client_id)
        if len(group.members) >= self._max_size():
            return Deferred.of(JoinResult(ErrorCode.GROUP_MAX_SIZE_REACHED, ""))
        if instance_id is None and require_known_member_id:
            if (
                len(group.pending_members) >= self.config.max_pending_members
                or self.state.pending_total >= self.config.max_pending_members_total
            ):
                log.warning(
                    "group %s: %d member ids pending a rejoin (%d in all), refusing another",
                    group.group_id,
                    len(group.pending_members),
                    self.state.pending_total,
                )
                return Deferred.of(JoinResult(ErrorCode.GROUP_MAX_SIZE_REACHED, ""))
            group.pending_members.add(new_id)
            self.state.pending_total += 1
            gid = group.group_id
            self.timer.schedule(
                ("pending", gid, new_id),
                session_timeout_ms,
                lambda: self._pending_member_expired(gid, new_id),
            )
            return Deferred.of(JoinResult(ErrorCode.MEMBER_ID_REQUIRED, new_id))
        return self._add_member_and_rebalance(
            group,
            new_id,
            instance_id,
            client_id,
            client_host,
            session_timeout_ms,
            rebalance_timeout_ms,
            protocol_type,
            protocols,
        )

    def _max_size(self) -> int:
        return self.config.max_size

    def _join_known_member(
        self,
        group: ClassicGroup,
        member_id: str,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
    ) -> Deferred[JoinResult]:
        def fail(code: ErrorCode) -> Deferred[JoinResult]:
            return Deferred.of(JoinResult(code, member_id))

        if member_id in group.pending_members:
            self.drop_pending(group, member_id)
            if len(group.members) >= self._max_size():
                return fail(ErrorCode.GROUP_MAX_SIZE_REACHED)
            return self._add_member_and_rebalance(
                group,
                member_id,
                instance_id,
                client_id,
                client_host,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocol_type,
                protocols,
            )
        if group.is_fenced(member_id, instance_id):
            return fail(ErrorCode.FENCED_INSTANCE_ID)
        member = group.members.get(member_id)
        if member is None:
            return fail(ErrorCode.UNKNOWN_MEMBER_ID)
        state = group.state
        if state == ClassicState.PREPARING_REBALANCE:
            return self._update_member_and_rebalance(
                group, member, protocols, session_timeout_ms, rebalance_timeout_ms, "rejoin"
            )
        if state == ClassicState.COMPLETING_REBALANCE:
            if member.matches(protocols):
                # The join response was lost: answer again with this generation.
                return Deferred.of(self._current_join_result(group, member_id, full=True))
            return self._update_member_and_rebalance(
                group,
                member,
                protocols,
                session_timeout_ms,
                rebalance_timeout_ms,
                f"member {member_id} changed its protocols while the group was completing a "
                "rebalance",
            )
        if state == ClassicState.STABLE:
            if group.leader_id == member_id or not member.matches(protocols):
                # A leader's rejoin forces a rebalance (it may have seen metadata change).
                reason = (
                    f"leader {member_id} rejoined"
                    if group.leader_id == member_id
                    else f"member {member_id} changed its protocols"
                )
                return self._update_member_and_rebalance(
                    group, member, protocols, session_timeout_ms, rebalance_timeout_ms, reason
                )
            self.schedule_heartbeat(group, member)
            return Deferred.of(self._current_join_result(group, member_id, full=False))
        return fail(ErrorCode.UNKNOWN_MEMBER_ID)

    def _current_join_result(self, group: ClassicGroup, member_id: str, full: bool) -> JoinResult:
        leader = group.leader_id == member_id
        return JoinResult(
            ErrorCode.NONE,
            member_id,
            group.generation,
            group.protocol_type,
            group.protocol_name,
            group.leader_id or "",
            self._member_list(group) if (leader and full) else [],
        )

    def _member_list(self, group: ClassicGroup) -> list:
        protocol = group.protocol_name or ""
        out = []
        for m in group.members.values():
            try:
                meta = m.metadata(protocol)
            except KeyError:
                meta = b""
            out.append((m.member_id, m.instance_id, meta))
        return out

    def _add_member_and_rebalance(
        self,
        group: ClassicGroup,
        member_id: str,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
    ) -> Deferred[JoinResult]:
        member = ClassicMember(
            member_id=member_id,
            instance_id=instance_id,
            client_id=client_id,
            client_host=client_host,
            rebalance_timeout_ms=rebalance_timeout_ms,
            session_timeout_ms=session_timeout_ms,
            protocol_type=protocol_type,
            protocols=protocols,
        )
        member.join = Deferred()
        group.add(member)
        if group.state == ClassicState.PREPARING_REBALANCE and group.initial_join:
            group.new_member_added = True
        self.schedule_heartbeat(group, member)
        self._maybe_prepare_rebalance(group, f"member {member_id} joined")
        return member.join

    def _update_member_and_rebalance(
        self,
        group: ClassicGroup,
        member: ClassicMember,
        protocols: list[tuple[str, bytes]],
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        reason: str,
    ) -> Deferred[JoinResult]:
        member.protocols = protocols
        member.session_timeout_ms = session_timeout_ms
        member.rebalance_timeout_ms = rebalance_timeout_ms
        if member.join is not None and not member.join.done:
            # A second join of the same member (a retry on a new connection): the old
            # request's answer would go nowhere.
            member.join.complete(JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member.member_id))
        member.join = Deferred()
        self.schedule_heartbeat(group, member)
        self._maybe_prepare_rebalance(group, reason)
        return member.join

    def _replace_static_member(
        self,
        group: ClassicGroup,
        instance_id: str,
        old_id: str,
        new_id: str,
        api_version: int,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocols: list[tuple[str, bytes]],
    ) -> Deferred[JoinResult]:
        """A static member came back with a new member id (a restarted consumer)."""
        member = group.members[old_id]
        old_state = (
            list(member.protocols),
            member.session_timeout_ms,
            member.rebalance_timeout_ms,
            member.client_id,
            member.client_host,
        )
        self.timer.cancel(("hb", group.group_id, old_id))
        group.replace_static_member(instance_id, old_id, new_id)
        member.protocols = protocols
        member.session_timeout_ms = session_timeout_ms
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.client_id = client_id
        member.client_host = client_host
        self.schedule_heartbeat(group, member)
        log.info(
            "group %s: static member %s rejoined as %s (was %s)",
            group.group_id,
            instance_id,
            new_id,
            old_id,
        )
        if group.state == ClassicState.STABLE:
            selected = group.protocol_name
            if selected is None or group.select_protocol() != selected:
                member.join = Deferred()
                self._prepare_rebalance(group, f"static member {instance_id} changed protocols")
                return member.join

            def stored(written: ErrorCode) -> JoinResult:
                if written != ErrorCode.NONE:
                    if group.members.get(new_id) is member:  # put the old member back
                        self.timer.cancel(("hb", group.group_id, new_id))
                        group.replace_static_member(instance_id, new_id, old_id)
                        (
                            member.protocols,
                            member.session_timeout_ms,
                            member.rebalance_timeout_ms,
                            member.client_id,
                            member.client_host,
                        ) = old_state
                        self.schedule_heartbeat(group, member)
                    return JoinResult(write_error(written), "")
                result = self._current_join_result(group, new_id, full=True)
                result.skip_assignment = group.leader_id == new_id
                return result

            return self.state.write(group.group_id, [self._group_record(group)]).map(stored)
        member.join = Deferred()
        if group.state == ClassicState.COMPLETING_REBALANCE:
            self._prepare_rebalance(group, f"static member {instance_id} rejoined during sync")
        return member.join

    # -- rebalancing -------------------------------------------------------------------------

    def _maybe_prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.state in (
            ClassicState.STABLE,
            ClassicState.COMPLETING_REBALANCE,
            ClassicState.EMPTY,
        ):
            self._prepare_rebalance(group, reason)

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        gid = group.group_id
        if group.state == ClassicState.COMPLETING_REBALANCE:
            for m in group.members.values():
                m.assignment = b""
                if m.sync is not None:
                    m.sync.complete(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        group.pending_sync.clear()
        self.timer.cancel(("sync", gid))
        if group.state == ClassicState.EMPTY:
            delay = self.config.initial_rebalance_delay_ms
            group.initial_join = True
            group.new_member_added = False
            group.initial_remaining_ms = max(group.rebalance_timeout_ms() - delay, 0)
            self.timer.schedule(("join", gid), delay, lambda: self._initial_join_due(gid))
        else:
            group.initial_join = False
            self.timer.schedule(
                ("join", gid), group.rebalance_timeout_ms(), lambda: self._join_due(gid)
            )
        old = group.state
        group.transition(ClassicState.PREPARING_REBALANCE, self.state.now_ms())
        log.info(
            "group %s: preparing to rebalance (generation %d, was %s): %s",
            gid,
            group.generation,
            old.value,
            reason,
        )

    def _initial_join_due(self, group_id: str) -> None:
        group = self.groups.get(group_id)
        if not isinstance(group, ClassicGroup) or group.state != ClassicState.PREPARING_REBALANCE:
            return
        if group.new_member_added and group.initial_remaining_ms > 0:
            group.new_member_added = False
            delay = min(self.config.initial_rebalance_delay_ms, group.initial_remaining_ms)
            group.initial_remaining_ms -= delay
            self.timer.schedule(("join", group_id), delay, lambda: self._initial_join_due(group_id))
            return
        self._complete_join(group)

    def _join_due(self, group_id: str) -> None:
        group = self.groups.get(group_id)
        if isinstance(group, ClassicGroup) and group.state == ClassicState.PREPARING_REBALANCE:
            self._complete_join(group)

    def _try_complete_join(self, group: ClassicGroup) -> None:
        if (
            group.state == ClassicState.PREPARING_REBALANCE
            and not group.initial_join
            and group.all_members_joined()
        ):
            self._complete_join(group)

    def _complete_join(self, group: ClassicGroup) -> None:
        gid = group.group_id
        self.timer.cancel(("join", gid))
        group.initial_join = False
        for m in list(group.members.values()):
            if not m.awaiting_join:
                log.info("group %s: member %s did not rejoin in time, removed", gid, m.member_id)
                self._remove_member(group, m)
        if group.state == ClassicState.DEAD:
            return
        group.elect_joined_leader()
        group.generation += 1
        now = self.state.now_ms()
        if not group.members:
            group.protocol_name = None
            group.transition(ClassicState.EMPTY, now)
            group.update_subscription()
            log.info("group %s: generation %d is empty", gid, group.generation)
            self.state.write(gid, [self._group_record(group)]).add_callback(
                lambda written: _log_failure(
                    written, "group %s: cannot store the empty generation", gid
                )
            )
            self._maybe_forget(group)
            return
        group.protocol_name = group.select_protocol()
        group.transition(ClassicState.COMPLETING_REBALANCE, now)
        group.update_subscription()
        log.info(
            "group %s: generation %d with %d members, protocol %s, leader %s",
            gid,
            group.generation,
            len(group.members),
            group.protocol_name,
            group.leader_id,
        )
        members = self._member_list(group)
        for m in group.members.values():
            leader = m.member_id == group.leader_id
            result = JoinResult(
                ErrorCode.NONE,
                m.member_id,
                group.generation,
                group.protocol_type,
                group.protocol_name,
                group.leader_id or "",
                members if leader else [],
            )
            m.is_new = False
            if m.join is not None:
                m.join.complete(result)
            self.schedule_heartbeat(group, m)
        group.pending_sync = set(group.members)
        generation = group.generation
        self.timer.schedule(
            ("sync", gid),
            group.rebalance_timeout_ms(),
            lambda: self._sync_due(gid, generation),
        )

    def _sync_due(self, group_id: str, generation: int) -> None:
        """Members that got their JoinGroup answer but never sent SyncGroup are removed."""
        group = self.groups.get(group_id)
        if (
            not isinstance(group, ClassicGroup)
            or group.generation != generation
            or group.state not in (ClassicState.COMPLETING_REBALANCE, ClassicState.STABLE)
            or not group.pending_sync
        ):
            return
        for member_id in list(group.pending_sync):
            member = group.members.get(member_id)
            if member is not None:
                log.info("group %s: member %s did not sync in time, removed", group_id, member_id)
                self._remove_member(group, member)
        self._after_member_removed(group, "members did not sync")

    def _group_record(self, group: ClassicGroup):  # noqa: ANN202
        return group_metadata_record(group.group_id, group.to_record(self.state.now_ms()))

    # -- SyncGroup ---------------------------------------------------------------------------

    def sync_group(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: list[tuple[str, bytes]],
    ) -> Deferred[SyncResult]:
        def fail(code: ErrorCode) -> Deferred[SyncResult]:
            return Deferred.of(SyncResult(code))

        error = self.state.check_available(group_id)
        if error != ErrorCode.NONE:
            return fail(error)
        group = self.groups.get(group_id)
        if not isinstance(group, ClassicGroup):
            return fail(ErrorCode.UNKNOWN_MEMBER_ID)
        if group.state == ClassicState.DEAD:
            return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        error = group.validate_member(member_id, instance_id)
        if error != ErrorCode.NONE:
            return fail(error)
        if generation != group.generation:
            return fail(ErrorCode.ILLEGAL_GENERATION)
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
            protocol_name is not None and protocol_name != group.protocol_name
        ):
            return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        member = group.members[member_id]
        if group.state == ClassicState.EMPTY:
            return fail(ErrorCode.UNKNOWN_MEMBER_ID)
        if group.state == ClassicState.PREPARING_REBALANCE:
            return fail(ErrorCode.REBALANCE_IN_PROGRESS)
        self.schedule_heartbeat(group, member)
        self._synced(group, member_id)
        if group.state == ClassicState.STABLE:
            return Deferred.of(
                SyncResult(
                    ErrorCode.NONE, member.assignment, group.protocol_type, group.protocol_name
                )
            )
        # CompletingRebalance: wait for the leader's assignments.
        if member.sync is not None and not member.sync.done:
            member.sync.complete(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        member.sync = Deferred()
        result = member.sync
        if member_id == group.leader_id:
            self._store_assignments(group, assignments)
        return result

    def _synced(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            self.timer.cancel(("sync", group.group_id))

    def _store_assignments(self, group: ClassicGroup, assignments: list[tuple[str, bytes]]) -> None:
        given = {}
        for mid, data in assignments:
            if mid in group.members:
                given[mid] = bytes(data)
        for m in group.members.values():
            m.assignment = given.get(m.member_id, b"")
        generation = group.generation
        self.state.write(group.group_id, [self._group_record(group)]).add_callback(
            lambda written: self._assignments_stored(group, generation, written)
        )

    def _assignments_stored(self, group: ClassicGroup, generation: int, written: ErrorCode) -> None:
        """The leader's assignments are committed (or not): members get theirs."""
        if (
            self.groups.get(group.group_id) is not group
            or group.generation != generation
            or group.state != ClassicState.COMPLETING_REBALANCE
        ):
            return  # a newer rebalance took over meanwhile
        if written != ErrorCode.NONE:
            code = write_error(written)
            log.warning("group %s: cannot store the assignments: %s", group.group_id, written.name)
            for m in group.members.values():
                m.assignment = b""
                if m.sync is not None:
                    m.sync.complete(SyncResult(code))
            self._prepare_rebalance(group, "storing the assignments failed")
            return
        group.transition(ClassicState.STABLE, self.state.now_ms())
        for m in group.members.values():
            if m.sync is not None:
                m.sync.complete(
                    SyncResult(
                        ErrorCode.NONE, m.assignment, group.protocol_type, group.protocol_name
                    )
                )
        log.info("group %s: generation %d is stable", group.group_id, group.generation)

    # -- Heartbeat and LeaveGroup --------------------------------------------------------------

    def heartbeat(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
    ) -> ErrorCode:
        error = self.state.check_available(group_id)
        if error != ErrorCode.NONE:
            return error
        group = self.groups.get(group_id)
        if not isinstance(group, ClassicGroup):
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.state == ClassicState.DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = group.validate_member(member_id, instance_id)
        if error != ErrorCode.NONE:
            return error
        if generation != group.generation:
            return ErrorCode.ILLEGAL_GENERATION
        if group.state == ClassicState.EMPTY:
            return ErrorCode.UNKNOWN_MEMBER_ID
        self.schedule_heartbeat(group, group.members[member_id])
        if group.state == ClassicState.PREPARING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def leave_group(
        self, group_id: str, members: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        """Members (member id, instance id) leave; a member given by instance id alone (empty
        member id) is removed whatever its member id (an admin's removal)."""
        error = self.state.check_available(group_id)
        if error != ErrorCode.NONE:
            return error, []
        group = self.groups.get(group_id)
        if not isinstance(group, ClassicGroup):
            return ErrorCode.UNKNOWN_MEMBER_ID, []
        if group.state == ClassicState.DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        results = []
        removed = False
        for member_id, instance_id in members:
            if instance_id is not None:
                current = group.static_members.get(instance_id)
                if current is None:
                    code = ErrorCode.UNKNOWN_MEMBER_ID
                elif member_id and member_id != current:
                    code = ErrorCode.FENCED_INSTANCE_ID
                else:
                    self._remove_member(group, group.members[current])
                    removed = True
                    code = ErrorCode.NONE
            elif member_id in group.pending_members:
                self.drop_pending(group, member_id)
                code = ErrorCode.NONE
            elif member_id in group.members:
                self._remove_member(group, group.members[member_id])
                removed = True
                code = ErrorCode.NONE
            else:
                code = ErrorCode.UNKNOWN_MEMBER_ID
            results.append((member_id, instance_id, code))
        if removed:
            self._after_member_removed(group, "members left")
        else:
            self._try_complete_join(group)
        self._maybe_forget(group)
        return ErrorCode.NONE, results

    # -- member lifetime ---------------------------------------------------------------------

    def schedule_heartbeat(self, group: ClassicGroup, member: ClassicMember) -> None:
        gid, mid = group.group_id, member.member_id
        self.timer.schedule(
            ("hb", gid, mid),
            member.session_timeout_ms,
            lambda: self._heartbeat_expired(gid, mid),
        )

    def _heartbeat_expired(self, group_id: str, member_id: str) -> None:
        group = self.groups.get(group_id)
        if not isinstance(group, ClassicGroup):
            return
        member = group.members.get(member_id)
        if member is None:
            return
        if member.awaiting_join or member.awaiting_sync:
            # Parked in a JoinGroup or SyncGroup: the rebalance and sync timeouts bound those.
            self.schedule_heartbeat(group, member)
            return
        log.info(
            "group %s: member %s missed its session timeout (%d ms), removed",
            group_id,
            member_id,
            member.session_timeout_ms,
        )
        self._remove_member(group, member)
        self._after_member_removed(group, f"member {member_id} session timed out")

    def _remove_member(self, group: ClassicGroup, member: ClassicMember) -> None:
        self.timer.cancel(("hb", group.group_id, member.member_id))
        if member.join is not None and not member.join.done:
            member.join.complete(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member.member_id))
        if member.sync is not None and not member.sync.done:
            member.sync.complete(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
        group.remove(member.member_id)

    def _after_member_removed(self, group: ClassicGroup, reason: str) -> None:
        if group.state in (ClassicState.STABLE, ClassicState.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, reason)
        self._try_complete_join(group)

    def _pending_member_expired(self, group_id: str, member_id: str) -> None:
        group = self.groups.get(group_id)
        if not isinstance(group, ClassicGroup) or member_id not in group.pending_members:
            return
        self.drop_pending(group, member_id)
        self._try_complete_join(group)
        self._maybe_forget(group)

    def drop_pending(self, group: ClassicGroup, member_id: str) -> None:
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self.state.pending_total -= 1
            self.timer.cancel(("pending", group.group_id, member_id))

    def _maybe_forget(self, group: ClassicGroup) -> None:
        """A group that never completed a rebalance, holds no offsets and has nobody left (e.g.
        after a flood of joins that never came back) is dropped; nothing of it was written."""
        if (
            group.state == ClassicState.EMPTY
            and group.generation == 0
            and not group.members
            and not group.pending_members
            and not self.offsets.has_offsets(group.group_id)
            and self.groups.get(group.group_id) is group
        ):
            del self.groups[group.group_id]
