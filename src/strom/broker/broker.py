"""A single-node broker: its parts wired together, request dispatch and periodic upkeep."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from strom.broker.config import BrokerConfig
from strom.broker.fetch_sessions import FetchSessionCache
from strom.broker.handlers import (
    cluster,
    configs,
    coordinator,
    fetch,
    groups,
    metadata,
    offsets,
    partitions_admin,
    produce,
    producer_id,
    topics,
)
from strom.broker.handlers.api_versions import api_versions_response
from strom.broker.partitions import Partition
from strom.broker.purgatory import Purgatory
from strom.broker.server import ConnectionContext, KafkaServer
from strom.cluster.controller import LocalController
from strom.cluster.metadata import INTERNAL_TOPICS, BrokerMeta, MetadataImage, TopicMeta
from strom.coordinator.group import (
    OFFSETS_TOPIC,
    GroupConfig,
    GroupCoordinator,
    ImageTopics,
    RecordLog,
)
from strom.coordinator.txn.producer_ids import ProducerIdManager
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frames import (
    API_VERSIONS_KEY,
    RequestHeader,
    UnsupportedRequest,
    encode_response,
)
from strom.protocol.messages.api_versions import ApiVersionsRequest
from strom.storage.config import LogConfig
from strom.storage.manager import LogManager

log = logging.getLogger(__name__)

Handler = Callable[["Broker", RequestHeader, object], Awaitable[object | None]]

META_PROPERTIES = "meta.properties"


@dataclass(frozen=True)
class Api:
    handler: Handler
    min_version: int
    max_version: int


async def _api_versions(broker: Broker, header: RequestHeader, request: ApiVersionsRequest):  # noqa: ANN202
    return api_versions_response(broker.supported_versions())


#: api key -> handler and the versions Strom answers.
APIS: dict[int, Api] = {
    0: Api(produce.handle, 0, 11),
    1: Api(fetch.handle, 4, 16),
    2: Api(offsets.handle_list_offsets, 1, 9),
    3: Api(metadata.handle, 0, 12),
    8: Api(groups.handle_offset_commit, 0, 9),
    9: Api(groups.handle_offset_fetch, 0, 9),
    10: Api(coordinator.handle, 0, 5),
    11: Api(groups.handle_join_group, 0, 9),
    12: Api(groups.handle_heartbeat, 0, 4),
    13: Api(groups.handle_leave_group, 0, 5),
    14: Api(groups.handle_sync_group, 0, 5),
    15: Api(groups.handle_describe_groups, 0, 5),
    16: Api(groups.handle_list_groups, 0, 5),
    18: Api(_api_versions, 0, 4),
    19: Api(topics.handle_create_topics, 0, 7),
    20: Api(topics.handle_delete_topics, 0, 6),
    21: Api(partitions_admin.handle_delete_records, 0, 2),
    22: Api(producer_id.handle, 0, 5),
    23: Api(offsets.handle_offset_for_leader_epoch, 0, 4),
    32: Api(configs.handle_describe_configs, 0, 4),
    33: Api(configs.handle_alter_configs, 0, 2),
    35: Api(cluster.handle_describe_log_dirs, 0, 4),
    37: Api(partitions_admin.handle_create_partitions, 0, 3),
    42: Api(groups.handle_delete_groups, 0, 2),
    44: Api(configs.handle_incremental_alter_configs, 0, 1),
    47: Api(groups.handle_offset_delete, 0, 0),
    60: Api(cluster.handle_describe_cluster, 0, 1),
    68: Api(groups.handle_consumer_group_heartbeat, 0, 1),
    69: Api(groups.handle_consumer_group_describe, 0, 0),
}


def _read_meta(path: str) -> dict[str, str]:
    props = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    k, v = line.strip().split("=", 1)
                    props[k] = v
    except FileNotFoundError:
        pass
    return props


def _load_cluster_id(data_dir: str, node_id: int) -> str:
    """The cluster id stored in meta.properties, made on first start (Kafka's format)."""
    path = os.path.join(data_dir, META_PROPERTIES)
    props = _read_meta(path)
    if "cluster.id" in props:
        return props["cluster.id"]
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
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
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.purgatory = Purgatory()
        self.fetch_sessions = FetchSessionCache(config["max.incremental.fetch.session.cache.slots"])
        self.producer_ids = ProducerIdManager(self.data_dir)
        self.group_coordinator = self._make_group_coordinator()
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

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.server.start()
        host, port = self.advertised or (self.host, self.server.bound_port)
        self.controller = LocalController(
            self.node_id, self.cluster_id, self.logs, BrokerMeta(self.node_id, host, port)
        )
        self._start_group_coordinator()
        self._tasks.append(asyncio.create_task(self._upkeep(), name="upkeep"))
        log.info(
            "broker %d of cluster %s serving %d topics on %s:%d",
            self.node_id,
            self.cluster_id,
            len(self.image.topics),
            host,
            port,
        )

    async def stop(self) -> None:
        self.group_coordinator.shutdown()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.server.stop()
        for p in self.partitions.values():
            p.snapshot_producers()
        self.logs.close()
        log.info("broker %d stopped", self.node_id)

    @property
    def bound_port(self) -> int:
        return self.server.bound_port

    @property
    def image(self) -> MetadataImage:
        assert self.controller is not None, "broker not started"
        return self.controller.image

    async def _upkeep(self) -> None:
        """Periodic work: flushes, retention, compaction, checkpoints, producer snapshots."""
        retention_every = self.config["log.retention.check.interval.ms"] / 1000
        cleaner_every = self.config["log.cleaner.backoff.ms"] / 1000
        last_retention = last_clean = last_checkpoint = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            try:
                self.logs.flush_due()
                if now - last_retention >= retention_every:
                    last_retention = now
                    self.logs.run_retention()
                if self.config["log.cleaner.enable"] and now - last_clean >= cleaner_every:
                    last_clean = now
                    self.logs.run_cleaner()
                self.group_coordinator.upkeep()
                if now - last_checkpoint >= 60:
                    last_checkpoint = now
                    self.logs.checkpoint()
                    expiry = self.config["producer.id.expiration.ms"]
                    for p in self.partitions.values():
                        p.expire_producers(int(time.time() * 1000), expiry)
                        p.snapshot_producers()
            except Exception:
                log.exception("periodic log upkeep failed")

    def _make_group_coordinator(self) -> GroupCoordinator:
        config = GroupConfig.from_props({**self.config.values, **self.config.given})
        records = RecordLog(
            lambda p: self.partition(OFFSETS_TOPIC, p).log,
            lambda p: self.partition(OFFSETS_TOPIC, p).leader_epoch,
            lambda p: self.notify_append(OFFSETS_TOPIC, p),
        )
        return GroupCoordinator(config, records, ImageTopics(lambda: self.image))

    def _start_group_coordinator(self) -> None:
        """Create __consumer_offsets if missing (compacted; one replica on a single node), then
        load it in the background; group requests meanwhile get COORDINATOR_LOAD_IN_PROGRESS."""
        assert self.controller is not None
        coordinator = self.group_coordinator
        config = coordinator.config
        topic = self.image.topics.get(OFFSETS_TOPIC)
        if topic is None:
            self.controller.create_topic(
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
        coordinator.start_loading()

    # -- requests --------------------------------------------------------------------------------

    def supported_versions(self) -> dict[int, tuple[int, int]]:
        return {k: (a.min_version, a.max_version) for k, a in APIS.items()}

    async def dispatch(
        self, ctx: ConnectionContext, header: RequestHeader, request: object
    ) -> list | None:
        groups.CLIENT_PEER.set(ctx.peer)
        api = APIS.get(header.api_key)
        if api is None or not api.min_version <= header.api_version <= api.max_version:
            raise UnsupportedRequest(
                f"api {header.api_key} v{header.api_version} is not supported", header
            )
        response = await api.handler(self, header, request)
        if response is None:
            return None
        return encode_response(response, header.api_version, header.correlation_id)

    async def unsupported(self, ctx: ConnectionContext, err: UnsupportedRequest) -> list | None:
        """ApiVersions of an unknown version is answered with v0 and the versions we know."""
        if err.header.api_key != API_VERSIONS_KEY:
            return None
        response = api_versions_response(self.supported_versions(), ErrorCode.UNSUPPORTED_VERSION)
        return encode_response(response, 0, err.header.correlation_id)

    # -- the domain --------------------------------------------------------------------------------

    def partition(self, topic: str, index: int) -> Partition:
        """A partition led here, or UNKNOWN_TOPIC_OR_PARTITION."""
        p = self.partitions.get((topic, index))
        if p is not None:
            return p
        meta = self.image.partition(topic, index)
        lg = self.logs.get_log(topic, index) if meta is not None else None
        if meta is None or lg is None:
            raise KafkaError(
                f"This server does not host this topic-partition: {topic}-{index}",
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            )
        if lg.latest_epoch < meta.leader_epoch:
            lg.assign_epoch(meta.leader_epoch, lg.log_end_offset)
        p = Partition(lg, meta)
        if p.high_watermark < p.log_end_offset:
            lg.update_high_watermark(lg.log_end_offset)
        self.partitions[(topic, index)] = p
        return p

    def notify_append(self, topic: str, index: int) -> None:
        self.purgatory.notify((topic, index))

    def auto_create_topic(self, name: str) -> TopicMeta:
        assert self.controller is not None
        return self.controller.create_topic(
            name, self.config["num.partitions"], self.config["default.replication.factor"]
        )

    def delete_topic(self, name: str) -> TopicMeta:
        assert self.controller is not None
        if name in INTERNAL_TOPICS:
            raise KafkaError(
                f"internal topic {name} cannot be deleted", ErrorCode.INVALID_TOPIC_EXCEPTION
            )
        for key in [k for k in self.partitions if k[0] == name]:
            del self.partitions[key]
        self.fetch_sessions.forget_topic(name)
        meta = self.controller.delete_topic(name)
        # committed offsets of the topic go now, not at the next expiration pass: a topic made
        # again under the same name must not inherit them
        self.group_coordinator.expire_offsets()
        return meta
