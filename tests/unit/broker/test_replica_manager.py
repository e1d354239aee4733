"""The replica manager and Partition without a socket: roles from metadata images, the high
watermark from the ISR, follower versus consumer reads, acks=all waits, min.insync.replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from strom.broker.partition import Isolation
from strom.broker.purgatory import Purgatory
from strom.broker.replica_manager import AppendWait, ReplicaManager
from strom.cluster.metadata import (
    BrokerMeta,
    MetadataDelta,
    MetadataImage,
    PartitionMeta,
    TopicMeta,
)
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import build_batch
from strom.storage.manager import LogManager

ME, OTHER = 0, 1
TID = bytes(range(16))


def batch(n: int = 3) -> bytearray:
    return bytearray(build_batch([(b"k", b"v%d" % i) for i in range(n)]))


def topic(*partitions: PartitionMeta, name: str = "t") -> TopicMeta:
    return TopicMeta(name, TID, tuple(partitions))


def led_by(leader: int, replicas: tuple[int, ...], isr: tuple[int, ...], epoch: int = 0):  # noqa: ANN201
    return PartitionMeta(0, leader, epoch, replicas, isr, partition_epoch=epoch)


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[LogManager]:
    manager = LogManager(str(tmp_path / "data"))
    yield manager
    manager.close()


def image_with(t: TopicMeta) -> tuple[MetadataImage, MetadataDelta]:
    base = MetadataImage("cluster", ME).apply(
        MetadataDelta(brokers={ME: BrokerMeta(ME, "h", 1), OTHER: BrokerMeta(OTHER, "h", 2)})
    )
    delta = MetadataDelta(topics={t.name: t})
    return base.apply(delta), delta


def manager_with(logs: LogManager, t: TopicMeta) -> ReplicaManager:
    rm = ReplicaManager(ME, logs, Purgatory())
    image, delta = image_with(t)
    asyncio.run(rm.apply(image, delta))
    return rm


def test_a_follower_fetch_reads_past_the_high_watermark_a_consumer_does_not(
    logs: LogManager,
) -> None:
    rm = manager_with(logs, topic(led_by(ME, (ME, OTHER), (ME, OTHER))))
    out = rm.append("t", 0, batch(3), 1)
    assert (out.base_offset, out.last_offset) == (0, 2)
    p = rm.leader("t", 0)
    assert p.log_end_offset == 3
    assert p.high_watermark == 0  # the follower in the ISR has none of it yet
    assert p.read(0, 1 << 20, Isolation.HIGH_WATERMARK, True).length == 0
    assert p.read(0, 1 << 20, Isolation.COMMITTED, True).length == 0
    assert p.read(0, 1 << 20, Isolation.LOG_END, True).length > 0
    # the follower fetches from offset 3: it holds 0..2, so the ISR does and the HW moves
    assert p.update_follower(OTHER, 3) is True
    assert p.high_watermark == 3
    assert p.read(0, 1 << 20, Isolation.HIGH_WATERMARK, True).length > 0
    assert p.followers[OTHER].log_end_offset == 3
    assert p.followers[OTHER].last_caught_up_ms > 0


def test_a_partition_led_elsewhere_answers_not_leader_or_follower(logs: LogManager) -> None:
    rm = manager_with(logs, topic(led_by(OTHER, (OTHER, ME), (OTHER, ME))))
    assert not rm.get("t", 0).is_leader
    with pytest.raises(KafkaError) as e:
        rm.append("t", 0, batch(), 1)
    assert e.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    with pytest.raises(KafkaError) as e:
        rm.leader("t", 0)
    assert e.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    with pytest.raises(KafkaError) as e:
        rm.leader("t", 1)
    assert e.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_leadership_moves_with_the_image(logs: LogManager) -> None:
    rm = manager_with(logs, topic(led_by(OTHER, (OTHER, ME), (OTHER, ME), epoch=3)))
    image, delta = image_with(topic(led_by(ME, (OTHER, ME), (ME,), epoch=4)))
    asyncio.run(rm.apply(image, delta))
    p = rm.leader("t", 0)
    assert (p.leader_epoch, p.isr) == (4, (ME,))
    rm.append("t", 0, batch(2), -1)
    assert p.high_watermark == 2  # alone in the ISR: the HW is the log end
    assert p.log.latest_epoch == 4


def test_acks_all_waits_for_the_isr_and_times_out(logs: LogManager) -> None:
    rm = manager_with(logs, topic(led_by(ME, (ME, OTHER), (ME, OTHER))))
    p = rm.leader("t", 0)

    async def scenario() -> tuple[dict, dict]:
        out = rm.append("t", 0, batch(3), -1)
        waits = {("t", 0): AppendWait(p, out.last_offset + 1)}
        timed_out = await rm.wait_for_acks(waits, 0.05)

        async def follower() -> None:
            await asyncio.sleep(0.02)
            if p.update_follower(OTHER, 3):
                rm.purgatory.notify(("hw", "t", 0))

        task = asyncio.create_task(follower())
        done = await rm.wait_for_acks(waits, 5)
        await task
        return timed_out, done

    timed_out, done = asyncio.run(scenario())
    assert timed_out == {("t", 0): ErrorCode.REQUEST_TIMED_OUT}
    assert done == {("t", 0): ErrorCode.NONE}


def test_min_insync_replicas_before_and_after_the_append(logs: LogManager) -> None:
    logs.set_topic_config("t", {"min.insync.replicas": "2"})
    rm = manager_with(logs, topic(led_by(ME, (ME, OTHER), (ME,))))
    with pytest.raises(KafkaError) as e:
        rm.append("t", 0, batch(), -1)
    assert e.value.code == ErrorCode.NOT_ENOUGH_REPLICAS
    assert rm.leader("t", 0).log_end_offset == 0  # refused before anything was written
    rm.append("t", 0, batch(), 1)  # acks=1 does not need the ISR

    # the ISR was whole at the append and shrank before the acks were answered
    image, delta = image_with(topic(led_by(ME, (ME, OTHER), (ME, OTHER))))
    asyncio.run(rm.apply(image, delta))
    p = rm.leader("t", 0)
    out = rm.append("t", 0, batch(), -1)
    p.update_follower(OTHER, out.last_offset + 1)
    image, delta = image_with(topic(led_by(ME, (ME, OTHER), (ME,))))
    asyncio.run(rm.apply(image, delta))
    waits = {("t", 0): AppendWait(p, out.last_offset + 1)}
    result = asyncio.run(rm.wait_for_acks(waits, 1))
    assert result == {("t", 0): ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND}


def test_deleting_a_topic_stops_serving_it_and_removes_its_logs(logs: LogManager) -> None:
    rm = manager_with(logs, topic(led_by(ME, (ME,), (ME,))))
    rm.append("t", 0, batch(), 1)
    image, _ = image_with(topic(led_by(ME, (ME,), (ME,))))
    asyncio.run(rm.apply(image, MetadataDelta(deleted=frozenset({"t"}))))
    assert rm.partitions == {}
    assert logs.get_log("t", 0) is None


def test_logs_open_in_a_worker_and_bring_the_high_watermark_up(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    with LogManager(data) as logs:
        rm = manager_with(logs, topic(led_by(ME, (ME,), (ME,))))
        rm.append("t", 0, batch(5), 1)
    logs = LogManager(data)
    try:
        rm = ReplicaManager(ME, logs, Purgatory())
        image, _ = image_with(topic(led_by(ME, (ME,), (ME,))))
        rm.load_image(image)
        p = rm.get("t", 0)
        assert not p.log.loaded  # nothing read at start
        asyncio.run(rm.open_logs())
        assert p.log.loaded and p.high_watermark == 5
    finally:
        logs.close()
