"""ListOffsets and OffsetForLeaderEpoch: offsets by timestamp, and the end of a leader epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom.protocol.errors import KafkaError
from strom.protocol.messages.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from strom.protocol.messages.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

LOPart = ListOffsetsResponse.ListOffsetsPartitionResponse
EpochPart = OffsetForLeaderEpochResponse.EpochEndOffset


async def handle_list_offsets(
    services: Services, ctx: RequestContext, request: ListOffsetsRequest
) -> ListOffsetsResponse:
    read_committed = request.isolation_level == 1
    await services.replica_manager.ready(
        (t.name, p.partition_index) for t in request.topics for p in t.partitions
    )
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            try:
                partition = services.replica_manager.leader(t.name, p.partition_index)
                partition.check_leader_epoch(p.current_leader_epoch)
                offset, ts, epoch = partition.offset_for(p.timestamp, read_committed)
            except KafkaError as e:
                parts.append(LOPart(partition_index=p.partition_index, error_code=e.code))
                continue
            parts.append(
                LOPart(
                    partition_index=p.partition_index,
                    error_code=0,
                    old_style_offsets=[offset] if offset >= 0 else [],
                    timestamp=ts,
                    offset=offset,
                    leader_epoch=epoch,
                )
            )
        topics.append(ListOffsetsResponse.ListOffsetsTopicResponse(name=t.name, partitions=parts))
    return ListOffsetsResponse(topics=topics)


async def handle_offset_for_leader_epoch(
    services: Services, ctx: RequestContext, request: OffsetForLeaderEpochRequest
) -> OffsetForLeaderEpochResponse:
    await services.replica_manager.ready(
        (t.topic, p.partition) for t in request.topics for p in t.partitions
    )
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            try:
                partition = services.replica_manager.leader(t.topic, p.partition)
                partition.check_leader_epoch(p.current_leader_epoch)
                epoch, end = partition.log.end_offset_for_epoch(p.leader_epoch)
            except KafkaError as e:
                parts.append(EpochPart(partition=p.partition, error_code=e.code))
                continue
            parts.append(
                EpochPart(partition=p.partition, error_code=0, leader_epoch=epoch, end_offset=end)
            )
        topics.append(
            OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult(topic=t.topic, partitions=parts)
        )
    return OffsetForLeaderEpochResponse(topics=topics)
