"""Every group API at every version Strom advertises: the handler answers and the answer encodes
(no field the version cannot carry, no null where the version needs a value)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from strom.broker.apis import APIS
from strom.broker.context import RequestContext
from strom.broker.handlers import groups
from strom.protocol import messages
from strom.protocol.frames import (
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)

GROUP_APIS = sorted(key for key, api in APIS.items() if api.handler.__module__ == groups.__name__)
CASES = [
    (key, v) for key in GROUP_APIS for v in range(APIS[key].min_version, APIS[key].max_version + 1)
]


def _request(key: int, version: int) -> object:
    cls = messages.REQUESTS[key]
    body = cls()
    for name, value in (("group_id", "g"), ("member_id", "m")):
        if hasattr(body, name):
            setattr(body, name, value)
    if key == 11:  # JoinGroup
        body.session_timeout_ms = 10_000
        body.protocol_type = "consumer"
        body.protocols = [cls.JoinGroupRequestProtocol(name="range", metadata=b"")]
        body.member_id = ""
    if key == 68:
        body.member_id = "m"
        body.rebalance_timeout_ms = 1000
        body.subscribed_topic_names = ["orders"]
        body.topic_partitions = []
    if key in (15, 42, 69):
        for attr in ("groups", "groups_names", "group_ids"):
            if hasattr(body, attr):
                setattr(body, attr, ["g", "missing"])
    # Through the wire codec, so each version's defaults are what a client would send.
    _, decoded = decode_request(encode_request(body, version, 1, "client")[4:])
    return decoded


@pytest.mark.parametrize(("key", "version"), CASES, ids=[f"{k}-v{v}" for k, v in CASES])
def test_every_version_answers(harness, key: int, version: int) -> None:  # noqa: ANN001
    services = SimpleNamespace(group_coordinator=harness.coordinator)
    header = RequestHeader(key, version, 1, "client")
    ctx = RequestContext(header, "PLAINTEXT", "127.0.0.1", 50000, 1)
    request = _request(key, version)
    api = APIS[key]

    async def answer() -> object:
        task = asyncio.ensure_future(api.handler(services, ctx, request))  # type: ignore[arg-type]
        for _ in range(100):  # parked joins complete as the fake clock moves on
            if task.done():
                break
            await asyncio.sleep(0)
            harness.timer.advance(1000)
        return await asyncio.wait_for(task, 5)

    response = asyncio.run(answer())
    frame = b"".join(bytes(b) for b in encode_response(response, version, 1))
    corr, decoded = decode_response(frame[4:], key, version)
    assert corr == 1 and type(decoded).__name__ == type(response).__name__.split(".")[-1]
