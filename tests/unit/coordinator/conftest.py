"""A group coordinator over real logs in a temporary directory, a fake clock and fixed topics."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strom.coordinator.group import (
    GroupConfig,
    GroupCoordinator,
    ManualTimer,
    StaticTopics,
)
from strom.coordinator.writer import LogWriter
from strom.storage.config import LogConfig
from strom.storage.log import Log

TOPICS = {
    "orders": (uuid.UUID(int=1).bytes, 6),
    "audit": (uuid.UUID(int=2).bytes, 2),
    "clicks": (uuid.UUID(int=3).bytes, 4),
}


class Harness:
    """One coordinator instance; `restart()` makes a new one over the same logs (a broker
    restart: only what is in the log survives)."""

    def __init__(self, root: Path, config: GroupConfig) -> None:
        self.root = root
        self.config = config
        self.topics = StaticTopics(TOPICS)
        self.timer = ManualTimer()
        self.logs: dict[int, Log] = {}
        self.coordinator = self._make()

    def log_of(self, partition: int) -> Log:
        lg = self.logs.get(partition)
        if lg is None:
            cfg = LogConfig.from_props({"cleanup.policy": "compact"})
            lg = Log(str(self.root / f"__consumer_offsets-{partition}"), cfg)
            self.logs[partition] = lg
        return lg

    def _make(self) -> GroupCoordinator:
        c = GroupCoordinator(self.config, LogWriter(self.log_of), self.topics, self.timer)
        c.load_all()
        return c

    def restart(self) -> GroupCoordinator:
        self.coordinator.shutdown()
        for lg in self.logs.values():
            lg.close()
        self.logs.clear()
        now = self.timer.now_ms()
        self.timer = ManualTimer(now)
        self.coordinator = self._make()
        return self.coordinator

    def close(self) -> None:
        for lg in self.logs.values():
            lg.close(flush=False)


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def factory(**overrides: object) -> Harness:
        config = GroupConfig(
            offsets_topic_partitions=3,
            initial_rebalance_delay_ms=0,
            min_session_timeout_ms=1000,
            consumer_session_timeout_ms=45_000,
            consumer_heartbeat_interval_ms=1000,
        )
        for k, v in overrides.items():
            setattr(config, k, v)
        h = Harness(tmp_path / f"h{len(made)}", config)
        made.append(h)
        return h

    yield factory
    for h in made:
        h.close()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()
