"""CreatePartitions and DeleteRecords (the logic is in admin_partitions)."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from strom.broker import admin_partitions
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.messages.create_partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
)
from strom.protocol.messages.delete_records import DeleteRecordsRequest, DeleteRecordsResponse

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

log = logging.getLogger(__name__)


async def handle_create_partitions(
    services: Services, ctx: RequestContext, request: CreatePartitionsRequest
) -> CreatePartitionsResponse:
    R = CreatePartitionsResponse.CreatePartitionsTopicResult
    counts = Counter(t.name for t in request.topics)
    # Kafka answers each duplicated name once, ahead of the others.
    results = [
        R(name=name, error_code=ErrorCode.INVALID_REQUEST, error_message="Duplicate topic name.")
        for name, n in counts.items()
        if n > 1
    ]
    for t in request.topics:
        if counts[t.name] > 1:
            continue
        result = R(name=t.name, error_code=0, error_message=None)
        results.append(result)
        assignments = None if t.assignments is None else [list(a.broker_ids) for a in t.assignments]
        try:
            await admin_partitions.create_partitions(
                services.controller, t.name, t.count, assignments, request.validate_only
            )
        except KafkaError as e:
            result.error_code = e.code
            result.error_message = e.message
    return CreatePartitionsResponse(results=results)


async def handle_delete_records(
    services: Services, ctx: RequestContext, request: DeleteRecordsRequest
) -> DeleteRecordsResponse:
    T = DeleteRecordsResponse.DeleteRecordsTopicResult
    P = DeleteRecordsResponse.DeleteRecordsPartitionResult
    await services.replica_manager.ready(
        (t.name, p.partition_index) for t in request.topics for p in t.partitions
    )
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            result = P(partition_index=p.partition_index, low_watermark=-1, error_code=0)
            parts.append(result)
            try:
                partition = services.replica_manager.leader(t.name, p.partition_index)
                result.low_watermark = admin_partitions.delete_records(partition, p.offset)
            except KafkaError as e:
                result.error_code = e.code
                result.low_watermark = -1
        topics.append(T(name=t.name, partitions=parts))
    return DeleteRecordsResponse(topics=topics)
