"""A single-node broker: its parts wired together, request dispatch and periodic upkeep."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import threading
import time
import uuid

from strom.broker.apis import APIS, supported_versions
from strom.broker.config import BrokerConfig
from strom.broker.context import RequestContext, Services
from strom.broker.coordinator_writer import ReplicatedWriter
from strom.broker.fetch_sessions import FetchSessionCache
from strom.broker.handlers.api_versions import api_versions_response
from strom.broker.purgatory import Purgatory
from strom.broker.replica_manager import ReplicaManager
from strom.broker.server import ConnectionContext, KafkaServer
from strom.broker.txn_markers import LocalMarkerWriter
from strom.cluster.controller import LocalController
from strom.cluster.metadata import BrokerMeta, MetadataDelta, MetadataImage
from strom.coordinator.group import (
    OFFSETS_TOPIC,
    GroupConfig,
    GroupCoordinator,
    ImageTopics,
)
from strom.coordinator.txn.coordinator import TransactionCoordinator, TxnConfig
from strom.coordinator.txn.producer_ids import ProducerIdManager
from strom.coordinator.txn.records import TXN_TOPIC
from strom.protocol.errors import ErrorCode
from strom.protocol.frames import (
    API_VERSIONS_KEY,
    RequestHeader,
    UnsupportedRequest,
    encode_response,
)
from strom.storage.config import LogConfig
from strom.storage.files import atomic_write
from strom.storage.manager import LogManager
from strom.storage.properties import read_properties

log = logging.getLogger(__name__)

LISTENER = "PLAINTEXT"
TXN_WRITE_TIMEOUT_MS = 30_000  # Kafka waits request.timeout.ms for transaction log appends

META_PROPERTIES = "meta.properties"


def _load_cluster_id(data_dir: str, node_id: int) -> str:
    """The cluster id stored in meta.properties, made on first start (Kafka's format)."""
    path = os.path.join(data_dir, META_PROPERTIES)
    try:
        props = read_properties(path)
    except FileNotFoundError:
        props = {}
    if "cluster.id" in props:
        return props["cluster.id"]
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    atomic_write(path, f"version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n")
    return cluster_id


class Broker:
    """One broker: logs, metadata, partitions and the server that answers clients."""

    def __init__(
        self,
        config: BrokerConfig,
        data_dir: str,
        host: str = "127.0.0.1",
        port: int = 9092,
        advertised: tuple[str, int] | None = None,
    ) -> None:
        self.config = config
        self.data_dir = os.path.abspath(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        self.host = host
        self.port = port
        self.advertised = advertised
        self.node_id = config.node_id
        defaults = LogConfig.from_props(config.topic_defaults())
        self.logs = LogManager(self.data_dir, defaults)
        self.cluster_id = _load_cluster_id(self.data_dir, self.node_id)
        self.controller: LocalController | None = None
        self.replica_manager = ReplicaManager(self.node_id, self.logs, Purgatory())
        self.fetch_sessions = FetchSessionCache(config["max.incremental.fetch.session.cache.slots"])
        self.producer_ids = ProducerIdManager(self.data_dir)
        self.group_coordinator = self._make_group_coordinator()
        self.txn_markers = LocalMarkerWriter(self.replica_manager, self.group_coordinator)
        self.txn_coordinator = self._make_txn_coordinator()
        self._txn_topic_task: asyncio.Task | None = None
        self.services: Services | None = None
        self.server = KafkaServer(
            host,
            port,
            self.dispatch,
            self.unsupported,
            max_request_bytes=config["socket.request.max.bytes"],
            max_connections=config["max.connections"],
            idle_timeout_s=config["connections.max.idle.ms"] / 1000,
        )
        self._tasks: list[asyncio.Task] = []
        self._disk_work = threading.Lock()  # one disk pass at a time; close waits for it
        self._last_txn_abort = self._last_txn_expiry = time.monotonic()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.server.start()
        host, port = self.advertised or (self.host, self.server.bound_port)
        controller = LocalController(
            self.node_id, self.cluster_id, self.logs, BrokerMeta(self.node_id, host, port)
        )
        self.controller = controller
        self.replica_manager.load_image(controller.image)
        controller.subscribe(self.replica_manager.apply)
        controller.observe(self._on_metadata)
        self.services = Services(
            node_id=self.node_id,
            config=self.config,
            logs=self.logs,
            controller=controller,
            replica_manager=self.replica_manager,
            group_coordinator=self.group_coordinator,
            producer_ids=self.producer_ids,
            fetch_sessions=self.fetch_sessions,
            txn_coordinator=self.txn_coordinator,
            txn_markers=self.txn_markers,
            start_transactions=self._start_transactions,
            supported_versions=supported_versions,
        )
        if TXN_TOPIC in controller.image.topics:
            self._start_transactions()  # a restart: finish and time out what was in flight
        self._tasks.append(asyncio.create_task(self._start_group_coordinator(), name="groups"))
        self._tasks.append(asyncio.create_task(self.replica_manager.open_logs(), name="open"))
        self._tasks.append(asyncio.create_task(self._upkeep(), name="upkeep"))
        log.info(
            "broker %d of cluster %s serving %d topics on %s:%d",
            self.node_id,
            self.cluster_id,
            len(controller.image.topics),
            host,
            port,
        )

    async def stop(self) -> None:
        self.txn_coordinator.shutdown()
        self.group_coordinator.shutdown()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.server.stop()
        await asyncio.to_thread(self._close_logs)
        log.info("broker %d stopped", self.node_id)

    @property
    def bound_port(self) -> int:
        return self.server.bound_port

    @property
    def image(self) -> MetadataImage:
        assert self.controller is not None, "broker not started"
        return self.controller.image

    async def _upkeep(self) -> None:
        """Periodic work. Flushes, retention, compaction and checkpoints touch the disk and
        run in a worker thread (one at a time); the event loop keeps serving meanwhile."""
        retention_every = self.config["log.retention.check.interval.ms"] / 1000
        cleaner_every = self.config["log.cleaner.backoff.ms"] / 1000
        last_retention = last_clean = last_checkpoint = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            retention = now - last_retention >= retention_every
            clean = self.config["log.cleaner.enable"] and now - last_clean >= cleaner_every
            checkpoint = now - last_checkpoint >= 60
            last_retention = now if retention else last_retention
            last_clean = now if clean else last_clean
            last_checkpoint = now if checkpoint else last_checkpoint
            try:
                await asyncio.to_thread(self._disk_upkeep, retention, clean, checkpoint)
                self.group_coordinator.upkeep()
                self._txn_upkeep(now)
                if checkpoint:
                    self.replica_manager.expire_producers(
                        int(time.time() * 1000), self.config["producer.id.expiration.ms"]
                    )
            except Exception:
                log.exception("periodic log upkeep failed")

    def _disk_upkeep(self, retention: bool, clean: bool, checkpoint: bool) -> None:
        """In a worker thread: what is due of flushes, retention, compaction, checkpoints."""
        with self._disk_work:
            self.logs.flush_due()
            if retention:
                self.logs.run_retention()
            if clean:
                self.logs.run_cleaner()
            if checkpoint:
                self.logs.checkpoint()

    def _close_logs(self) -> None:
        """In a worker thread: once a disk pass still running (its task was cancelled, not
        its thread) is over, flush, checkpoint and close every log."""
        with self._disk_work:
            self.logs.close()

    def _make_group_coordinator(self) -> GroupCoordinator:
        config = GroupConfig.from_props({**self.config.values, **self.config.given})
        rm = self.replica_manager

        writer = ReplicatedWriter(OFFSETS_TOPIC, rm, config.offsets_commit_timeout_ms)
        return GroupCoordinator(config, writer, ImageTopics(lambda: self.image))

    async def _start_group_coordinator(self) -> None:
        """Create __consumer_offsets if missing (compacted; one replica on a single node), then
        load it; group requests meanwhile get COORDINATOR_NOT_AVAILABLE or
        COORDINATOR_LOAD_IN_PROGRESS."""
        assert self.controller is not None
        coordinator = self.group_coordinator
        config = coordinator.config
        topic = self.image.topics.get(OFFSETS_TOPIC)
        if topic is None:
            await self.controller.create_topic(
                OFFSETS_TOPIC,
                config.offsets_topic_partitions,
                1,
                {
                    "cleanup.policy": "compact",
                    "segment.bytes": str(config.offsets_topic_segment_bytes),
                    "compression.type": "producer",
                },
            )
        elif len(topic.partitions) != config.offsets_topic_partitions:
            # groups hash over the partitions that exist; changing the count would move them
            log.warning(
                "%s has %d partitions, offsets.topic.num.partitions is %d: using %d",
                OFFSETS_TOPIC,
                len(topic.partitions),
                config.offsets_topic_partitions,
                len(topic.partitions),
            )
            config.offsets_topic_partitions = len(topic.partitions)
        await self.replica_manager.ready(
            (OFFSETS_TOPIC, p) for p in range(config.offsets_topic_partitions)
        )
        self._elect_coordinators(self.image)

    def _elect_coordinators(self, image: MetadataImage) -> None:
        """Each coordinator loads the partitions of its topic this broker leads and unloads
        the others (one node: all of them, once, when the topic is there)."""
        for name, coordinator in (
            (OFFSETS_TOPIC, self.group_coordinator),
            (TXN_TOPIC, self.txn_coordinator),
        ):
            topic = image.topics.get(name)
            led = set()
            for meta in topic.partitions if topic is not None else ():
                if meta.leader == self.node_id:
                    led.add(meta.partition)
                    coordinator.become_leader(meta.partition, meta.leader_epoch)
            for p in coordinator.runtime.partitions:
                if p not in led:
                    coordinator.resign(p)

    # -- transactions ----------------------------------------------------------------------------

    def _make_txn_coordinator(self) -> TransactionCoordinator:
        cfg = self.config
        config = TxnConfig(
            num_partitions=cfg["transaction.state.log.num.partitions"],
            max_timeout_ms=cfg["transaction.max.timeout.ms"],
            id_expiration_ms=cfg["transactional.id.expiration.ms"],
        )
        writer = ReplicatedWriter(TXN_TOPIC, self.replica_manager, TXN_WRITE_TIMEOUT_MS)
        return TransactionCoordinator(
            config,
            writer,
            self.producer_ids.next_id,
            self.txn_markers,
            lambda: int(time.time() * 1000),
        )

    def _start_transactions(self) -> None:
        """Create __transaction_state on the first transactional request (as Kafka does) and
        load it; until then transactional requests get COORDINATOR_NOT_AVAILABLE."""
        if self._txn_topic_task is None:
            self._txn_topic_task = asyncio.create_task(self._start_txn_coordinator())
            self._tasks.append(self._txn_topic_task)

    async def _start_txn_coordinator(self) -> None:
        assert self.controller is not None
        config = self.txn_coordinator.config
        topic = self.image.topics.get(TXN_TOPIC)
        if topic is None:
            await self.controller.create_topic(
                TXN_TOPIC,
                config.num_partitions,
                1,
                {
                    "cleanup.policy": "compact",
                    "segment.bytes": str(self.config["transaction.state.log.segment.bytes"]),
                    "compression.type": "uncompressed",
                },
            )
        elif len(topic.partitions) != config.num_partitions:
            log.warning(
                "%s has %d partitions, transaction.state.log.num.partitions is %d: using %d",
                TXN_TOPIC,
                len(topic.partitions),
                config.num_partitions,
                len(topic.partitions),
            )
            config.num_partitions = len(topic.partitions)
        await self.replica_manager.ready((TXN_TOPIC, p) for p in range(config.num_partitions))
        self._elect_coordinators(self.image)

    def _txn_upkeep(self, now: float) -> None:
        """Abort transactions past their timeout; forget transactional ids idle too long."""
        if (
            now - self._last_txn_abort
            >= self.config["transaction.abort.timed.out.transaction.cleanup.interval.ms"] / 1000
        ):
            self._last_txn_abort = now
            self.txn_coordinator.abort_timed_out()
        if (
            now - self._last_txn_expiry
            >= self.config["transaction.remove.expired.transaction.cleanup.interval.ms"] / 1000
        ):
            self._last_txn_expiry = now
            self.txn_coordinator.expire_ids()

    def _on_metadata(self, image: MetadataImage, delta: MetadataDelta) -> None:
        """A deleted topic leaves the fetch sessions, and its committed offsets go now (not at
        the next expiration pass): a topic made again under its name must not inherit them."""
        for name in delta.deleted:
            self.fetch_sessions.forget_topic(name)
        if {OFFSETS_TOPIC, TXN_TOPIC} & (set(delta.deleted) | set(delta.topics)):
            self._elect_coordinators(image)
        if delta.deleted:
            self.group_coordinator.expire_offsets()

    # -- requests --------------------------------------------------------------------------------

    async def dispatch(
        self, conn: ConnectionContext, header: RequestHeader, request: object
    ) -> list | None:
        api = APIS.get(header.api_key)
        if api is None or not api.min_version <= header.api_version <= api.max_version:
            raise UnsupportedRequest(
                f"api {header.api_key} v{header.api_version} is not supported", header
            )
        ctx = RequestContext(
            header=header,
            listener=LISTENER,
            client_host=conn.host,
            client_port=conn.port,
            connection_id=conn.connection_id,
        )
        assert self.services is not None
        response = await api.handler(self.services, ctx, request)
        if response is None:
            return None
        return encode_response(response, header.api_version, header.correlation_id)

    async def unsupported(self, conn: ConnectionContext, err: UnsupportedRequest) -> list | None:
        """ApiVersions of an unknown version is answered with v0 and the versions we know."""
        if err.header.api_key != API_VERSIONS_KEY:
            return None
        response = api_versions_response(supported_versions(), ErrorCode.UNSUPPORTED_VERSION)
        return encode_response(response, 0, err.header.correlation_id)
