"""InitProducerId: a new producer id for an idempotent producer; for a transactional one, the
transaction coordinator's id and epoch (an epoch bump fences the producer before it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom.protocol.messages.init_producer_id import InitProducerIdRequest, InitProducerIdResponse

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services


async def handle(
    services: Services, ctx: RequestContext, request: InitProducerIdRequest
) -> InitProducerIdResponse:
    if request.transactional_id is not None:
        services.start_transactions()
        version = ctx.header.api_version
        result = await services.txn_coordinator.init_producer_id(
            request.transactional_id,
            request.transaction_timeout_ms,
            request.producer_id if version >= 3 else -1,
            request.producer_epoch if version >= 3 else -1,
        )
        return InitProducerIdResponse(
            error_code=result.error,
            producer_id=result.producer_id,
            producer_epoch=result.producer_epoch,
        )
    return InitProducerIdResponse(
        error_code=0, producer_id=await services.producer_ids.next_id(), producer_epoch=0
    )
