"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs (the logic is in admin_configs)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING

from strom.broker import admin_configs as ac
from strom.broker.admin_configs import ConfigEntry, OpType, ResourceType
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.messages.alter_configs import AlterConfigsRequest, AlterConfigsResponse
from strom.protocol.messages.describe_configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from strom.protocol.messages.incremental_alter_configs import (
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)
from strom.storage.manager import validate_topic_name

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

log = logging.getLogger(__name__)

DescribeResult = DescribeConfigsResponse.DescribeConfigsResult
DescribedConfig = DescribeConfigsResponse.DescribeConfigsResourceResult
DescribedSynonym = DescribeConfigsResponse.DescribeConfigsSynonym

#: Resource types Kafka 3.9 knows; any other type fails the whole DescribeConfigs request.
_KNOWN_TYPES = frozenset(int(t) for t in ResourceType if t != ResourceType.UNKNOWN)


def _unsupported(rtype: int) -> KafkaError:
    return KafkaError(
        f"Strom does not support {ResourceType(rtype).name} config resources",
        ErrorCode.INVALID_REQUEST,
    )


def _encode_entry(e: ConfigEntry) -> DescribedConfig:
    return DescribedConfig(
        name=e.name,
        value=e.value,
        read_only=e.read_only,
        is_default=e.is_default,
        config_source=int(e.source),
        is_sensitive=e.sensitive,
        synonyms=[DescribedSynonym(s.name, s.value, int(s.source)) for s in e.synonyms],
        config_type=int(e.type),
        documentation=e.documentation,
    )


