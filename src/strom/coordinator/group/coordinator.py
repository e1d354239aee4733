"""The group coordinator: groups and committed offsets, kept as records in __consumer_offsets.

Each __consumer_offsets partition is a shard: the groups that hash to it live there, and every
change to them is a record written through the coordinator runtime (strom.coordinator.runtime)
and applied by `replay` once committed, the same function that rebuilds a shard when this broker
becomes the partition's leader (the log is the database). Until a shard is loaded its groups get
COORDINATOR_LOAD_IN_PROGRESS; groups of partitions led elsewhere get NOT_COORDINATOR.

The coordinator is composed of parts that share one `GroupState`: the classic protocol
(`classic_ops`: JoinGroup, SyncGroup, Heartbeat, LeaveGroup), the consumer protocol
(`consumer_ops`: KIP-848 ConsumerGroupHeartbeat), and, here, replay, offsets and the admin
operations (list, describe, delete, expiration).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from strom.coordinator.deferred import Deferred
from strom.coordinator.errors import write_error
from strom.coordinator.group.classic import (
    CONSUMER_PROTOCOL_TYPE,
    ClassicGroup,
    ClassicState,
    JoinResult,
    SyncResult,
)
from strom.coordinator.group.classic_ops import ClassicProtocol
from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.consumer import ConsumerGroup, ConsumerMember, MemberState
from strom.coordinator.group.consumer_ops import (
    ConsumerHeartbeat,
    ConsumerHeartbeatResult,
    ConsumerProtocol,
)
from strom.coordinator.group.offsets import CommittedOffset, OffsetStore
from strom.coordinator.group.records import (
    OFFSETS_TOPIC,
    Record,
    decode_record,
    offset_commit_record,
)
from strom.coordinator.group.results import (
    DescribedGroup,
    DescribedMember,
    FetchedOffset,
    ListedGroup,
    OffsetToCommit,
)
from strom.coordinator.group.state import Group, GroupState
from strom.coordinator.group.timer import LoopTimer, Timer
from strom.coordinator.group.topics import TopicsView
from strom.coordinator.runtime import CoordinatorRuntime
from strom.coordinator.writer import PartitionWriter, TxnProducer
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.messages.group_coordinator import OffsetCommitValue

log = logging.getLogger(__name__)


class GroupCoordinator:
    """Every group and committed offset of the __consumer_offsets partitions this broker leads."""

    def __init__(
        self,
        config: GroupConfig,
        writer: PartitionWriter,
        topics: TopicsView,
        timer: Timer | None = None,
    ) -> None:
        self.config = config
        self.topics = topics
        self.timer = timer or LoopTimer()
        self.runtime = CoordinatorRuntime(OFFSETS_TOPIC, writer, self)
        self.state = GroupState(config, topics, self.timer, self.runtime)
        self.classic = ClassicProtocol(self.state)
        self.consumer = ConsumerProtocol(self.state)
        self._last_expiration = time.monotonic()

    @property
    def groups(self) -> dict[str, Group]:
        return self.state.groups

    @property
    def offsets(self) -> OffsetStore:
        return self.state.offsets

    @property
    def pending_total(self) -> int:
        return self.state.pending_total

    def now_ms(self) -> int:
        return self.timer.now_ms()

    def partition_for(self, group_id: str) -> int:
        return self.state.partition_for(group_id)

    def check_available(self, group_id: str) -> ErrorCode:
        return self.state.check_available(group_id)

    def write(self, group_id: str, records: list[Record]) -> Deferred[ErrorCode]:
        return self.state.write(group_id, records)

    # -- the group protocols (see classic_ops and consumer_ops) ---------------------------------

    def join_group(self, *args: object, **kwargs: object) -> Deferred[JoinResult]:
        return self.classic.join_group(*args, **kwargs)  # type: ignore[arg-type]

    def sync_group(self, *args: object, **kwargs: object) -> Deferred[SyncResult]:
        return self.classic.sync_group(*args, **kwargs)  # type: ignore[arg-type]

    def heartbeat(
        self, group_id: str, generation: int, member_id: str, instance_id: str | None
    ) -> ErrorCode:
        return self.classic.heartbeat(group_id, generation, member_id, instance_id)

    def leave_group(
        self, group_id: str, members: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        return self.classic.leave_group(group_id, members)

    def consumer_group_heartbeat(self, req: ConsumerHeartbeat) -> Deferred[ConsumerHeartbeatResult]:
        return self.consumer.consumer_group_heartbeat(req)

    def consumer_group_describe(self, group_ids: list[str]) -> list[dict]:
        return self.consumer.consumer_group_describe(group_ids)

    # -- shards: loaded when this broker leads their partition ---------------------------------

    @property
    def num_partitions(self) -> int:
        return self.config.offsets_topic_partitions

    def load_all(self) -> None:
        """Load every shard now (tests, tools)."""
        self.state.started = True
        for p in range(self.num_partitions):
            self.runtime.load_now(p)

    def become_leader(self, partition: int, leader_epoch: int) -> None:
        """This broker leads a __consumer_offsets partition: load its groups (in the
        background; their requests meanwhile get COORDINATOR_LOAD_IN_PROGRESS)."""
        self.state.started = True
        self.runtime.schedule_load(partition, leader_epoch)

    def resign(self, partition: int, leader_epoch: int | None = None) -> None:
        """This broker no longer leads the partition: its groups go (NOT_COORDINATOR)."""
        self.runtime.unload(partition, leader_epoch)

    def on_loaded(self, partition: int) -> None:
        """Members of a loaded shard's groups must heartbeat within their session timeout, as
        after a rebalance: clients that reconnect carry on, the others are removed."""
        for group in list(self.groups.values()):
            if self.partition_for(group.group_id) != partition:
                continue
            if isinstance(group, ClassicGroup):
                for member in group.members.values():
                    self.classic.schedule_heartbeat(group, member)
            else:
                for member in group.members.values():
                    self.consumer.schedule_session(group, member)

    def on_unloaded(self, partition: int) -> None:
        """Forget a shard's groups and offsets: stop their timers and answer parked joins and
        syncs with NOT_COORDINATOR (clients look for the new coordinator)."""
        for group_id, group in list(self.groups.items()):
            if self.partition_for(group_id) != partition:
                continue
            if isinstance(group, ClassicGroup):
                for m in group.members.values():
                    if m.join is not None:
                        m.join.complete(JoinResult(ErrorCode.NOT_COORDINATOR, m.member_id))
                    if m.sync is not None:
                        m.sync.complete(SyncResult(ErrorCode.NOT_COORDINATOR))
                for member_id in list(group.pending_members):
                    self.classic.drop_pending(group, member_id)
            del self.groups[group_id]
        for key in self.timer.scheduled_keys():
            # every group timer is keyed (kind, group id, ...)
            if isinstance(key, tuple) and len(key) > 1 and self.partition_for(key[1]) == partition:
                self.timer.cancel(key)
        for group_id in list(self.offsets.groups()):
            if self.partition_for(group_id) == partition:
                self.offsets.drop_group(group_id)

    def shutdown(self) -> None:
        """Unload every shard (parked joins and syncs get NOT_COORDINATOR) and stop timers."""
        self.runtime.close()
        self.timer.cancel_all()
        self.state.started = False

    @property
    def fully_loaded(self) -> bool:
        """Every shard this broker holds is loaded."""
        return self.state.started and all(self.runtime.active(p) for p in self.runtime.partitions)

    def replay(
        self,
        partition: int,
        key: bytes | memoryview,
        value: bytes | memoryview | None,
        live: bool,
        producer_id: int = -1,
    ) -> None:
        """Apply one record of __consumer_offsets to the in-memory state (an offset commit of
        a transaction waits for its marker: `replay_end_txn`)."""
        rec = decode_record(key, value)
        if rec is None:
            return
        kv = rec.key_version
        if kv in (0, 1):
            k = rec.key
            if rec.value is None:
                self.offsets.delete(k.group, k.topic, k.partition)  # type: ignore[attr-defined]
                return
            v: OffsetCommitValue = rec.value  # type: ignore[assignment]
            committed = CommittedOffset(
                v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp
            )
            if producer_id >= 0:
                self.offsets.put_pending(producer_id, k.group, k.topic, k.partition, committed)  # type: ignore[attr-defined]
                return
            self.offsets.put(k.group, k.topic, k.partition, committed)  # type: ignore[attr-defined]
            if k.group not in self.groups:  # type: ignore[attr-defined]
                # Offsets without group metadata: a "simple" group that only stores offsets.
                self.groups[k.group] = ClassicGroup(k.group, v.commit_timestamp)  # type: ignore[attr-defined]
            return
        if kv == 2:
            self._replay_group_metadata(rec.key.group, rec.value, live)  # type: ignore[attr-defined]
            return
        self._replay_consumer_record(kv, rec.key, rec.value)

    def replay_end_txn(self, partition: int, producer_id: int, commit: bool) -> None:
        """A transaction marker in a __consumer_offsets partition: the producer's pending
        offsets for the partition's groups are committed or dropped."""
        n = self.offsets.end_txn(
            producer_id, commit, lambda group: self.partition_for(group) == partition
        )
        if n and commit:
            log.debug("__consumer_offsets-%d: %d transactional offsets committed", partition, n)

    def complete_transaction(
        self,
        partition: int,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
    ) -> Deferred[ErrorCode]:
        """Write a transaction's marker to a __consumer_offsets partition (the transaction
        coordinator's marker writer calls this), ordered with the shard's other writes."""
        marker = TxnProducer(producer_id, producer_epoch)
        return self.runtime.write_marker(partition, marker, commit, coordinator_epoch)

    def commit_txn_offsets(
        self,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        generation: int,
        member_id: str,
        instance_id: str | None,
        topics: Iterable[tuple[str, list[OffsetToCommit]]],
    ) -> Deferred[list[tuple[str, list[tuple[int, ErrorCode]]]]]:
        """TxnOffsetCommit: offsets written in the producer's transaction; they become the
        group's committed offsets when the transaction commits."""
        topics = list(topics)
        error = self.check_available(group_id)
        group = self.groups.get(group_id)
        if error == ErrorCode.NONE and (generation >= 0 or member_id):
            # a member of a live group: its generation must be current (KIP-447)
            if group is None:
                error = ErrorCode.ILLEGAL_GENERATION
            elif isinstance(group, ClassicGroup):
                error = group.validate_member(member_id, instance_id)
                if error == ErrorCode.NONE and generation != group.generation:
                    error = ErrorCode.ILLEGAL_GENERATION
            else:
                member = group.members.get(member_id)
                if member is None:
                    error = ErrorCode.UNKNOWN_MEMBER_ID
                elif generation != member.member_epoch:
                    error = ErrorCode.ILLEGAL_GENERATION
        return self._write_offsets(
            group_id, topics, error, -1, TxnProducer(producer_id, producer_epoch)
        )

    def _replay_group_metadata(self, group_id: str, value: object | None, live: bool) -> None:
        group = self.groups.get(group_id)
        if value is None:
            if isinstance(group, ClassicGroup):
                group.transition(ClassicState.DEAD, self.now_ms())
                del self.groups[group_id]
            return
        if not isinstance(group, ClassicGroup):
            group = ClassicGroup(group_id, self.now_ms())
            self.groups[group_id] = group
            live = False
        group.apply_record(value, live)  # type: ignore[arg-type]

    def _consumer_group_for_replay(self, group_id: str) -> ConsumerGroup:
        group = self.groups.get(group_id)
        if not isinstance(group, ConsumerGroup):
            group = ConsumerGroup(group_id)
            group.state_timestamp = self.now_ms()
            self.groups[group_id] = group
        return group

    def _replay_consumer_record(self, kv: int, key: object, value: object | None) -> None:
        group_id = key.group_id  # type: ignore[attr-defined]
        if value is None and not isinstance(self.groups.get(group_id), ConsumerGroup):
            return
        group = self._consumer_group_for_replay(group_id)
        if kv == 3:
            if value is None:
                group.deleted = True
                del self.groups[group_id]
            else:
                group.epoch = value.epoch  # type: ignore[attr-defined]
        elif kv == 4:
            group.subscription_metadata = (
                {}
                if value is None
                else {
                    t.topic_name: (bytes(t.topic_id), t.num_partitions)
                    for t in value.topics  # type: ignore[attr-defined]
                }
            )
        elif kv == 5:
            member_id = key.member_id  # type: ignore[attr-defined]
            if value is None:
                group.remove_member(member_id)
                group.target.pop(member_id, None)
                if not group.members:
                    group.state_timestamp = self.now_ms()
            else:
                v = value
                group.put_member_metadata(
                    ConsumerMember(
                        member_id=member_id,
                        instance_id=v.instance_id or None,  # type: ignore[attr-defined]
                        rack_id=v.rack_id or None,  # type: ignore[attr-defined]
                        client_id=v.client_id,  # type: ignore[attr-defined]
                        client_host=v.client_host,  # type: ignore[attr-defined]
                        subscribed_topics=list(v.subscribed_topic_names),  # type: ignore[attr-defined]
                        subscribed_regex=v.subscribed_topic_regex or None,  # type: ignore[attr-defined]
                        rebalance_timeout_ms=v.rebalance_timeout_ms,  # type: ignore[attr-defined]
                        server_assignor=v.server_assignor or None,  # type: ignore[attr-defined]
                    )
                )
        elif kv == 6:
            group.assignment_epoch = 0 if value is None else value.assignment_epoch  # type: ignore[attr-defined]
        elif kv == 7:
            member_id = key.member_id  # type: ignore[attr-defined]
            if value is None:
                group.target.pop(member_id, None)
            else:
                group.target[member_id] = {
                    bytes(tp.topic_id): set(tp.partitions)
                    for tp in value.topic_partitions  # type: ignore[attr-defined]
                }
        elif kv == 8:
            member_id = key.member_id  # type: ignore[attr-defined]
            if value is None:
                group.clear_current_assignment(member_id)
            else:
                v = value
                group.put_current_assignment(
                    member_id,
                    v.member_epoch,  # type: ignore[attr-defined]
                    v.previous_member_epoch,  # type: ignore[attr-defined]
                    _member_state(v.state),  # type: ignore[attr-defined]
                    {bytes(t.topic_id): set(t.partitions) for t in v.assigned_partitions},  # type: ignore[attr-defined]
                    {
                        bytes(t.topic_id): set(t.partitions)
                        for t in v.partitions_pending_revocation  # type: ignore[attr-defined]
                    },
                )

    # -- offsets -----------------------------------------------------------------------------------

    def commit_offsets(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        topics: Iterable[tuple[str, list[OffsetToCommit]]],
        api_version: int = 8,
        retention_ms: int = -1,
    ) -> Deferred[list[tuple[str, list[tuple[int, ErrorCode]]]]]:
        """OffsetCommit: each partition's error (NONE when committed), once the records are
        committed to the log and applied."""
        topics = list(topics)
        error = self.check_available(group_id)
        if error == ErrorCode.NONE and not group_id:
            error = ErrorCode.INVALID_GROUP_ID
        if error == ErrorCode.NONE:
            try:
                self._validate_commit(group_id, generation, member_id, instance_id, api_version)
            except KafkaError as e:
                error = e.code
        return self._write_offsets(group_id, topics, error, retention_ms)

    def _write_offsets(
        self,
        group_id: str,
        topics: list[tuple[str, list[OffsetToCommit]]],
        error: ErrorCode,
        retention_ms: int,
        producer: TxnProducer | None = None,
    ) -> Deferred[list[tuple[str, list[tuple[int, ErrorCode]]]]]:
        """Write the offset records of a commit that passed its checks (`error` NONE), in
        `producer`'s transaction if given: each partition's error once they are committed."""
        if error != ErrorCode.NONE:
            return Deferred.of(
                [(name, [(p.partition, error) for p in parts]) for name, parts in topics]
            )
        now = self.now_ms()
        records: list[Record] = []
        results: list[tuple[str, list[list]]] = []
        max_meta = self.config.offset_metadata_max_bytes
        for name, parts in topics:
            count = self.topics.partition_count(name)
            out = []
            for p in parts:
                if count is None or not 0 <= p.partition < count:
                    out.append([p.partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION])
                    continue
                meta = p.metadata or ""
                if len(meta.encode("utf-8", "surrogatepass")) > max_meta:
                    out.append([p.partition, ErrorCode.OFFSET_METADATA_TOO_LARGE])
                    continue
                ts = p.commit_timestamp if p.commit_timestamp >= 0 else now
                expire = ts + retention_ms if retention_ms >= 0 else -1
                value = OffsetCommitValue(
                    offset=p.offset,
                    leader_epoch=p.leader_epoch,
                    metadata=meta,
                    commit_timestamp=ts,
                    expire_timestamp=expire,
                )
                records.append(offset_commit_record(group_id, name, p.partition, value))
                out.append([p.partition, ErrorCode.NONE])
            results.append((name, out))

        def answer(written: ErrorCode) -> list[tuple[str, list[tuple[int, ErrorCode]]]]:
            if written != ErrorCode.NONE:
                code = write_error(written, commit=True)
                log.warning("offset commit of group %s failed: %s", group_id, written.name)
                for _, out in results:
                    for item in out:
                        if item[1] == ErrorCode.NONE:
                            item[1] = code
            return [(name, [(p, c) for p, c in out]) for name, out in results]

        partition = self.partition_for(group_id)
        return self.runtime.write(partition, records, now, producer).map(answer)

    def _validate_commit(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        api_version: int,
    ) -> None:
        group = self.groups.get(group_id)
        if group is None:
            if generation >= 0 or member_id or instance_id is not None:
                raise KafkaError(
                    f"group {group_id} does not exist",
                    ErrorCode.GROUP_ID_NOT_FOUND
                    if api_version >= 9
                    else ErrorCode.ILLEGAL_GENERATION,
                )
            # A consumer without group management (or an admin tool): a "simple" group.
            self.groups[group_id] = ClassicGroup(group_id, self.now_ms())
            return
        if isinstance(group, ConsumerGroup):
            if generation < 0 and group.empty:
                return
            member = group.members.get(member_id)
            if member is None:
                raise KafkaError(f"unknown member {member_id}", ErrorCode.UNKNOWN_MEMBER_ID)
            if api_version < 9:
                raise KafkaError(
                    "consumer-protocol members must commit with OffsetCommit v9+",
                    ErrorCode.UNSUPPORTED_VERSION,
                )
            _check_member_epoch(generation, member)
            return
        if group.state == ClassicState.DEAD:
            raise KafkaError("group is dead", ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if generation < 0 and group.state == ClassicState.EMPTY:
            return
        if generation >= 0 or member_id or instance_id is not None:
            error = group.validate_member(member_id, instance_id)
            if error != ErrorCode.NONE:
                raise KafkaError(f"member {member_id} of {group_id}", error)
            if generation != group.generation:
                raise KafkaError(
                    f"generation {generation} is not {group.generation}",
                    ErrorCode.ILLEGAL_GENERATION,
                )
        else:
            raise KafkaError(
                "commit without member to a non-empty group", ErrorCode.UNKNOWN_MEMBER_ID
            )
        if group.state == ClassicState.COMPLETING_REBALANCE:
            raise KafkaError("the group is rebalancing", ErrorCode.REBALANCE_IN_PROGRESS)

    def fetch_offsets(
        self,
        group_id: str,
        topics: list[tuple[str, list[int]]] | None,
        member_id: str | None = None,
        member_epoch: int = -1,
    ) -> tuple[ErrorCode, list[tuple[str, list[FetchedOffset]]]]:
        """OffsetFetch of one group: a group-level error and per-partition offsets (-1 where
        nothing is committed); topics None fetches every committed offset."""
        error = self.check_available(group_id)
        if error != ErrorCode.NONE:
            return error, []
        group = self.groups.get(group_id)
        if isinstance(group, ConsumerGroup) and (member_id is not None or member_epoch >= 0):
            member = group.members.get(member_id or "")
            if member is None:
                return ErrorCode.UNKNOWN_MEMBER_ID, []
            if member_epoch != member.member_epoch:
                return ErrorCode.STALE_MEMBER_EPOCH, []
        committed = self.offsets.of_group(group_id)
        out: list[tuple[str, list[FetchedOffset]]] = []
        if topics is None:
            by_topic: dict[str, list[FetchedOffset]] = {}
            for (topic, partition), c in sorted(committed.items()):
                by_topic.setdefault(topic, []).append(
                    FetchedOffset(partition, c.offset, c.leader_epoch, c.metadata)
                )
            return ErrorCode.NONE, list(by_topic.items())
        for name, partitions in topics:
            parts = []
            for p in partitions:
                c = committed.get((name, p))
                if c is None:
                    parts.append(FetchedOffset(p, -1, -1, ""))
                else:
                    parts.append(FetchedOffset(p, c.offset, c.leader_epoch, c.metadata))
            out.append((name, parts))
        return ErrorCode.NONE, out

    def delete_offsets(
        self, group_id: str, topics: list[tuple[str, list[int]]]
    ) -> Deferred[tuple[ErrorCode, list[tuple[str, list[tuple[int, ErrorCode]]]]]]:
        """OffsetDelete: forget committed offsets of topics the group does not consume now."""
        error = self.check_available(group_id)
        if error != ErrorCode.NONE:
            return Deferred.of((error, []))
        group = self.groups.get(group_id)
        if group is None or (isinstance(group, ClassicGroup) and group.state == ClassicState.DEAD):
            return Deferred.of((ErrorCode.GROUP_ID_NOT_FOUND, []))
        subscribed: set[str] = set()
        if isinstance(group, ClassicGroup):
            if not group.empty:
                if group.protocol_type != CONSUMER_PROTOCOL_TYPE:
                    return Deferred.of((ErrorCode.NON_EMPTY_GROUP, []))
                subscribed = group.subscribed or set()
        else:
            subscribed = set(group.subscription_metadata)
        records: list[Record] = []
        results = []
        for name, partitions in topics:
            out = []
            for p in partitions:
                if name in subscribed:
                    out.append((p, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC))
                    continue
                if self.offsets.get(group_id, name, p) is not None:
                    records.append(offset_commit_record(group_id, name, p, None))
                out.append((p, ErrorCode.NONE))
            results.append((name, out))
        return self.write(group_id, records).map(
            lambda written: (write_error(written), results if written == ErrorCode.NONE else [])
        )

    # -- admin -----------------------------------------------------------------------------------

    def list_groups(
        self, states: Iterable[str] = (), types: Iterable[str] = ()
    ) -> tuple[ErrorCode, list[ListedGroup]]:
        if not self.state.started:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        want_states = {s.lower() for s in states}
        want_types = {t.lower() for t in types}
        out = []
        for group in self.groups.values():
            if not self.runtime.active(self.partition_for(group.group_id)):
                continue
            if isinstance(group, ClassicGroup):
                listed = ListedGroup(
                    group.group_id, group.protocol_type or "", group.state.value, "classic"
                )
            else:
                listed = ListedGroup(
                    group.group_id, CONSUMER_PROTOCOL_TYPE, group.state().value, "consumer"
                )
            if want_states and listed.state.lower() not in want_states:
                continue
            if want_types and listed.type not in want_types:
                continue
            out.append(listed)
        out.sort(key=lambda g: g.group_id)
        error = ErrorCode.NONE if self.fully_loaded else ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        return error, out

    def describe_groups(self, group_ids: Iterable[str]) -> list[DescribedGroup]:
        out = []
        for group_id in group_ids:
            error = self.check_available(group_id)
            if error != ErrorCode.NONE:
                out.append(DescribedGroup(group_id, error, ""))
                continue
            group = self.groups.get(group_id)
            if group is None:
                out.append(DescribedGroup(group_id))
            elif isinstance(group, ClassicGroup):
                out.append(self._describe_classic(group))
            else:
                out.append(self.consumer.describe_as_classic(group))
        return out

    def _describe_classic(self, group: ClassicGroup) -> DescribedGroup:
        stable = group.state == ClassicState.STABLE
        members = []
        for m in group.members.values():
            meta = b""
            if stable and group.protocol_name is not None:
                try:
                    meta = m.metadata(group.protocol_name)
                except KeyError:
                    meta = b""
            members.append(
                DescribedMember(
                    m.member_id,
                    m.instance_id,
                    m.client_id,
                    m.client_host,
                    meta,
                    m.assignment if stable else b"",
                )
            )
        return DescribedGroup(
            group.group_id,
            ErrorCode.NONE,
            group.state.value,
            group.protocol_type or "",
            (group.protocol_name or "") if stable else "",
            members,
        )

    def delete_groups(self, group_ids: Iterable[str]) -> Deferred[list[tuple[str, ErrorCode]]]:
        done = []
        for group_id in group_ids:
            error = self.check_available(group_id)
            if error == ErrorCode.NONE:
                done.append(self._delete_group(group_id).map(lambda e, g=group_id: (g, e)))
            else:
                done.append(Deferred.of((group_id, error)))
        return Deferred.all(done)

    def _delete_group(self, group_id: str) -> Deferred[ErrorCode]:
        group = self.groups.get(group_id)
        if group is None:
            return Deferred.of(ErrorCode.GROUP_ID_NOT_FOUND)
        if isinstance(group, ClassicGroup):
            if group.state == ClassicState.DEAD:
                return Deferred.of(ErrorCode.GROUP_ID_NOT_FOUND)
            if group.state != ClassicState.EMPTY:
                return Deferred.of(ErrorCode.NON_EMPTY_GROUP)
        elif group.members:
            return Deferred.of(ErrorCode.NON_EMPTY_GROUP)
        records = [
            offset_commit_record(group_id, topic, partition, None)
            for topic, partition in self.offsets.of_group(group_id)
        ]
        records += self.state.group_tombstones(group)

        def deleted(written: ErrorCode) -> ErrorCode:
            if written != ErrorCode.NONE:
                return write_error(written)
            if self.groups.get(group_id) is group:
                del self.groups[group_id]
            for p in list(group.pending_members) if isinstance(group, ClassicGroup) else ():
                self.classic.drop_pending(group, p)
            log.info("deleted group %s", group_id)
            return ErrorCode.NONE

        return self.write(group_id, records).map(deleted)

    # -- expiration ------------------------------------------------------------------------------

    def upkeep(self) -> int:
        """Expire offsets when offsets.retention.check.interval.ms has passed since the last
        time (called every second or so by the broker)."""
        now = time.monotonic()
        if (now - self._last_expiration) * 1000 < self.config.offsets_retention_check_interval_ms:
            return 0
        self._last_expiration = now
        return self.expire_offsets()

    def expire_offsets(self) -> int:
        """Tombstone offsets past offsets.retention.minutes (Kafka's rules: a classic group's
        offsets once it has been empty that long, or a consumer group's offsets of topics it no
        longer subscribes to) and offsets of topics that no longer exist; delete groups left
        empty with no offsets. The number of offsets removed."""
        if not self.state.started:
            return 0
        now = self.now_ms()
        retention = self.config.offsets_retention_ms
        expired = 0
        for group_id in set(self.offsets.groups()) | set(self.groups):
            if not self.runtime.active(self.partition_for(group_id)):
                continue
            group = self.groups.get(group_id)
            base_of = self._expiration_base(group)
            records: list[Record] = []
            for topic, partition in list(self.offsets.of_group(group_id)):
                count = self.topics.partition_count(topic)
                if count is None or partition >= count:
                    # The topic was deleted: its offsets go too (Kafka does this at deletion).
                    records.append(offset_commit_record(group_id, topic, partition, None))
            gone = {(k, None) for k, _ in records}
            if base_of is not None:
                subscribed = self._subscribed_topics(group)
                for (topic, partition), c in list(self.offsets.of_group(group_id).items()):
                    if topic in subscribed:
                        continue
                    if c.expire_timestamp >= 0:
                        due = now >= c.expire_timestamp
                    else:
                        due = now - base_of(c) >= retention
                    if due:
                        record = offset_commit_record(group_id, topic, partition, None)
                        if (record[0], None) not in gone:
                            records.append(record)
            remaining = len(self.offsets.of_group(group_id)) - len(records)
            n = len(records)  # offset tombstones
            delete_group = group is not None and remaining == 0 and self._removable(group)
            if delete_group:
                records += self.state.group_tombstones(group)  # type: ignore[arg-type]
            if not records:
                continue
            written = self.write(group_id, records)
            if written.done and written.result != ErrorCode.NONE:
                log.warning("expiring offsets of group %s failed: %s", group_id, written.result)
                continue
            written.add_callback(
                lambda result, gid=group_id, n=n, g=group if delete_group else None: self._expired(
                    gid, n, g, result
                )
            )
            expired += n
        return expired

    def _expired(self, group_id: str, n: int, group: Group | None, written: ErrorCode) -> None:
        if written != ErrorCode.NONE:
            log.warning("expiring offsets of group %s failed: %s", group_id, written.name)
        elif group is not None:
            if self.groups.get(group_id) is group:
                del self.groups[group_id]
            if n:
                log.info("group %s: %d offsets expired; the group is deleted", group_id, n)
        elif n:
            log.info("group %s: %d offsets expired", group_id, n)

    def _expiration_base(self, group: Group | None):  # noqa: ANN202
        """A function giving the time an offset's retention counts from, or None when the
        group's offsets must not expire now."""
        if group is None:
            return lambda c: c.commit_timestamp
        if isinstance(group, ConsumerGroup):
            return lambda c: c.commit_timestamp
        if group.protocol_type is None:
            return lambda c: c.commit_timestamp
        if group.state == ClassicState.EMPTY:
            since = group.state_timestamp
            return lambda c: max(since, c.commit_timestamp) if since >= 0 else c.commit_timestamp
        if (
            group.protocol_type == CONSUMER_PROTOCOL_TYPE
            and group.subscribed is not None
            and group.state == ClassicState.STABLE
        ):
            return lambda c: c.commit_timestamp
        return None

    def _subscribed_topics(self, group: Group | None) -> set[str]:
        if group is None:
            return set()
        if isinstance(group, ConsumerGroup):
            return set(group.subscription_metadata)
        if group.state == ClassicState.EMPTY:
            return set()
        return group.subscribed or set()

    def _removable(self, group: Group) -> bool:
        if isinstance(group, ClassicGroup):
            return group.state == ClassicState.EMPTY and not group.pending_members
        return not group.members


def _member_state(value: int) -> MemberState:
    try:
        return MemberState(value)
    except ValueError:
        return MemberState.UNKNOWN


def _check_member_epoch(received: int, member: ConsumerMember) -> None:
    if received > member.member_epoch:
        raise KafkaError(
            f"member epoch {received} is newer than {member.member_epoch}",
            ErrorCode.FENCED_MEMBER_EPOCH,
        )
    if received < member.member_epoch:
        raise KafkaError(
            f"member epoch {received} is older than {member.member_epoch}",
            ErrorCode.STALE_MEMBER_EPOCH,
        )
