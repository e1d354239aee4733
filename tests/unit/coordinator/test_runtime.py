"""The coordinator runtime: writes apply only once committed, in log order; shards load and
unload with leadership; the group coordinator drops and reloads a shard's groups."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from strom.coordinator.runtime import CoordinatorRuntime
from strom.coordinator.writer import LogWriter
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.config import LogConfig
from strom.storage.log import Log

from .helpers import join_new, sync


class Machine:
    """A state machine that records what the runtime applies to it."""

    def __init__(self) -> None:
        self.applied: list[tuple[int, bytes, bytes | None, bool]] = []
        self.loaded: list[int] = []
        self.unloaded: list[int] = []
        self.producers: list[int] = []
        self.markers: list[tuple[int, int, bool]] = []

    def replay(
        self, partition: int, key: bytes, value: bytes | None, live: bool, producer_id: int = -1
    ) -> None:
        self.applied.append((partition, bytes(key), None if value is None else bytes(value), live))
        self.producers.append(producer_id)

    def replay_end_txn(self, partition: int, producer_id: int, commit: bool) -> None:
        self.markers.append((partition, producer_id, commit))

    def on_loaded(self, partition: int) -> None:
        self.loaded.append(partition)

    def on_unloaded(self, partition: int) -> None:
        self.unloaded.append(partition)


class FollowedWriter(LogWriter):
    """A partition with followers: the high watermark moves only when the test says so, and
    waiting for a commit waits for that (or for `fail_waits`)."""

    def __init__(self, log_of) -> None:  # noqa: ANN001
        super().__init__(log_of)
        self.hw: dict[int, int] = {}
        self.moved = asyncio.Event()
        self.wait_result = ErrorCode.NONE
        self.fail_appends: ErrorCode | None = None

    def append(self, partition, records, timestamp, producer=None) -> int:  # noqa: ANN001
        if self.fail_appends is not None:
            raise KafkaError("refused", self.fail_appends)
        return super().append(partition, records, timestamp, producer)

    def high_watermark(self, partition: int) -> int:
        return self.hw.get(partition, 0)

    def advance(self, partition: int, hw: int) -> None:
        self.hw[partition] = hw
        self.moved.set()
        self.moved = asyncio.Event()

    async def wait_committed(self, partition: int, offset: int) -> ErrorCode:
        while self.high_watermark(partition) < offset:
            if self.wait_result != ErrorCode.NONE:
                await asyncio.sleep(0.001)  # the timeout
                return self.wait_result
            await self.moved.wait()
        return ErrorCode.NONE


@pytest.fixture
def logs(tmp_path: Path):  # noqa: ANN201
    made: dict[int, Log] = {}

    def log_of(p: int) -> Log:
        if p not in made:
            made[p] = Log(str(tmp_path / f"__internal-{p}"), LogConfig.from_props({}))
        return made[p]

    yield log_of
    for lg in made.values():
        lg.close(flush=False)


def test_lone_log_write_applies_before_returning(logs) -> None:  # noqa: ANN001
    machine = Machine()
    rt = CoordinatorRuntime("__internal", LogWriter(logs), machine)
    assert rt.status(0) == ErrorCode.NOT_COORDINATOR
    assert rt.write(0, [(b"k", b"v")], 0).result == ErrorCode.NOT_COORDINATOR
    rt.load_now(0)
    assert rt.status(0) == ErrorCode.NONE and machine.loaded == [0]
    done = rt.write(0, [(b"k", b"v"), (b"k2", None)], 1000)
    assert done.done and done.result == ErrorCode.NONE
    assert machine.applied == [(0, b"k", b"v", True), (0, b"k2", None, True)]
    assert logs(0).log_end_offset == 2


def test_writes_apply_only_when_committed_in_order(logs) -> None:  # noqa: ANN001
    async def scenario() -> None:
        machine = Machine()
        writer = FollowedWriter(logs)
        rt = CoordinatorRuntime("__internal", writer, machine)
        rt.load_now(0)
        first = rt.write(0, [(b"a", b"1")], 0)
        second = rt.write(0, [(b"b", b"2"), (b"c", b"3")], 0)
        await asyncio.sleep(0)
        assert not first.done and not second.done
        assert machine.applied == [], "nothing applied before the high watermark passes it"
        writer.advance(0, 1)
        await asyncio.sleep(0.01)
        assert first.result == ErrorCode.NONE and not second.done
        assert [k for _, k, _, _ in machine.applied] == [b"a"]
        writer.advance(0, 3)
        await asyncio.sleep(0.01)
        assert second.result == ErrorCode.NONE
        assert [k for _, k, _, _ in machine.applied] == [b"a", b"b", b"c"]

    asyncio.run(scenario())


def test_unload_fails_uncommitted_writes(logs) -> None:  # noqa: ANN001
    async def scenario() -> None:
        machine = Machine()
        writer = FollowedWriter(logs)
        rt = CoordinatorRuntime("__internal", writer, machine)
        rt.load_now(0, epoch=3)
        pending = rt.write(0, [(b"a", b"1")], 0)
        rt.unload(0, epoch=2)  # an older epoch's resignation changes nothing
        assert rt.status(0) == ErrorCode.NONE and not pending.done
        rt.unload(0, epoch=3)
        assert pending.result == ErrorCode.NOT_COORDINATOR
        assert machine.applied == [] and machine.unloaded == [0]
        assert rt.status(0) == ErrorCode.NOT_COORDINATOR
        # leading again replays the log, the uncommitted record included (the log has it)
        writer.advance(0, 1)
        rt.load_now(0, epoch=4)
        assert machine.applied == [(0, b"a", b"1", False)]

    asyncio.run(scenario())


def test_append_errors_and_commit_timeouts(logs) -> None:  # noqa: ANN001
    async def scenario() -> None:
        machine = Machine()
        writer = FollowedWriter(logs)
        rt = CoordinatorRuntime("__internal", writer, machine)
        rt.load_now(0)
        writer.fail_appends = ErrorCode.NOT_ENOUGH_REPLICAS
        assert rt.write(0, [(b"a", b"1")], 0).result == ErrorCode.NOT_ENOUGH_REPLICAS
        assert logs(0).log_end_offset == 0 and machine.applied == []
        writer.fail_appends = None
        writer.wait_result = ErrorCode.REQUEST_TIMED_OUT
        late = rt.write(0, [(b"b", b"2")], 0)
        await asyncio.sleep(0.01)
        assert late.result == ErrorCode.REQUEST_TIMED_OUT and machine.applied == []
        # the record is in the log: it is applied once it does commit
        writer.wait_result = ErrorCode.NONE
        writer.advance(0, 1)
        rt.write(0, [(b"c", b"3")], 0)
        assert [k for _, k, _, _ in machine.applied] == [b"b"]
        writer.advance(0, 2)
        await asyncio.sleep(0.01)
        assert [k for _, k, _, _ in machine.applied] == [b"b", b"c"]

    asyncio.run(scenario())


def test_background_load_and_newer_epoch(logs) -> None:  # noqa: ANN001
    async def scenario() -> None:
        machine = Machine()
        rt = CoordinatorRuntime("__internal", LogWriter(logs), machine)
        rt.load_now(0)
        for i in range(200):
            rt.write(0, [(b"k%d" % i, b"v")], 0)
        machine.applied.clear()
        rt.schedule_load(0, 0)  # the epoch already loaded: nothing happens
        assert rt.status(0) == ErrorCode.NONE and machine.unloaded == []
        rt.schedule_load(0, 1)
        assert rt.status(0) == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        assert machine.unloaded == [0]
        for _ in range(300):
            if rt.status(0) == ErrorCode.NONE:
                break
            await asyncio.sleep(0.01)
        assert rt.status(0) == ErrorCode.NONE
        assert len(machine.applied) == 200 and not any(live for *_, live in machine.applied)

    asyncio.run(scenario())


def test_group_shard_unloads_and_reloads(harness) -> None:  # noqa: ANN001
    from strom.coordinator.group import OffsetToCommit

    c = harness.coordinator
    gid = "resigning"
    p = c.partition_for(gid)
    member, joined = join_new(c, gid)
    harness.timer.advance(0)  # the initial rebalance delay
    assert joined.done and joined.result.error == ErrorCode.NONE
    generation = joined.result.generation
    assert sync(c, gid, generation, member, [(member, b"all")]).result.error == ErrorCode.NONE
    other = next(g for g in (f"o{i}" for i in range(100)) if c.partition_for(g) != p)
    c.commit_offsets(other, -1, "", None, [("orders", [OffsetToCommit(1, 3)])])
    # a second member's join parks until the rebalance completes
    _, parked = join_new(c, gid)
    harness.timer.advance(0)
    assert not parked.done
    c.resign(p)
    assert parked.result.error == ErrorCode.NOT_COORDINATOR
    assert gid not in c.groups and c.check_available(gid) == ErrorCode.NOT_COORDINATOR
    assert not any(isinstance(k, tuple) and k[1] == gid for k in harness.timer.scheduled_keys())
    assert c.check_available(other) == ErrorCode.NONE  # other shards keep serving
    assert c.fetch_offsets(other, None)[1][0][1][0].offset == 3
    c.runtime.load_now(p, epoch=1)
    assert c.check_available(gid) == ErrorCode.NONE
    assert member in c.groups[gid].members and c.groups[gid].generation == generation