def _describe_one(
    services: Services,
    res: DescribeConfigsRequest.DescribeConfigsResource,
    synonyms: bool,
    docs: bool,
) -> list[ConfigEntry]:
    rtype, name, keys = res.resource_type, res.resource_name, res.configuration_keys
    if rtype == ResourceType.TOPIC:
        if not name:
            raise KafkaError(
                "Topic name is illegal, it can't be empty", ErrorCode.INVALID_TOPIC_EXCEPTION
            )
        validate_topic_name(name)
        if name not in services.image.topics:
            raise KafkaError("", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        return ac.describe_topic(
            services.config,
            services.logs.topic_config(name),
            services.logs.topic_overrides(name),
            keys,
            synonyms,
            docs,
        )
    if rtype == ResourceType.BROKER:
        if not name:
            return []  # cluster-wide dynamic defaults: Strom has none
        try:
            requested = int(name)
        except ValueError:
            raise KafkaError(
                f"Broker id must be an integer, but it is: {name}", ErrorCode.INVALID_REQUEST
            ) from None
        if requested != services.node_id:
            raise KafkaError(
                f"Unexpected broker id, expected {services.node_id} or empty string, but received "
                f"{name}",
                ErrorCode.INVALID_REQUEST,
            )
        return ac.describe_broker(services.config, keys, synonyms, docs)
    if rtype == ResourceType.BROKER_LOGGER:
        if not name:
            raise KafkaError("Broker id must not be empty", ErrorCode.INVALID_REQUEST)
        ac.check_node(name, services.node_id)
        return ac.describe_loggers(keys)
    raise _unsupported(rtype)


async def handle_describe_configs(
    services: Services, ctx: RequestContext, request: DescribeConfigsRequest
) -> DescribeConfigsResponse:
    bad = [r.resource_type for r in request.resources if r.resource_type not in _KNOWN_TYPES]
    if bad:
        msg = f"Unexpected resource type {bad[0]}"
        return DescribeConfigsResponse(
            results=[
                DescribeResult(
                    error_code=ErrorCode.INVALID_REQUEST,
                    error_message=msg,
                    resource_type=r.resource_type,
                    resource_name=r.resource_name,
                    configs=[],
                )
                for r in request.resources
            ]
        )
    docs = request.include_documentation and ctx.header.api_version >= 3
    results = []
    for res in request.resources:
        result = DescribeResult(
            error_code=0,
            error_message=None,
            resource_type=res.resource_type,
            resource_name=res.resource_name,
            configs=[],
        )
        try:
            entries = _describe_one(services, res, request.include_synonyms, docs)
            result.configs = [_encode_entry(e) for e in entries]
        except KafkaError as e:
            result.error_code = e.code
            result.error_message = e.message if e.message != e.code.name else None
        results.append(result)
    return DescribeConfigsResponse(results=results)


def _duplicates(resources: list) -> set[tuple[int, str]]:
    counts = Counter((r.resource_type, r.resource_name) for r in resources)
    return {k for k, n in counts.items() if n > 1}


async def _alter_topic(
    services: Services, name: str, overrides: dict[str, str], validate_only: bool
) -> None:
    normalized = ac.validate_topic_overrides(name, overrides, services.logs.default_config)
    if name not in services.image.topics:
        raise KafkaError(
            f"The topic '{name}' does not exist.", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
    if not validate_only:
        await asyncio.to_thread(services.logs.set_topic_config, name, normalized)
        log.info("topic %s: config overrides now %s", name, normalized)


def _check_broker_name(services: Services, name: str) -> None:
    if name:
        ac.check_node(name, services.node_id)


async def handle_alter_configs(
    services: Services, ctx: RequestContext, request: AlterConfigsRequest
) -> AlterConfigsResponse:
    R = AlterConfigsResponse.AlterConfigsResourceResponse
    dups = _duplicates(request.resources)
    responses = []
    for res in request.resources:
        rtype, name = res.resource_type, res.resource_name
        result = R(error_code=0, error_message=None, resource_type=rtype, resource_name=name)
        responses.append(result)
        try:
            if (rtype, name) in dups:
                raise KafkaError(
                    "Each resource must appear at most once.", ErrorCode.INVALID_REQUEST
                )
            configs = [(c.name, c.value) for c in res.configs]
            overrides = ac.replace_overrides(configs)
            if rtype == ResourceType.TOPIC:
                await _alter_topic(services, name, overrides, request.validate_only)
            elif rtype == ResourceType.BROKER:
                _check_broker_name(services, name)
                ac.refuse_broker_change(overrides)
            elif rtype in (ResourceType.CLIENT_METRICS, ResourceType.GROUP):
                raise _unsupported(rtype)
            else:  # BROKER_LOGGER too: legacy AlterConfigs never supported it
                raise KafkaError(f"Unknown resource type {rtype}", ErrorCode.INVALID_REQUEST)
        except KafkaError as e:
            result.error_code = e.code
            result.error_message = e.message
    return AlterConfigsResponse(responses=responses)


async def handle_incremental_alter_configs(
    services: Services, ctx: RequestContext, request: IncrementalAlterConfigsRequest
) -> IncrementalAlterConfigsResponse:
    R = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse
    dups = _duplicates(request.resources)
    responses = []
    for res in request.resources:
        rtype, name = res.resource_type, res.resource_name
        result = R(error_code=0, error_message=None, resource_type=rtype, resource_name=name)
        responses.append(result)
        try:
            if (rtype, name) in dups:
                raise KafkaError(
                    "Each resource must appear at most once.", ErrorCode.INVALID_REQUEST
                )
            ops = [(c.name, c.config_operation, c.value) for c in res.configs]
            ac.check_config_names([n for n, _, _ in ops])
            ac.check_no_nulls([n for n, op, v in ops if op != OpType.DELETE and v is None])
            if rtype == ResourceType.TOPIC:
                current = services.logs.topic_overrides(name)
                overrides = ac.incremental_overrides(current, ops)
                await _alter_topic(services, name, overrides, request.validate_only)
            elif rtype == ResourceType.BROKER:
                _check_broker_name(services, name)
                ac.refuse_broker_change(n for n, op, _ in ops if op != OpType.DELETE)
            elif rtype == ResourceType.BROKER_LOGGER:
                ac.check_node(name, services.node_id)
                ac.alter_loggers(ops, request.validate_only)
            elif rtype in (ResourceType.CLIENT_METRICS, ResourceType.GROUP):
                raise _unsupported(rtype)
            else:
                raise KafkaError(f"Unknown resource type {rtype}", ErrorCode.INVALID_REQUEST)
        except KafkaError as e:
            result.error_code = e.code
            result.error_message = e.message
    return IncrementalAlterConfigsResponse(responses=responses)
