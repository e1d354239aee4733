"""Metadata: brokers, topics and partitions, with auto-creation of unknown topics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom.cluster.metadata import ZERO_UUID, TopicMeta
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.messages.metadata import MetadataRequest, MetadataResponse

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

# KIP-430 bit sets of what every principal may do with no authorizer (AclOperation codes)
ALL_TOPIC_OPERATIONS = 3576  # READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE/ALTER_CONFIGS
ALL_CLUSTER_OPERATIONS = 8096  # CREATE ALTER DESCRIBE CLUSTER_ACTION *_CONFIGS IDEMPOTENT_WRITE
UNSET_OPERATIONS = -(2**31)

Topic = MetadataResponse.MetadataResponseTopic
Part = MetadataResponse.MetadataResponsePartition


def _topic(meta: TopicMeta, include_ops: bool) -> Topic:
    return Topic(
        error_code=0,
        name=meta.name,
        topic_id=meta.topic_id,
        is_internal=meta.internal,
        partitions=[
            Part(
                error_code=0,
                partition_index=p.partition,
                leader_id=p.leader,
                leader_epoch=p.leader_epoch,
                replica_nodes=list(p.replicas),
                isr_nodes=list(p.isr),
                offline_replicas=list(p.offline),
            )
            for p in meta.partitions
        ],
        topic_authorized_operations=ALL_TOPIC_OPERATIONS if include_ops else UNSET_OPERATIONS,
    )


def _error(code: ErrorCode, name: str | None, topic_id: bytes = ZERO_UUID) -> Topic:
    return Topic(error_code=code, name=name, topic_id=topic_id, partitions=[])


async def handle(
    services: Services, ctx: RequestContext, request: MetadataRequest
) -> MetadataResponse:
    version = ctx.header.api_version
    image = services.image
    include_ops = request.include_topic_authorized_operations
    topics: list[Topic] = []
    wanted = request.topics
    if wanted is None or (version == 0 and not wanted):
        topics = [_topic(t, include_ops) for t in image.topics.values()]
    else:
        auto_create = (
            request.allow_auto_topic_creation and services.config["auto.create.topics.enable"]
        )
        for entry in wanted:
            name = entry.name
            if name is None:
                name = image.topic_names.get(entry.topic_id)
                if name is None:
                    topics.append(_error(ErrorCode.UNKNOWN_TOPIC_ID, None, entry.topic_id))
                    continue
            meta = image.topics.get(name)
            if meta is None and auto_create:
                try:
                    meta = await services.controller.create_topic(
                        name,
                        services.config["num.partitions"],
                        services.config["default.replication.factor"],
                    )
                except KafkaError as e:
                    topics.append(_error(e.code, name))
                    continue
            if meta is None:
                topics.append(_error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name))
                continue
            topics.append(_topic(meta, include_ops))
    brokers = [
        MetadataResponse.MetadataResponseBroker(
            node_id=b.node_id, host=b.host, port=b.port, rack=b.rack
        )
        for b in image.brokers.values()
    ]
    return MetadataResponse(
        brokers=brokers,
        cluster_id=image.cluster_id,
        controller_id=image.controller_id,
        topics=topics,
        cluster_authorized_operations=(
            ALL_CLUSTER_OPERATIONS
            if request.include_cluster_authorized_operations
            else UNSET_OPERATIONS
        ),
    )
