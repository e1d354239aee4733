"""Every generated message, at every version: random message -> bytes -> message is the same."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom.protocol import messages
from strom.protocol.messages import (
    client_data,
    consumer_protocol,
    group_coordinator,
    headers,
    transaction_coordinator,
)

from .strategies import message

API_CLASSES = [*messages.REQUESTS.values(), *messages.RESPONSES.values()]
DATA_CLASSES = [
    obj
    for mod in (headers, consumer_protocol, client_data, group_coordinator, transaction_coordinator)
    for obj in vars(mod).values()
    if isinstance(obj, type) and hasattr(obj, "MIN_VERSION") and obj.__module__ == mod.__name__
]
CASES = [
    pytest.param(cls, v, id=f"{cls.__name__}-v{v}")
    for cls in API_CLASSES + DATA_CLASSES
    for v in range(cls.MIN_VERSION, cls.MAX_VERSION + 1)
]


def test_every_api_is_generated() -> None:
    assert len(messages.REQUESTS) == len(messages.RESPONSES) >= 80
    assert messages.REQUESTS[0].__name__ == "ProduceRequest"
    assert messages.RESPONSES[18].__name__ == "ApiVersionsResponse"
    assert len(DATA_CLASSES) >= 30


@pytest.mark.parametrize(("cls", "version"), CASES)
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_roundtrip(cls: type, version: int, data: st.DataObject) -> None:
    flexible = version >= cls.FLEXIBLE_MIN
    original = data.draw(message(cls, version, flexible))
    encoded = original.encode(version)
    decoded = cls.decode(encoded, version)
    assert decoded == original
    # the buffer form carries the same bytes
    assert b"".join(bytes(p) for p in original.encode_buffers(version)) == encoded
    # and a decoded message encodes back to exactly the same bytes
    assert decoded.encode(version) == encoded
