"""Group APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
OffsetDelete, ListGroups, DescribeGroups, DeleteGroups, ConsumerGroupHeartbeat and
ConsumerGroupDescribe. Thin: decode, call the group coordinator, encode."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from strom.coordinator.group import OffsetToCommit
from strom.coordinator.group.consumer_ops import ConsumerHeartbeat
from strom.protocol.errors import ErrorCode
from strom.protocol.messages.consumer_group_describe import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
)
from strom.protocol.messages.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)
from strom.protocol.messages.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse
from strom.protocol.messages.describe_groups import DescribeGroupsRequest, DescribeGroupsResponse
from strom.protocol.messages.heartbeat import HeartbeatRequest, HeartbeatResponse
from strom.protocol.messages.join_group import JoinGroupRequest, JoinGroupResponse
from strom.protocol.messages.leave_group import LeaveGroupRequest, LeaveGroupResponse
from strom.protocol.messages.list_groups import ListGroupsRequest, ListGroupsResponse
from strom.protocol.messages.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from strom.protocol.messages.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse
from strom.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchResponse
from strom.protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

log = logging.getLogger(__name__)

UNSET_OPERATIONS = -2147483648
# READ (3), DELETE (6), DESCRIBE (8): what a group allows, Kafka's AclOperation codes.
GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


def client_host(ctx: RequestContext) -> str:
    """How Kafka reports a member's host: "/" and the client's address."""
    return "/" + ctx.client_host if ctx.client_host else ""


# -- classic group protocol -----------------------------------------------------------------------


async def handle_join_group(
    services: Services, ctx: RequestContext, request: JoinGroupRequest
) -> JoinGroupResponse:
    version = ctx.header.api_version
    result = await services.group_coordinator.join_group(
        request.group_id,
        request.member_id,
        request.group_instance_id,
        ctx.header.client_id or "",
        client_host(ctx),
        request.session_timeout_ms,
        request.rebalance_timeout_ms if version >= 1 else -1,
        request.protocol_type,
        [(p.name, bytes(p.metadata)) for p in request.protocols],
        require_known_member_id=version >= 4,
        api_version=version,
        reason=request.reason,
    ).wait()
    protocol_name = result.protocol_name
    if protocol_name is None and version < 7:
        protocol_name = ""
    return JoinGroupResponse(
        error_code=result.error,
        generation_id=result.generation,
        protocol_type=result.protocol_type if version >= 7 else None,
        protocol_name=protocol_name,
        leader=result.leader,
        skip_assignment=result.skip_assignment if version >= 9 else False,
        member_id=result.member_id,
        members=[
            JoinGroupResponse.JoinGroupResponseMember(
                member_id=mid, group_instance_id=iid, metadata=meta
            )
            for mid, iid, meta in result.members
        ],
    )


async def handle_sync_group(
    services: Services, ctx: RequestContext, request: SyncGroupRequest
) -> SyncGroupResponse:
    result = await services.group_coordinator.sync_group(
        request.group_id,
        request.generation_id,
        request.member_id,
        request.group_instance_id,
        request.protocol_type,
        request.protocol_name,
        [(a.member_id, bytes(a.assignment)) for a in request.assignments],
    ).wait()
    v5 = ctx.header.api_version >= 5
    return SyncGroupResponse(
        error_code=result.error,
        protocol_type=result.protocol_type if v5 else None,
        protocol_name=result.protocol_name if v5 else None,
        assignment=result.assignment,
    )


async def handle_heartbeat(
    services: Services, ctx: RequestContext, request: HeartbeatRequest
) -> HeartbeatResponse:
    error = services.group_coordinator.heartbeat(
        request.group_id, request.generation_id, request.member_id, request.group_instance_id
    )
    return HeartbeatResponse(error_code=error)


async def handle_leave_group(
    services: Services, ctx: RequestContext, request: LeaveGroupRequest
) -> LeaveGroupResponse:
    if ctx.header.api_version < 3:
        members = [(request.member_id, None)]
    else:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    error, results = services.group_coordinator.leave_group(request.group_id, members)
    if error == ErrorCode.NONE:
        error = next((code for _, _, code in results if code != ErrorCode.NONE), error)
    return LeaveGroupResponse(
        error_code=error,
        members=[
            LeaveGroupResponse.MemberResponse(member_id=mid, group_instance_id=iid, error_code=code)
            for mid, iid, code in results
        ]
        if ctx.header.api_version >= 3
        else [],
    )


# -- offsets ---------------------------------------------------------------------------------------


async def handle_offset_commit(
    services: Services, ctx: RequestContext, request: OffsetCommitRequest
) -> OffsetCommitResponse:
    version = ctx.header.api_version
    topics = [
        (
            t.name,
            [
                OffsetToCommit(
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch if version >= 6 else -1,
                    p.committed_metadata,
                    p.commit_timestamp if version == 1 else -1,
                )
                for p in t.partitions
            ],
        )
        for t in request.topics
    ]
    results = await services.group_coordinator.commit_offsets(
        request.group_id,
        request.generation_id_or_member_epoch if version >= 1 else -1,
        request.member_id if version >= 1 else "",
        request.group_instance_id if version >= 7 else None,
        topics,
        api_version=version,
        retention_ms=request.retention_time_ms if 2 <= version <= 4 else -1,
    ).wait()
    Topic = OffsetCommitResponse.OffsetCommitResponseTopic
    Part = OffsetCommitResponse.OffsetCommitResponsePartition
    return OffsetCommitResponse(
        topics=[
            Topic(name=name, partitions=[Part(partition_index=p, error_code=c) for p, c in parts])
            for name, parts in results
        ]
    )


async def handle_offset_fetch(
    services: Services, ctx: RequestContext, request: OffsetFetchRequest
) -> OffsetFetchResponse:
    version = ctx.header.api_version
    coordinator = services.group_coordinator
    if version >= 8:
        groups = []
        Group = OffsetFetchResponse.OffsetFetchResponseGroup
        Topic = OffsetFetchResponse.OffsetFetchResponseTopics
        Part = OffsetFetchResponse.OffsetFetchResponsePartitions
        for g in request.groups:
            topics = (
                None
                if g.topics is None
                else [(t.name, list(t.partition_indexes)) for t in g.topics]
            )
            error, found = coordinator.fetch_offsets(
                g.group_id,
                topics,
                g.member_id if version >= 9 else None,
                g.member_epoch if version >= 9 else -1,
            )
            groups.append(
                Group(
                    group_id=g.group_id,
                    error_code=error,
                    topics=[
                        Topic(
                            name=name,
                            partitions=[
                                Part(
                                    partition_index=o.partition,
                                    committed_offset=o.offset,
                                    committed_leader_epoch=o.leader_epoch,
                                    metadata=o.metadata,
                                    error_code=o.error,
                                )
                                for o in parts
                            ],
                        )
                        for name, parts in found
                    ],
                )
            )
        return OffsetFetchResponse(groups=groups)
    topics = (
        None
        if request.topics is None and version >= 2
        else [(t.name, list(t.partition_indexes)) for t in request.topics or []]
    )
    error, found = coordinator.fetch_offsets(request.group_id, topics)
    Topic = OffsetFetchResponse.OffsetFetchResponseTopic
    Part = OffsetFetchResponse.OffsetFetchResponsePartition
    if error != ErrorCode.NONE and topics is not None:
        # The group-level error is also each partition's (v0-1 have only those).
        found = [
            (name, [_fetch_error(p, error) for p in parts])
            for name, parts in topics  # type: ignore[misc]
        ]
    return OffsetFetchResponse(
        error_code=error,
        topics=[
            Topic(
                name=name,
                partitions=[
                    Part(
                        partition_index=o.partition,
                        committed_offset=o.offset,
                        committed_leader_epoch=o.leader_epoch,
                        metadata=o.metadata,
                        error_code=o.error,
                    )
                    for o in parts
                ],
            )
            for name, parts in found
        ],
    )


def _fetch_error(partition: int, error: ErrorCode):  # noqa: ANN202
    from strom.coordinator.group.results import FetchedOffset

    return FetchedOffset(partition, -1, -1, "", error)


async def handle_offset_delete(
    services: Services, ctx: RequestContext, request: OffsetDeleteRequest
) -> OffsetDeleteResponse:
    error, results = await services.group_coordinator.delete_offsets(
        request.group_id,
        [(t.name, [p.partition_index for p in t.partitions]) for t in request.topics],
    ).wait()
    Topic = OffsetDeleteResponse.OffsetDeleteResponseTopic
    Part = OffsetDeleteResponse.OffsetDeleteResponsePartition
    return OffsetDeleteResponse(
        error_code=error,
        topics=[
            Topic(name=name, partitions=[Part(partition_index=p, error_code=c) for p, c in parts])
            for name, parts in results
        ],
    )


# -- admin ------------------------------------------------------------------------------------------


async def handle_list_groups(
    services: Services, ctx: RequestContext, request: ListGroupsRequest
) -> ListGroupsResponse:
    error, groups = services.group_coordinator.list_groups(
        request.states_filter, request.types_filter
    )
    return ListGroupsResponse(
        error_code=error,
        groups=[
            ListGroupsResponse.ListedGroup(
                group_id=g.group_id,
                protocol_type=g.protocol_type,
                group_state=g.state,
                group_type=g.type,
            )
            for g in groups
        ],
    )


async def handle_describe_groups(
    services: Services, ctx: RequestContext, request: DescribeGroupsRequest
) -> DescribeGroupsResponse:
    ops = GROUP_OPERATIONS if request.include_authorized_operations else UNSET_OPERATIONS
    Described = DescribeGroupsResponse.DescribedGroup
    Member = DescribeGroupsResponse.DescribedGroupMember
    return DescribeGroupsResponse(
        groups=[
            Described(
                error_code=g.error,
                group_id=g.group_id,
                group_state=g.state,
                protocol_type=g.protocol_type,
                protocol_data=g.protocol_data,
                members=[
                    Member(
                        member_id=m.member_id,
                        group_instance_id=m.instance_id,
                        client_id=m.client_id,
                        client_host=m.client_host,
                        member_metadata=m.metadata,
                        member_assignment=m.assignment,
                    )
                    for m in g.members
                ],
                authorized_operations=ops,
            )
            for g in services.group_coordinator.describe_groups(request.groups)
        ]
    )


async def handle_delete_groups(
    services: Services, ctx: RequestContext, request: DeleteGroupsRequest
) -> DeleteGroupsResponse:
    deleted = await services.group_coordinator.delete_groups(request.groups_names).wait()
    return DeleteGroupsResponse(
        results=[
            DeleteGroupsResponse.DeletableGroupResult(group_id=gid, error_code=code)
            for gid, code in deleted
        ]
    )


# -- the consumer group protocol (KIP-848) ------------------------------------------------------------


async def handle_consumer_group_heartbeat(
    services: Services, ctx: RequestContext, request: ConsumerGroupHeartbeatRequest
) -> ConsumerGroupHeartbeatResponse:
    owned = None
    if request.topic_partitions is not None:
        owned = {}
        for tp in request.topic_partitions:
            owned.setdefault(bytes(tp.topic_id), set()).update(tp.partitions)
    result = await services.group_coordinator.consumer_group_heartbeat(
        ConsumerHeartbeat(
            group_id=request.group_id,
            member_id=request.member_id,
            member_epoch=request.member_epoch,
            instance_id=request.instance_id,
            rack_id=request.rack_id,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            subscribed_topic_names=request.subscribed_topic_names,
            server_assignor=request.server_assignor,
            subscribed_topic_regex=getattr(request, "subscribed_topic_regex", None),
            api_version=ctx.header.api_version,
            owned=owned,
            client_id=ctx.header.client_id or "",
            client_host=client_host(ctx),
        )
    ).wait()
    assignment = None
    if result.assignment is not None:
        assignment = ConsumerGroupHeartbeatResponse.Assignment(
            topic_partitions=[
                ConsumerGroupHeartbeatResponse.TopicPartitions(topic_id=tid, partitions=sorted(ps))
                for tid, ps in sorted(result.assignment.items())
            ]
        )
    return ConsumerGroupHeartbeatResponse(
        error_code=result.error,
        error_message=result.message,
        member_id=result.member_id,
        member_epoch=result.member_epoch,
        heartbeat_interval_ms=result.heartbeat_interval_ms,
        assignment=assignment,
    )


async def handle_consumer_group_describe(
    services: Services, ctx: RequestContext, request: ConsumerGroupDescribeRequest
) -> ConsumerGroupDescribeResponse:
    R = ConsumerGroupDescribeResponse
    ops = GROUP_OPERATIONS if request.include_authorized_operations else UNSET_OPERATIONS

    def assignment(parts: list) -> R.Assignment:  # type: ignore[name-defined]
        return R.Assignment(
            topic_partitions=[
                R.TopicPartitions(topic_id=tid, topic_name=name, partitions=ps)
                for tid, name, ps in parts
            ]
        )

    groups = []
    for g in services.group_coordinator.consumer_group_describe(request.group_ids):
        if g["error"] != ErrorCode.NONE:
            groups.append(
                R.DescribedGroup(
                    error_code=g["error"],
                    error_message=g["message"],
                    group_id=g["group_id"],
                    authorized_operations=ops,
                )
            )
            continue
        groups.append(
            R.DescribedGroup(
                group_id=g["group_id"],
                group_state=g["state"],
                group_epoch=g["group_epoch"],
                assignment_epoch=g["assignment_epoch"],
                assignor_name=g["assignor"],
                members=[
                    R.Member(
                        member_id=m["member_id"],
                        instance_id=m["instance_id"],
                        rack_id=m["rack_id"],
                        member_epoch=m["member_epoch"],
                        client_id=m["client_id"],
                        client_host=m["client_host"],
                        subscribed_topic_names=m["subscribed_topic_names"],
                        subscribed_topic_regex=m["subscribed_topic_regex"],
                        assignment=assignment(m["assignment"]),
                        target_assignment=assignment(m["target_assignment"]),
                    )
                    for m in g["members"]
                ],
                authorized_operations=ops,
            )
        )
    return R(groups=groups)
