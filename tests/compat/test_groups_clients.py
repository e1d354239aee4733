"""Groups with kafka-python and aiokafka (commit, close, resume), a broker restart in the middle
of a confluent-kafka group, and bad input at the wire level: Kafka's error codes for commits
that must be refused, and a flood of joins that must not cost memory."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

from aiokafka import AIOKafkaConsumer
from confluent_kafka import Producer
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient

from strom.protocol.errors import ErrorCode
from strom.protocol.frames import decode_response, encode_request
from strom.protocol.messages.find_coordinator import FindCoordinatorRequest
from strom.protocol.messages.heartbeat import HeartbeatRequest
from strom.protocol.messages.join_group import JoinGroupRequest
from strom.protocol.messages.list_groups import ListGroupsRequest
from strom.protocol.messages.offset_commit import OffsetCommitRequest
from strom.protocol.messages.offset_fetch import OffsetFetchRequest
from strom.protocol.messages.sync_group import SyncGroupRequest
from tests.conftest import StromProcess
from tests.rawclient import RawClient

from .test_groups import BROKER, EAGER, Scenario
from .util import create_topic

TIMEOUT_MS = 15000


def _produce(bootstrap: str, topic: str, start: int, count: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        p.produce(topic, str(i).encode(), partition=i % 3)
    assert p.flush(15) == 0


def test_kafka_python_group_commits_and_resumes(strom: StromProcess) -> None:
    create_topic(strom.bootstrap, "kp-grp", 3)
    _produce(strom.bootstrap, "kp-grp", 0, 60)

    def consume(n: int) -> list[int]:
        c = KafkaConsumer(
            "kp-grp",
            bootstrap_servers=strom.bootstrap,
            group_id="kp-group",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10000,
            request_timeout_ms=TIMEOUT_MS + 5000,
            fetch_max_wait_ms=100,
        )
        got: list[int] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < n and time.monotonic() < deadline:
                for records in c.poll(timeout_ms=300, max_records=n - len(got)).values():
                    got.extend(int(r.value) for r in records)
            c.commit()
            assert {tp.partition for tp in c.assignment()} == {0, 1, 2}
        finally:
            c.close()
        return got

    first = consume(40)
    assert len(first) == 40
    _produce(strom.bootstrap, "kp-grp", 60, 30)
    rest = consume(50)
    assert sorted(first + rest) == list(range(90)), "resume where the group left off"
    admin = KafkaAdminClient(bootstrap_servers=strom.bootstrap, request_timeout_ms=TIMEOUT_MS)
    try:
        listed = admin.list_groups()
        assert any("kp-group" in str(g) for g in listed), listed
        offsets = admin.list_group_offsets({"kp-group": None})["kp-group"]
        assert {tp.partition: o.offset for tp, o in offsets.items()} == {0: 30, 1: 30, 2: 30}
    finally:
        admin.close()


def test_aiokafka_group_commits_and_resumes(strom: StromProcess) -> None:
    create_topic(strom.bootstrap, "aio-grp", 3)
    _produce(strom.bootstrap, "aio-grp", 0, 60)

    async def consume(n: int) -> list[int]:
        c = AIOKafkaConsumer(
            "aio-grp",
            bootstrap_servers=strom.bootstrap,
            group_id="aio-group",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=TIMEOUT_MS + 5000,
            fetch_max_wait_ms=100,
        )
        await c.start()
        got: list[int] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < n and time.monotonic() < deadline:
                batch = await c.getmany(timeout_ms=300, max_records=n - len(got))
                for records in batch.values():
                    got.extend(int(r.value) for r in records)
            await c.commit()
        finally:
            await c.stop()
        return got

    first = asyncio.run(consume(25))
    assert len(first) == 25
    _produce(strom.bootstrap, "aio-grp", 60, 15)
    rest = asyncio.run(consume(50))
    assert sorted(first + rest) == list(range(75))


def test_broker_restart_in_the_middle(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory(config=BROKER)
    s = Scenario(strom, "grp-restart", EAGER)
    try:
        s.produce_batch()
        s.start("a"), s.start("b")
        s.wait_members(2)
        s.wait_consumed()
        strom.kill()  # unclean: the committed offsets must come back from the log
        strom.start()
        s.producer = Producer({"bootstrap.servers": strom.bootstrap, "linger.ms": 5})
        s.produce_batch()
        s.wait_consumed()
        s.wait_members(2)
        s.produce_batch()
        s.wait_consumed()
        for w in s.workers:
            w.stop()
        s.check_exactly_once()
    finally:
        s.close()
    assert "loaded __consumer_offsets" in strom.log()


# -- the wire level ------------------------------------------------------------------------------


def _join(raw: RawClient, group: str, member_id: str = "", instance: str | None = None):  # noqa: ANN202
    return raw.call(
        JoinGroupRequest(
            group_id=group,
            session_timeout_ms=10000,
            rebalance_timeout_ms=10000,
            member_id=member_id,
            group_instance_id=instance,
            protocol_type="consumer",
            protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=b"")],
        ),
        9,
    )


def _commit(raw: RawClient, group: str, generation: int, member: str, topic: str, **kw: object):  # noqa: ANN202
    version = kw.pop("version", 8)
    r = raw.call(
        OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=generation,
            member_id=member,
            group_instance_id=kw.pop("instance", None),
            topics=[
                OffsetCommitRequest.OffsetCommitRequestTopic(
                    name=topic,
                    partitions=[
                        OffsetCommitRequest.OffsetCommitRequestPartition(
                            partition_index=0, committed_offset=5
                        )
                    ],
                )
            ],
        ),
        version,
    )
    return r.topics[0].partitions[0].error_code


def wait_loaded(raw: RawClient, *groups: str) -> None:
    """The coordinator loads __consumer_offsets in the background: wait until it serves these
    groups (FindCoordinator answers COORDINATOR_LOAD_IN_PROGRESS until then)."""
    deadline = time.monotonic() + 20
    while any(raw.call(FindCoordinatorRequest(key=g), 3).error_code for g in groups):
        assert time.monotonic() < deadline, "the group coordinator did not load"
        time.sleep(0.1)


def test_bad_commits_get_kafkas_error_codes(strom: StromProcess) -> None:
    create_topic(strom.bootstrap, "known", 1)
    with RawClient(strom.bootstrap) as raw:
        wait_loaded(raw, "x", "y", "g0", "g1", "nope")
        found = raw.call(FindCoordinatorRequest(key_type=0, coordinator_keys=["x", "y"]), 4)
        assert [(c.key, c.error_code, c.port) for c in found.coordinators] == [
            ("x", 0, strom.port),
            ("y", 0, strom.port),
        ]
        assert _commit(raw, "g0", -1, "", "unknown-topic") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert _commit(raw, "nope", 3, "m", "known", version=9) == ErrorCode.GROUP_ID_NOT_FOUND
        first = _join(raw, "g1")
        assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
        joined = _join(raw, "g1", first.member_id)
        assert joined.error_code == 0 and joined.leader == first.member_id
        gen, me = joined.generation_id, joined.member_id
        synced = raw.call(
            SyncGroupRequest(
                group_id="g1",
                generation_id=gen,
                member_id=me,
                assignments=[
                    SyncGroupRequest.SyncGroupRequestAssignment(member_id=me, assignment=b"a")
                ],
            ),
            5,
        )
        assert synced.error_code == 0 and synced.assignment == b"a"
        assert _commit(raw, "g1", gen, me, "known") == ErrorCode.NONE
        assert _commit(raw, "g1", gen - 1, me, "known") == ErrorCode.ILLEGAL_GENERATION
        assert _commit(raw, "g1", gen, "stranger", "known") == ErrorCode.UNKNOWN_MEMBER_ID
        hb = raw.call(HeartbeatRequest(group_id="g1", generation_id=gen + 7, member_id=me), 4)
        assert hb.error_code == ErrorCode.ILLEGAL_GENERATION
        # A static member replaced by a restarted instance is fenced.
        old = _join(raw, "g2", instance="static-1")
        raw.call(
            SyncGroupRequest(
                group_id="g2",
                generation_id=old.generation_id,
                member_id=old.member_id,
                group_instance_id="static-1",
            ),
            5,
        )
        new = _join(raw, "g2", instance="static-1")
        assert new.error_code == 0 and new.member_id != old.member_id
        fenced = _commit(raw, "g2", old.generation_id, old.member_id, "known", instance="static-1")
        assert fenced == ErrorCode.FENCED_INSTANCE_ID
        # OffsetFetch v8: several groups at once.
        fetched = raw.call(
            OffsetFetchRequest(
                groups=[
                    OffsetFetchRequest.OffsetFetchRequestGroup(group_id="g1", topics=None),
                    OffsetFetchRequest.OffsetFetchRequestGroup(group_id="none", topics=None),
                ]
            ),
            8,
        )
        by_group = {
            g.group_id: [(t.name, [p.committed_offset for p in t.partitions]) for t in g.topics]
            for g in fetched.groups
        }
        assert by_group == {"g1": [("known", [5])], "none": []}


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_join_flood_does_not_exhaust_memory(strom_factory) -> None:  # noqa: ANN001
    strom = strom_factory(config={**BROKER, "strom.group.max.pending.members": "2000"})
    assert strom.proc is not None
    body = JoinGroupRequest(
        group_id="flood",
        session_timeout_ms=6000,
        rebalance_timeout_ms=6000,
        member_id="",
        protocol_type="consumer",
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=b"x" * 200)],
    )
    n = 20_000
    frames = b"".join(encode_request(body, 9, i, "flooder") for i in range(n))
    with RawClient(strom.bootstrap) as warm:
        wait_loaded(warm, "flood")
    before = _rss(strom.proc.pid)
    sock = socket.create_connection(("127.0.0.1", strom.port), timeout=30)
    codes: dict[int, int] = {}
    # Send from a thread while reading here, so neither side's buffers fill up and block.
    sender = threading.Thread(target=sock.sendall, args=(frames,), daemon=True)
    try:
        sender.start()
        buf = b""
        for _ in range(n):
            while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
                chunk = sock.recv(1 << 16)
                assert chunk, "the broker closed the connection"
                buf += chunk
            size = struct.unpack_from(">i", buf)[0]
            _, r = decode_response(buf[4 : 4 + size], 11, 9)
            buf = buf[4 + size :]
            codes[r.error_code] = codes.get(r.error_code, 0) + 1
        sender.join(10)
    finally:
        sock.close()
    grown = _rss(strom.proc.pid) - before
    assert codes == {ErrorCode.MEMBER_ID_REQUIRED: 2000, ErrorCode.GROUP_MAX_SIZE_REACHED: n - 2000}
    assert grown < 40 << 20, f"RSS grew by {grown >> 20} MiB"
    # The member ids handed out expire after the session timeout; the group is forgotten.
    with RawClient(strom.bootstrap) as raw:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            groups = [g.group_id for g in raw.call(ListGroupsRequest(), 4).groups]
            if "flood" not in groups:
                break
            time.sleep(0.5)
        assert "flood" not in groups


def test_deleting_a_topic_drops_its_committed_offsets(strom) -> None:  # noqa: ANN001
    """A topic deleted and made again under its name starts with no committed offsets."""
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": strom.bootstrap})
    for f in admin.create_topics([NewTopic("again", 1, 1)]).values():
        f.result(20)
    c = ck.Consumer({"bootstrap.servers": strom.bootstrap, "group.id": "g-again"})
    c.commit(offsets=[ck.TopicPartition("again", 0, 42)], asynchronous=False)
    assert c.committed([ck.TopicPartition("again", 0)], timeout=10)[0].offset == 42
    for f in admin.delete_topics(["again"]).values():
        f.result(20)
    for f in admin.create_topics([NewTopic("again", 1, 1)]).values():
        f.result(20)
    assert c.committed([ck.TopicPartition("again", 0)], timeout=10)[0].offset == ck.OFFSET_INVALID
    c.close()
