"""The ZooKeeper coordination layer against a real ZooKeeper server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

from strom.cluster.coordination import (
    BrokerIdTakenError,
    BrokerRegistration,
    BrokerRegistry,
    CodecError,
    ConfigChange,
    ConfigStore,
    Controller,
    ControllerElection,
    ControllerMovedError,
    Endpoint,
    FeatureRange,
    NoSuchTopicError,
    PartitionState,
    SessionEvent,
    StaleStateError,
    TopicAssignment,
    TopicExistsError,
    TopicStore,
    ZkSession,
    ZkUnavailableError,
    allocate_producer_id_block,
    codec,
    get_or_create_cluster_id,
    parse_connect,
    paths,
)
from tests.cluster.conftest import ZooKeeperServer, eventually, expire_session
from tests.conftest import free_port

NewSession = Callable[..., ZkSession]


def registration(broker_id: int, port: int = 9092, rack: str | None = None) -> BrokerRegistration:
    return BrokerRegistration(
        broker_id,
        (Endpoint("PLAINTEXT", "127.0.0.1", port),),
        {"PLAINTEXT": "PLAINTEXT"},
        rack=rack,
        timestamp_ms=1_700_000_000_000,
    )


def assignment(partitions: dict[int, tuple[int, ...]]) -> TopicAssignment:
    return TopicAssignment(b"\x01" * 16, partitions)


# ---- no server needed ----------------------------------------------------------------------


def test_connect_strings_are_parsed_and_checked() -> None:
    parsed = parse_connect("zk1:2181,[::1]:2182/strom/a/")
    assert parsed.hosts == "zk1:2181,[::1]:2182" and parsed.chroot == "/strom/a"
    assert str(parsed) == "zk1:2181,[::1]:2182/strom/a"
    assert parse_connect("127.0.0.1:2181").chroot == ""
    for bad in ("", "zk1", "zk1:port", "zk1:2181,", "/chroot", "zk1:2181/../x"):
        with pytest.raises(ValueError):
            parse_connect(bad)


def test_paths_follow_kafkas_layout_and_refuse_escapes() -> None:
    assert paths.broker(3) == "/brokers/ids/3"
    assert paths.partition_state("t.x", 2) == "/brokers/topics/t.x/partitions/2/state"
    assert paths.topic_config("t") == "/config/topics/t"
    assert paths.broker_config(None) == "/config/brokers/<default>"
    assert paths.delete_topic("t") == "/admin/delete_topics/t"
    assert paths.config_change_prefix() == "/config/changes/config_change_"
    assert paths.sequence_number("config_change_0000000012", paths.CONFIG_CHANGE_PREFIX) == 12
    for bad in ("", "..", "a/b", "a b", "x" * 250):
        with pytest.raises(ValueError):
            paths.topic(bad)
    with pytest.raises(ValueError):
        paths.broker(-1)


def test_codec_writes_kafkas_json() -> None:
    reg = BrokerRegistration(
        1,
        (Endpoint("PLAINTEXT", "h1", 9092), Endpoint("SSL", "::1", 9093)),
        {"PLAINTEXT": "PLAINTEXT", "SSL": "SSL"},
        rack="r1",
        timestamp_ms=1_700_000_000_123,
        features={"metadata.version": FeatureRange(1, 7)},
    )
    assert json.loads(codec.encode_broker(reg)) == {
        "version": 5,
        "host": "h1",
        "port": 9092,
        "endpoints": ["PLAINTEXT://h1:9092", "SSL://[::1]:9093"],
        "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT", "SSL": "SSL"},
        "rack": "r1",
        "jmx_port": -1,
        "timestamp": "1700000000123",
        "features": {"metadata.version": {"min_version": 1, "max_version": 7}},
    }
    assert codec.decode_broker(1, codec.encode_broker(reg)) == reg
    state = PartitionState(leader=1, leader_epoch=4, isr=(1, 2), controller_epoch=3)
    assert json.loads(codec.encode_partition_state(state)) == {
        "version": 1,
        "leader": 1,
        "leader_epoch": 4,
        "controller_epoch": 3,
        "isr": [1, 2],
    }
    topic = TopicAssignment(b"\x07" * 16, {1: (2, 3), 0: (1, 2)}, adding_replicas={1: (3,)})
    assert json.loads(codec.encode_topic(topic)) == {
        "version": 3,
        "topic_id": "BwcHBwcHBwcHBwcHBwcHBw",
        "partitions": {"0": [1, 2], "1": [2, 3]},
        "adding_replicas": {"1": [3]},
        "removing_replicas": {},
    }
    assert codec.decode_topic("t", codec.encode_topic(topic)) == topic
    block = codec.ProducerIdBlock(2, 1000, 1999)
    assert json.loads(codec.encode_producer_id_block(block)) == {
        "version": 1,
        "broker": 2,
        "block_start": "1000",
        "block_end": "1999",
    }
    assert json.loads(codec.encode_cluster_id("abc")) == {"version": "1", "id": "abc"}
    assert codec.encode_controller_epoch(12) == b"12"


def test_codec_reads_what_kafka_writes() -> None:
    broker_v4 = (
        b'{"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":'
        b'["PLAINTEXT://kafka1:9092"],"jmx_port":-1,"host":"kafka1","timestamp":'
        b'"1559821133493","port":9092,"version":4}'
    )
    reg = codec.decode_broker(1, broker_v4)
    assert reg.endpoints == (Endpoint("PLAINTEXT", "kafka1", 9092),) and reg.rack is None
    controller_v1 = b'{"version":1,"brokerid":2,"timestamp":"1559821133513"}'
    assert codec.decode_controller(controller_v1).broker_id == 2
    topic_v2 = b'{"version":2,"partitions":{"0":[1]},"adding_replicas":{},"removing_replicas":{}}'
    assert codec.decode_topic("t", topic_v2) == TopicAssignment(None, {0: (1,)})
    recovering = (
        b'{"controller_epoch":1,"leader":1,"version":1,"leader_epoch":0,"isr":[1],'
        b'"leader_recovery_state":1}'
    )
    assert codec.decode_partition_state("s", recovering).leader_recovery_state == 1
    change_v1 = b'{"version":1,"entity_type":"topics","entity_name":"t"}'
    assert codec.decode_config_change(5, "c", change_v1) == ConfigChange(5, "topics", "t")


@pytest.mark.parametrize(
    ("decode", "data", "message"),
    [
        (lambda d: codec.decode_partition_state("/s", d), b"", "empty znode"),
        (lambda d: codec.decode_partition_state("/s", d), b"{nope", "not JSON"),
        (lambda d: codec.decode_partition_state("/s", d), b"[1]", "JSON object"),
        (
            lambda d: codec.decode_partition_state("/s", d),
            b'{"version":1,"leader":1,"leader_epoch":0,"isr":[1]}',
            "missing field 'controller_epoch'",
        ),
        (
            lambda d: codec.decode_partition_state("/s", d),
            b'{"version":1,"leader":true,"leader_epoch":0,"isr":[1],"controller_epoch":1}',
            "'leader' must be an integer",
        ),
        (lambda d: codec.decode_topic("t", d), b'{"version":9,"partitions":{}}', "version 9"),
        (lambda d: codec.decode_topic("t", d), b'{"version":3,"partitions":{"x":[1]}}', "'x'"),
        (codec.decode_producer_id_block, b'{"version":1,"broker":1,"block_start":0}', "string"),
        (codec.decode_controller_epoch, b"one", "/controller_epoch"),
        (lambda d: codec.decode_broker(3, d), b'{"version":5,"endpoints":["x"]}', "/brokers/ids/3"),
    ],
)
def test_codec_refuses_malformed_znodes_clearly(
    decode: Callable[[bytes], object], data: bytes, message: str
) -> None:
    with pytest.raises(CodecError, match=message.replace("[", r"\[")):
        decode(data)


# ---- sessions ------------------------------------------------------------------------------


def test_session_creates_its_chroot_and_kafkas_paths(
    new_session: NewSession, zookeeper: ZooKeeperServer
) -> None:
    session = new_session()
    assert session.connect.chroot.startswith("/strom-test-")
    for path in paths.PERSISTENT_PATHS:
        assert session.client.exists(path) is not None, path
    root = new_session(zookeeper.hosts)  # no chroot: sees the chroot as a znode
    assert root.client.exists(session.connect.chroot + paths.BROKER_IDS) is not None


def test_no_server_is_a_clear_error() -> None:
    session = ZkSession(f"127.0.0.1:{free_port()}/x", connection_timeout_ms=300)
    try:
        with pytest.raises(ZkUnavailableError, match="answered within 300 ms"):
            session.start()
    finally:
        session.close()


def test_session_expiry_is_reported_and_the_broker_registers_again(
    new_session: NewSession,
) -> None:
    session = new_session()
    events: list[SessionEvent] = []
    session.add_listener(events.append)
    registry = BrokerRegistry(session)
    first_epoch = registry.register(registration(1))
    old_session_id = session.session_id
    expire_session(session)
    eventually(lambda: SessionEvent.CONNECTED in events, what="a new session")
    assert events[events.index(SessionEvent.EXPIRED) + 1 :].count(SessionEvent.CONNECTED) == 1
    assert session.session_id != old_session_id
    eventually(lambda: registry.live_broker_ids() == {1}, what="registered again")
    _, stat = session.client.get(paths.broker(1))
    assert stat.ephemeralOwner == session.session_id and stat.czxid > first_epoch


def test_server_outage_suspends_and_the_session_resumes(own_zookeeper: ZooKeeperServer) -> None:
    # a session that outlives a JVM restart on a loaded machine
    session = ZkSession(own_zookeeper.connect(), session_timeout_ms=45_000)
    events: list[SessionEvent] = []
    session.add_listener(events.append)
    session.start()
    try:
        BrokerRegistry(session).register(registration(1))
        own_zookeeper.stop()
        eventually(lambda: SessionEvent.SUSPENDED in events, what="suspended")
        own_zookeeper.start()
        eventually(lambda: SessionEvent.RECONNECTED in events, what="reconnected", timeout=40)
        assert SessionEvent.EXPIRED not in events
        assert BrokerRegistry(session).live_broker_ids() == {1}  # the ephemeral survived
    finally:
        session.close()
    assert events[-1] is SessionEvent.CLOSED


# ---- brokers -------------------------------------------------------------------------------


def test_broker_registration_is_ephemeral_unique_and_watched(new_session: NewSession) -> None:
    observer = BrokerRegistry(new_session())
    seen: list[frozenset[int]] = []
    watch = observer.watch(seen.append)
    assert seen == [frozenset()]

    one = new_session()
    epoch = BrokerRegistry(one).register(registration(1, rack="r1"))
    assert epoch > 0
    eventually(lambda: seen[-1] == {1}, what="broker 1 seen")
    assert observer.live_brokers() == {1: registration(1, rack="r1")}
    assert observer.broker(7) is None

    with pytest.raises(BrokerIdTakenError, match="broker id 1 is already registered"):
        BrokerRegistry(new_session()).register(registration(1, port=9999))
    # the same session registering again only updates its registration
    assert BrokerRegistry(one).register(registration(1, port=9094)) == epoch
    assert observer.broker(1).endpoints[0].port == 9094

    two = BrokerRegistry(new_session())
    two.register(registration(2))
    eventually(lambda: seen[-1] == {1, 2}, what="broker 2 seen")
    one.close()
    eventually(lambda: seen[-1] == {2}, what="broker 1 gone")
    assert observer.live_broker_ids() == {2}
    # the id is free again once its session ended
    BrokerRegistry(new_session()).register(registration(1, port=9095))
    eventually(lambda: seen[-1] == {1, 2}, what="broker 1 back")
    watch.cancel()
    two.unregister()
    eventually(lambda: observer.live_broker_ids() == {1}, what="broker 2 unregistered")
    assert seen[-1] == {1, 2}  # a cancelled watch reports nothing more


def test_a_restarted_broker_waits_for_its_old_session_to_go(new_session: NewSession) -> None:
    old = new_session()
    BrokerRegistry(old).register(registration(1))
    restarted = BrokerRegistry(new_session())
    with pytest.raises(BrokerIdTakenError):
        restarted.register(registration(1), wait_ms=300)
    timer = threading.Timer(0.5, old.close)  # the old session times out meanwhile
    timer.start()
    try:
        assert restarted.register(registration(1, port=9093), wait_ms=10_000) > 0
    finally:
        timer.join()
    assert restarted.broker(1).endpoints[0].port == 9093


# ---- controller election -------------------------------------------------------------------


def test_exactly_one_contender_wins_a_race(new_session: NewSession) -> None:
    elections = [ControllerElection(new_session(), broker_id) for broker_id in (1, 2, 3)]
    barrier = threading.Barrier(len(elections))
    results: dict[int, Controller | None] = {}

    def contend(election: ControllerElection) -> None:
        barrier.wait()
        results[election.broker_id] = election.elect()

    threads = [threading.Thread(target=contend, args=(e,)) for e in elections]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    winners = [c for c in results.values() if c is not None]
    assert len(results) == 3 and len(winners) == 1
    assert winners[0].epoch == 1
    for election in elections:
        assert election.current() == winners[0]
        assert election.is_controller == (election.broker_id == winners[0].broker_id)


def test_the_controller_epoch_grows_across_reelections(new_session: NewSession) -> None:
    seen: dict[int, list[Controller | None]] = {1: [], 2: []}
    session1 = new_session()
    first = ControllerElection(session1, 1, seen[1].append)
    first.start()
    assert first.is_controller
    eventually(lambda: seen[1] == [Controller(1, 1, 1)], what="broker 1 told")
    second = ControllerElection(new_session(), 2, seen[2].append)
    second.start()
    assert seen[2] == [Controller(1, 1, 1)] and not second.is_controller

    session1.close()  # the controller dies: the loser's watch elects it
    eventually(lambda: second.is_controller, what="broker 2 elected")
    eventually(lambda: seen[2][-1] == Controller(2, 2, 2), what="broker 2 told")
    assert second.current() == Controller(2, 2, 2)

    again = ControllerElection(new_session(), 1, seen[1].append)
    again.start()
    assert seen[1][-1] == Controller(2, 2, 2) and not again.is_controller
    second.stop()  # resigns: broker 1 takes over with the next epoch
    eventually(lambda: again.is_controller, what="broker 1 elected again")
    assert again.current() == Controller(1, 3, 3)
    eventually(lambda: seen[1][-1] == Controller(1, 3, 3), what="broker 1 told")


def test_a_controller_whose_session_expires_gives_way(new_session: NewSession) -> None:
    session = new_session()
    seen: list[Controller | None] = []
    election = ControllerElection(session, 1, seen.append)
    election.start()
    eventually(lambda: seen == [Controller(1, 1, 1)], what="elected")
    other: list[Controller | None] = []
    ControllerElection(new_session(), 2, other.append).start()
    eventually(lambda: other == [Controller(1, 1, 1)], what="broker 2 told")

    expire_session(session)
    # either broker may win the next term; both hear of it, and the old term is over
    eventually(lambda: seen[-1] is not None and seen[-1].epoch == 2, what="next term seen")
    winner = seen[-1]
    eventually(lambda: other[-1] == winner, what="broker 2 told of the next term")
    assert election.is_controller == (winner.broker_id == 1)
    assert election.current() == winner
    assert all(c is None or c.epoch == 2 for c in seen[1:])


# ---- topics --------------------------------------------------------------------------------


def test_topics_are_created_listed_watched_and_deleted(new_session: NewSession) -> None:
    session = new_session()
    store = TopicStore(session)
    configs = ConfigStore(session)
    names: list[frozenset[str]] = []
    marked: list[frozenset[str]] = []
    store.watch_topics(names.append)
    store.watch_deletions(marked.append)
    assigned: list[object] = []
    store.watch_assignment("orders", assigned.append)
    assert names == [frozenset()] and assigned == [None]

    configs.set_topic_config("orders", {"retention.ms": "1000"})
    store.create_topic("orders", assignment({0: (1, 2), 1: (2, 3)}))
    store.create_topic("audit", assignment({0: (1,)}))
    with pytest.raises(TopicExistsError, match="'orders' already exists"):
        store.create_topic("orders", assignment({0: (3,)}))
    assert store.topic_names() == {"orders", "audit"}
    eventually(lambda: names[-1] == {"orders", "audit"}, what="topics seen")
    current = store.assignment("orders")
    assert current is not None and current.value == assignment({0: (1, 2), 1: (2, 3)})
    eventually(lambda: assigned[-1] == current, what="assignment seen")
    assert store.assignment("nope") is None

    grown = assignment({0: (1, 2), 1: (2, 3), 2: (3, 1)})
    version = store.set_assignment("orders", grown, current.zk_version)
    assert version == current.zk_version + 1
    with pytest.raises(StaleStateError):
        store.set_assignment("orders", assignment({0: (9,)}), current.zk_version)
    assert store.assignment("orders").value == grown
    eventually(lambda: assigned[-1].value == grown, what="new assignment seen")

    store.create_partition_state(("orders", 0), PartitionState(1, 0, (1, 2), 1))
    assert store.mark_for_deletion("orders") is True
    assert store.mark_for_deletion("orders") is False
    with pytest.raises(NoSuchTopicError):
        store.mark_for_deletion("nope")
    assert store.topics_marked_for_deletion() == {"orders"}
    eventually(lambda: marked[-1] == {"orders"}, what="deletion mark seen")

    store.delete_topic("orders")
    store.delete_topic("orders")  # gone already: fine
    assert store.topic_names() == {"audit"}
    assert store.topics_marked_for_deletion() == frozenset()
    assert configs.topic_config("orders") == {}
    assert session.client.exists(paths.topic("orders")) is None
    eventually(lambda: names[-1] == {"audit"} and marked[-1] == frozenset(), what="deletion seen")
    eventually(lambda: assigned[-1] is None, what="assignment gone")


def test_partition_state_is_a_compare_and_set(new_session: NewSession) -> None:
    store = TopicStore(new_session())
    other = TopicStore(new_session())
    tp = ("orders", 0)
    with pytest.raises(NoSuchTopicError):
        store.create_partition_state(tp, PartitionState(1, 0, (1,), 1))
    store.create_topic("orders", assignment({0: (1, 2, 3)}))
    assert store.partition_state(tp) is None
    initial = PartitionState(leader=1, leader_epoch=0, isr=(1, 2, 3), controller_epoch=1)
    assert store.create_partition_state(tp, initial) == 0
    with pytest.raises(StaleStateError, match="exists already"):
        store.create_partition_state(tp, initial)

    shrunk = PartitionState(leader=1, leader_epoch=0, isr=(1, 2), controller_epoch=1)
    assert store.update_partition_state(tp, shrunk, expected_zk_version=0) == 1
    # a writer that read version 0 is refused, and nothing changes
    moved = PartitionState(leader=3, leader_epoch=1, isr=(3,), controller_epoch=1)
    with pytest.raises(StaleStateError, match="expected zk version 0, found 1"):
        other.update_partition_state(tp, moved, expected_zk_version=0)
    read = other.partition_state(tp)
    assert read is not None and read.value == shrunk and read.zk_version == 1
    assert other.update_partition_state(tp, moved, read.zk_version) == 2
    assert store.partition_state(tp).value == moved
    with pytest.raises(StaleStateError, match="no state"):
        store.update_partition_state(("orders", 5), moved, 0)


def test_writes_fenced_by_a_deposed_controller_are_refused(new_session: NewSession) -> None:
    session1, session2 = new_session(), new_session()
    old = ControllerElection(session1, 1).elect()
    assert old is not None
    store = TopicStore(session2)
    store.create_topic("t", assignment({0: (1, 2)}), fence=old)
    store.create_partition_state(("t", 0), PartitionState(1, 0, (1, 2), old.epoch), fence=old)
    assert store.update_partition_state(("t", 0), PartitionState(1, 0, (1,), 1), 0, fence=old) == 1

    session1.close()
    new = ControllerElection(session2, 2).elect()
    assert new is not None and new.epoch == old.epoch + 1
    with pytest.raises(ControllerMovedError, match="epoch 1 of broker 1"):
        store.update_partition_state(("t", 0), PartitionState(2, 1, (2,), 1), 1, fence=old)
    with pytest.raises(ControllerMovedError):
        store.create_topic("u", assignment({0: (1,)}), fence=old)
    with pytest.raises(ControllerMovedError):
        store.delete_topic("t", fence=old)
    assert store.partition_state(("t", 0)).zk_version == 1 and store.topic_names() == {"t"}
    assert store.update_partition_state(("t", 0), PartitionState(2, 1, (2,), 2), 1, fence=new) == 2
    store.delete_topic("t", fence=new)
    assert store.topic_names() == frozenset()


# ---- configs -------------------------------------------------------------------------------


def test_config_writes_notify_watchers(new_session: NewSession) -> None:
    writer = ConfigStore(new_session())
    reader = ConfigStore(new_session())
    changes: list[ConfigChange] = []
    reader.watch_changes(changes.append)
    assert changes == [] and reader.topic_config("t") == {}

    first = writer.set_topic_config("t", {"cleanup.policy": "compact"})
    eventually(lambda: changes == [ConfigChange(first, "topics", "t")], what="topic change")
    assert reader.topic_config("t") == {"cleanup.policy": "compact"}
    second = writer.set_topic_config("t", {"cleanup.policy": "delete", "retention.ms": "5"})
    third = writer.set_broker_config(None, {"log.retention.ms": "60000"})
    fourth = writer.set_broker_config(2, {"num.io.threads": "4"})
    assert first < second < third < fourth
    eventually(lambda: len(changes) == 4, what="all changes")
    assert changes[1:] == [
        ConfigChange(second, "topics", "t"),
        ConfigChange(third, "brokers", "<default>"),
        ConfigChange(fourth, "brokers", "2"),
    ]
    assert reader.topic_config("t") == {"cleanup.policy": "delete", "retention.ms": "5"}
    assert reader.broker_config(None) == {"log.retention.ms": "60000"}
    assert reader.broker_config(2) == {"num.io.threads": "4"} and reader.broker_config(3) == {}
    assert [c.sequence for c in reader.changes(after=second)] == [third, fourth]
    assert writer.purge_changes(second) == 2
    assert [c.sequence for c in reader.changes()] == [third, fourth]


# ---- producer ids and cluster id -----------------------------------------------------------


def test_producer_id_blocks_never_overlap(new_session: NewSession) -> None:
    sessions = [new_session() for _ in range(4)]
    blocks: list[codec.ProducerIdBlock] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(sessions))

    def allocate(broker_id: int, session: ZkSession) -> None:
        barrier.wait()
        for _ in range(15):
            block = allocate_producer_id_block(session, broker_id)
            with lock:
                blocks.append(block)

    threads = [
        threading.Thread(target=allocate, args=(i, s)) for i, s in enumerate(sessions, start=1)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(blocks) == 60 and all(b.size == 1000 for b in blocks)
    ordered = sorted(blocks, key=lambda b: b.block_start)
    assert ordered[0].block_start == 0 and ordered[-1].block_end == 60 * 1000 - 1
    for before, after in zip(ordered, ordered[1:]):
        assert after.block_start == before.block_end + 1
    assert {b.broker_id for b in blocks} == {1, 2, 3, 4}
    data, _ = sessions[0].client.get(paths.LATEST_PRODUCER_ID_BLOCK)
    assert codec.decode_producer_id_block(data) == ordered[-1]


def test_cluster_id_is_created_once(new_session: NewSession, zookeeper: ZooKeeperServer) -> None:
    first = get_or_create_cluster_id(new_session())
    assert len(first) == 22 and "=" not in first
    assert get_or_create_cluster_id(new_session(), proposed="other") == first
    elsewhere = zookeeper.connect()  # another chroot is another cluster
    assert get_or_create_cluster_id(new_session(elsewhere), proposed="x" * 22) == "x" * 22
