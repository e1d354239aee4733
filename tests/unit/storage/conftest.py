"""Fixtures for the storage tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from strom.storage.config import LogConfig
from strom.storage.log import Log


@pytest.fixture
def make_log(tmp_path) -> Iterator[Callable[..., Log]]:
    """Build a Log in tmp_path/<name> from Kafka-named overrides; closed afterwards."""
    logs: list[Log] = []

    def factory(name: str = "topic-0", **overrides: object) -> Log:
        props = {k.replace("_", "."): v for k, v in overrides.items()}
        config = LogConfig.from_props(props)
        log = Log(str(tmp_path / name), config)
        logs.append(log)
        return log

    yield factory
    for log in logs:
        log.close(flush=False)
