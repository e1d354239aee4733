"""FindCoordinator: which broker coordinates a group or a transactional id (this one, once the
__consumer_offsets or __transaction_state partition is loaded; the first transactional look-up
creates __transaction_state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom.protocol.errors import ErrorCode
from strom.protocol.messages.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

GROUP = 0
TRANSACTION = 1


def _locate(services: Services, key_type: int, key: str) -> tuple[ErrorCode, str | None]:
    if key_type == GROUP:
        # This node coordinates every group; while its __consumer_offsets partition is still
        # loading (or the coordinator is not up), say so: clients retry.
        error = services.group_coordinator.check_available(key)
        if error == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
            return error, "the group coordinator is loading the group"
        if error != ErrorCode.NONE:
            return error, "the group coordinator is not available"
        return ErrorCode.NONE, None
    if key_type == TRANSACTION:
        services.start_transactions()
        error = services.txn_coordinator.check_available(key)
        if error != ErrorCode.NONE:
            return error, "the transaction coordinator is not available yet"
        return ErrorCode.NONE, None
    return ErrorCode.INVALID_REQUEST, f"unknown coordinator key type {key_type}"


async def handle(
    services: Services, ctx: RequestContext, request: FindCoordinatorRequest
) -> FindCoordinatorResponse:
    me = services.image.brokers[services.node_id]
    if ctx.header.api_version < 4:
        error, message = _locate(services, request.key_type, request.key)
        ok = error == ErrorCode.NONE
        return FindCoordinatorResponse(
            error_code=error,
            error_message=message,
            node_id=me.node_id if ok else -1,
            host=me.host if ok else "",
            port=me.port if ok else -1,
        )
    coordinators = []
    for key in request.coordinator_keys:
        error, message = _locate(services, request.key_type, key)
        ok = error == ErrorCode.NONE
        coordinators.append(
            FindCoordinatorResponse.Coordinator(
                key=key,
                node_id=me.node_id if ok else -1,
                host=me.host if ok else "",
                port=me.port if ok else -1,
                error_code=error,
                error_message=message,
            )
        )
    return FindCoordinatorResponse(coordinators=coordinators)
