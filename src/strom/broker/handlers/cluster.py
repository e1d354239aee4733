"""DescribeCluster and DescribeLogDirs."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from strom.broker import admin_partitions
from strom.protocol.errors import ErrorCode
from strom.protocol.messages.describe_cluster import (
    DescribeClusterRequest,
    DescribeClusterResponse,
)
from strom.protocol.messages.describe_log_dirs import (
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
)

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

ENDPOINT_BROKERS = 1
ENDPOINT_CONTROLLERS = 2
_ENDPOINT_NAMES = {ENDPOINT_BROKERS: "BROKER", ENDPOINT_CONTROLLERS: "CONTROLLER"}
UNSET_OPERATIONS = -(2**31)
#: What a client may do to the cluster without an authorizer: Kafka's supported cluster
#: operations CREATE(5), ALTER(7), DESCRIBE(8), CLUSTER_ACTION(9), DESCRIBE_CONFIGS(10),
#: ALTER_CONFIGS(11) and IDEMPOTENT_WRITE(12), one bit each.
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))


async def handle_describe_cluster(
    services: Services, ctx: RequestContext, request: DescribeClusterRequest
) -> DescribeClusterResponse:
    v0 = ctx.header.api_version == 0
    wanted = request.endpoint_type if not v0 else ENDPOINT_BROKERS
    if wanted not in _ENDPOINT_NAMES:
        return DescribeClusterResponse(
            error_code=ErrorCode.INVALID_REQUEST if v0 else ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
            error_message=f"Unsupported endpoint type {wanted}",
        )
    if wanted != ENDPOINT_BROKERS:
        return DescribeClusterResponse(
            error_code=ErrorCode.INVALID_REQUEST if v0 else ErrorCode.MISMATCHED_ENDPOINT_TYPE,
            error_message="The request was sent to an endpoint of type BROKER, but we wanted "
            f"an endpoint of type {_ENDPOINT_NAMES[wanted]}",
        )
    image = services.image
    B = DescribeClusterResponse.DescribeClusterBroker
    brokers = [B(b.node_id, b.host, b.port, b.rack) for _, b in sorted(image.brokers.items())]
    return DescribeClusterResponse(
        error_code=0,
        error_message=None,
        endpoint_type=ENDPOINT_BROKERS,
        cluster_id=image.cluster_id,
        controller_id=image.controller_id if image.controller_id in image.brokers else -1,
        brokers=brokers,
        cluster_authorized_operations=(
            CLUSTER_OPERATIONS
            if request.include_cluster_authorized_operations
            else UNSET_OPERATIONS
        ),
    )


async def handle_describe_log_dirs(
    services: Services, ctx: RequestContext, request: DescribeLogDirsRequest
) -> DescribeLogDirsResponse:
    R = DescribeLogDirsResponse
    wanted = (
        None
        if request.topics is None
        else {(t.topic, p) for t in request.topics for p in t.partitions}
    )
    # sizes come from the segment files (logs not open yet are opened): in a worker thread
    d = await asyncio.to_thread(admin_partitions.describe_log_dir, services.logs, wanted)
    topics = [
        R.DescribeLogDirsTopic(
            name=name,
            partitions=[
                R.DescribeLogDirsPartition(p.partition, p.size, p.offset_lag, p.is_future)
                for p in parts
            ],
        )
        for name, parts in d.topics.items()
    ]
    result = R.DescribeLogDirsResult(
        error_code=0,
        log_dir=d.path,
        topics=topics,
        total_bytes=d.total_bytes,
        usable_bytes=d.usable_bytes,
    )
    return DescribeLogDirsResponse(error_code=0, results=[result])
