"""CreateTopics and DeleteTopics."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from strom.broker.admin_configs import describe_topic
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.messages.create_topics import CreateTopicsRequest, CreateTopicsResponse
from strom.protocol.messages.delete_topics import DeleteTopicsRequest, DeleteTopicsResponse
from strom.storage.config import LogConfig

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

log = logging.getLogger(__name__)
Result = CreateTopicsResponse.CreatableTopicResult
ConfigOut = CreateTopicsResponse.CreatableTopicConfigs


def _created_configs(services: Services, config: LogConfig, overrides: dict[str, str]) -> list:
    """The new topic's configs with their sources, as DescribeConfigs would give them."""
    return [
        ConfigOut(
            name=e.name,
            value=e.value,
            read_only=e.read_only,
            config_source=e.source,
            is_sensitive=e.sensitive,
        )
        for e in describe_topic(services.config, config, overrides)
    ]


async def handle_create_topics(
    services: Services, ctx: RequestContext, request: CreateTopicsRequest
) -> CreateTopicsResponse:
    controller = services.controller
    results = []
    names = [t.name for t in request.topics]
    for t in request.topics:
        result = Result(name=t.name, error_code=0, error_message=None)
        results.append(result)
        try:
            if names.count(t.name) > 1:
                raise KafkaError(
                    f"Create topics request from client `{ctx.header.client_id}` contains multiple "
                    f"entries for the following topics: {t.name}",
                    ErrorCode.INVALID_REQUEST,
                )
            partitions = t.num_partitions
            rf = t.replication_factor
            if t.assignments:
                if partitions != -1 or rf != -1:
                    raise KafkaError(
                        "Both numPartitions or replicationFactor and replicasAssignments were set. "
                        "Both cannot be used at the same time.",
                        ErrorCode.INVALID_REQUEST,
                    )
                partitions = len(t.assignments)
                rf = len(t.assignments[0].broker_ids)
                for a in t.assignments:
                    unknown = [b for b in a.broker_ids if b not in services.image.brokers]
                    if unknown or len(set(a.broker_ids)) != len(a.broker_ids):
                        raise KafkaError(
                            f"invalid replica assignment {a.broker_ids}",
                            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                        )
            if partitions == -1:
                partitions = services.config["num.partitions"]
            if rf == -1:
                rf = services.config["default.replication.factor"]
            configs = {c.name: c.value for c in t.configs}
            if request.validate_only:
                config = controller.check_new_topic(t.name, partitions, rf, configs)
                meta = None
            else:
                meta = await controller.create_topic(t.name, partitions, rf, configs)
                config = services.logs.topic_config(t.name)
        except KafkaError as e:
            result.error_code = e.code
            result.error_message = e.message
            continue
        result.num_partitions = partitions
        result.replication_factor = rf
        result.configs = _created_configs(
            services, config, {k: v for k, v in configs.items() if v is not None}
        )
        if meta is not None:
            result.topic_id = meta.topic_id
    return CreateTopicsResponse(topics=results)


async def handle_delete_topics(
    services: Services, ctx: RequestContext, request: DeleteTopicsRequest
) -> DeleteTopicsResponse:
    R = DeleteTopicsResponse.DeletableTopicResult
    if ctx.header.api_version >= 6:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    else:
        wanted = [(n, None) for n in request.topic_names]
    results = []
    for name, topic_id in wanted:
        result = R(name=name, topic_id=topic_id or bytes(16), error_code=0)
        results.append(result)
        try:
            if not services.config["delete.topic.enable"]:
                raise KafkaError("Topic deletion is disabled.", ErrorCode.TOPIC_DELETION_DISABLED)
            if name is None:
                name = services.image.topic_names.get(topic_id or b"")
                if name is None:
                    raise KafkaError("unknown topic id", ErrorCode.UNKNOWN_TOPIC_ID)
                result.name = name
            meta = await services.controller.delete_topic(name)
            result.topic_id = meta.topic_id
        except KafkaError as e:
            result.error_code = e.code
            result.error_message = e.message
    return DeleteTopicsResponse(responses=results)
