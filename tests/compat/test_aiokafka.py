"""aiokafka against a real `strom serve`: produce and consume round trips with assign() in all
four codecs, and admin create/delete topics."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2

from tests.conftest import StromProcess

TIMEOUT_MS = 15000


def run(coro, timeout: float = 60):  # noqa: ANN001, ANN201
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _create(strom: StromProcess, *topics: NewTopic) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=strom.bootstrap, request_timeout_ms=TIMEOUT_MS)
    await admin.start()
    try:
        await admin.create_topics(list(topics), timeout_ms=TIMEOUT_MS)
    finally:
        await admin.close()


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_produce_consume_round_trip(strom: StromProcess, codec: str | None) -> None:
    topic, partitions, keys, per_key = f"aio-{codec}", 3, 10, 20

    async def scenario() -> None:
        await _create(strom, NewTopic(topic, partitions, 1))
        producer = AIOKafkaProducer(
            bootstrap_servers=strom.bootstrap,
            acks="all",
            compression_type=codec,
            linger_ms=5,
            request_timeout_ms=TIMEOUT_MS,
        )
        await producer.start()
        try:
            futures = []
            for n in range(per_key):
                for k in range(keys):
                    futures.append(
                        await producer.send(
                            topic,
                            key=b"key-%d" % k,
                            value=b"%d-%d|" % (k, n) + b"y" * (n * 10),
                            headers=[("k", b"%d" % k)],
                        )
                    )
            metas = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        for p in range(partitions):
            mine = sorted(m.offset for m in metas if m.partition == p)
            assert mine == list(range(len(mine)))

        consumer = AIOKafkaConsumer(
            bootstrap_servers=strom.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=TIMEOUT_MS + 5000,
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            got: list = []
            while len(got) < keys * per_key:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    got.extend(records)
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()

        assert len(got) == keys * per_key
        for tp in tps:
            offsets = [r.offset for r in got if r.partition == tp.partition]
            assert offsets == list(range(len(offsets)))
            assert ends[tp] == len(offsets)
        for k in range(keys):
            key = b"key-%d" % k
            mine = [r for r in got if r.key == key]
            assert {r.partition for r in mine} == {(murmur2(key) & 0x7FFFFFFF) % partitions}
            assert [r.value for r in mine] == [
                b"%d-%d|" % (k, n) + b"y" * (n * 10) for n in range(per_key)
            ]
            assert all(list(r.headers) == [("k", b"%d" % k)] for r in mine)

    run(scenario())


def test_admin_create_delete_topics(strom: StromProcess) -> None:
    async def scenario() -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=strom.bootstrap, request_timeout_ms=TIMEOUT_MS
        )
        await admin.start()
        try:
            created = await admin.create_topics(
                [
                    NewTopic("aio-a", 2, 1, topic_configs={"cleanup.policy": "compact"}),
                    NewTopic("aio-b", 1, 1),
                ],
                timeout_ms=TIMEOUT_MS,
            )
            assert {t[0]: t[1] for t in created.topic_errors} == {"aio-a": 0, "aio-b": 0}
            assert {"aio-a", "aio-b"} <= set(await admin.list_topics())

            dup = await admin.create_topics([NewTopic("aio-a", 2, 1)], timeout_ms=TIMEOUT_MS)
            assert dup.topic_errors[0][1] == 36  # TOPIC_ALREADY_EXISTS

            described = {t["topic"]: t for t in await admin.describe_topics(["aio-a"])}
            assert sorted(p["partition"] for p in described["aio-a"]["partitions"]) == [0, 1]

            deleted = await admin.delete_topics(["aio-a", "aio-b"], timeout_ms=TIMEOUT_MS)
            assert sorted((t[0], t[1]) for t in deleted.topic_error_codes) == [
                ("aio-a", 0),
                ("aio-b", 0),
            ]
            assert not {"aio-a", "aio-b"} & set(await admin.list_topics())
        finally:
            await admin.close()

    run(scenario())
