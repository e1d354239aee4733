"""ApiVersions: which APIs and versions this broker answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom.protocol.errors import ErrorCode
from strom.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services


def api_versions_response(
    supported: dict[int, tuple[int, int]], error: ErrorCode = ErrorCode.NONE
) -> ApiVersionsResponse:
    keys = [
        ApiVersionsResponse.ApiVersion(api_key=k, min_version=lo, max_version=hi)
        for k, (lo, hi) in sorted(supported.items())
    ]
    return ApiVersionsResponse(error_code=error, api_keys=keys)


async def handle(
    services: Services, ctx: RequestContext, request: ApiVersionsRequest
) -> ApiVersionsResponse:
    return api_versions_response(services.supported_versions())
