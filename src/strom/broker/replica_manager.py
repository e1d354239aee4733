"""The partitions this broker hosts: applying metadata images to them (create, lead, follow,
delete), appends with acks=all waits, reads, and opening logs off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from strom.broker.partition import Partition, ProduceOutcome
from strom.broker.purgatory import Purgatory
from strom.cluster.metadata import MetadataDelta, MetadataImage, TopicMeta, topic_id_str
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.log import AppendOrigin
from strom.storage.manager import LogManager
from strom.storage.partition_metadata import write_topic_id

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


def high_watermark_key(tp: TopicPartition) -> tuple:
    """What consumers' fetches and acks=all produces wait on."""
    return ("hw", *tp)


def log_end_key(tp: TopicPartition) -> tuple:
    """What followers' fetches wait on."""
    return ("leo", *tp)


@dataclass(slots=True)
class AppendWait:
    """An acks=all append waiting for the high watermark to pass its last offset."""

    partition: Partition
    required_offset: int


class ReplicaManager:
    """Owns the Partition objects of this broker. The controller decides; `apply` makes the
    local state match a new image. Disk work (creating, deleting and opening logs) runs in
    worker threads; everything else here runs on the event loop."""

    def __init__(
        self,
        node_id: int,
        logs: LogManager,
        purgatory: Purgatory,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node_id = node_id
        self.logs = logs
        self.purgatory = purgatory
        self._clock = clock
        self.partitions: dict[TopicPartition, Partition] = {}
        self._loading: dict[TopicPartition, asyncio.Future] = {}

    # -- applying metadata -----------------------------------------------------------------------

    def load_image(self, image: MetadataImage) -> None:
        """At start: take the roles the image gives this broker for logs already on disk
        (opened lazily: `open_logs` opens them in the background)."""
        for topic in image.topics.values():
            self._take_roles(topic)

    async def apply(self, image: MetadataImage, delta: MetadataDelta) -> None:
        """Make local state match `image` after `delta`: deleted topics stop being served at
        once and their logs go in a thread; new partitions get logs (in a thread) first."""
        for name in delta.deleted:
            self._drop_topic(name)
        if delta.deleted:
            await asyncio.to_thread(self._delete_logs, sorted(delta.deleted))
        for topic in delta.topics.values():
            missing = [
                p.partition
                for p in topic.partitions
                if self.node_id in p.replicas and (topic.name, p.partition) not in self.partitions
            ]
            if missing:
                await asyncio.to_thread(self._create_logs, topic, missing)
            self._take_roles(topic)

    def _take_roles(self, topic: TopicMeta) -> None:
        for meta in topic.partitions:
            tp = (topic.name, meta.partition)
            partition = self.partitions.get(tp)
            if self.node_id not in meta.replicas:
                if partition is not None:
                    self._stop(tp)
                continue
            if partition is None:
                lg = self.logs.get_log(*tp)
                if lg is None:
                    log.warning("%s-%d is assigned here but has no log", *tp)
                    continue
                partition = self.partitions[tp] = Partition(lg, self.node_id, self._clock)
            if meta.leader == self.node_id:
                if partition.make_leader(meta):
                    self.purgatory.notify(high_watermark_key(tp))
            else:
                partition.make_follower(meta)

    def _stop(self, tp: TopicPartition) -> None:
        self.partitions.pop(tp, None)
        self.purgatory.notify(high_watermark_key(tp))
        self.purgatory.notify(log_end_key(tp))

    def _drop_topic(self, name: str) -> None:
        for tp in [tp for tp in self.partitions if tp[0] == name]:
            self._stop(tp)

    def _create_logs(self, topic: TopicMeta, partitions: list[int]) -> None:
        """In a worker thread: the partitions' directories, segments and topic id files."""
        for p in partitions:
            lg = self.logs.create_log(topic.name, p)
            write_topic_id(lg.dir, topic_id_str(topic.topic_id))
            meta = topic.partitions[p]
            if meta.leader == self.node_id:
                lg.assign_epoch(meta.leader_epoch, lg.log_end_offset)

    def _delete_logs(self, names: list[str]) -> None:
        for name in names:
            self.logs.delete_topic(name)
            log.info("deleted the logs of topic %s", name)

    # -- opening logs ----------------------------------------------------------------------------

    async def open_logs(self) -> None:
        """Open every hosted log in a worker thread (recovering those a crash left dirty),
        so that first use finds them ready; requests meanwhile wait only for their own."""
        pending = [tp for tp, p in self.partitions.items() if not p.log.loaded]
        pending.sort(key=lambda tp: not self.partitions[tp].log.needs_recovery)
        for tp in pending:
            partition = self.partitions.get(tp)
            if partition is not None:
                try:
                    await self._open(partition)
                except KafkaError as e:
                    log.error("cannot open the log of %s-%d: %s", tp[0], tp[1], e)

    async def _open(self, partition: Partition) -> None:
        tp = (partition.topic, partition.index)
        waiter = self._loading.get(tp)
        if waiter is None:
            waiter = self._loading[tp] = asyncio.ensure_future(
                asyncio.to_thread(_open_log, partition)
            )
        try:
            await asyncio.shield(waiter)
        finally:
            if waiter.done():
                self._loading.pop(tp, None)
        if partition.on_log_loaded():
            self.purgatory.notify(high_watermark_key(tp))

    # -- lookups ---------------------------------------------------------------------------------

    def get(self, topic: str, index: int) -> Partition:
        """A partition hosted here (leader or follower), or UNKNOWN_TOPIC_OR_PARTITION."""
        p = self.partitions.get((topic, index))
        if p is None:
            raise KafkaError(
                f"This server does not host this topic-partition: {topic}-{index}",
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            )
        return p

    def leader(self, topic: str, index: int) -> Partition:
        """A partition led here, ready to use; NOT_LEADER_OR_FOLLOWER if another broker leads
        it, KAFKA_STORAGE_ERROR if its log cannot open. A log not yet open is opened now
        (`ready` first, to do that in a thread)."""
        p = self.get(topic, index)
        p.check_leader()
        if not p.log.loaded:
            p.log.load()
            p.on_log_loaded()
        return p

    async def ready(self, keys: Iterable[TopicPartition]) -> None:
        """Open (in a worker thread) the logs of the named hosted partitions not open yet."""
        for tp in keys:
            p = self.partitions.get(tp)
            if p is not None and not p.log.loaded:
                with contextlib.suppress(KafkaError):  # the request's own look-up reports it
                    await self._open(p)

    # -- appends ---------------------------------------------------------------------------------

    def append(
        self,
        topic: str,
        index: int,
        records: memoryview | bytes | bytearray,
        required_acks: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> ProduceOutcome:
        """Append to a partition led here and wake the fetches its growth concerns."""
        partition = self.leader(topic, index)
        hw = partition.high_watermark
        outcome = partition.append_as_leader(records, required_acks, origin)
        tp = (topic, index)
        self.purgatory.notify(log_end_key(tp))
        if partition.high_watermark != hw:
            self.purgatory.notify(high_watermark_key(tp))
        return outcome

    async def wait_for_acks(
        self, waits: dict[TopicPartition, AppendWait], timeout_s: float
    ) -> dict[TopicPartition, ErrorCode]:
        """acks=all: wait until each partition's high watermark passes its append (or the
        timeout: REQUEST_TIMED_OUT). NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank
        below min.insync.replicas meanwhile; NOT_LEADER_OR_FOLLOWER when leadership moved."""
        results: dict[TopicPartition, ErrorCode] = {}
        pending = dict(waits)
        deadline = time.monotonic() + timeout_s
        while True:
            for tp, w in list(pending.items()):
                error = self._ack_state(tp, w)
                if error is not None:
                    results[tp] = error
                    del pending[tp]
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            await self.purgatory.wait_any([high_watermark_key(tp) for tp in pending], remaining)
        for tp in pending:
            results[tp] = ErrorCode.REQUEST_TIMED_OUT
        return results

    def _ack_state(self, tp: TopicPartition, w: AppendWait) -> ErrorCode | None:
        p = w.partition
        if self.partitions.get(tp) is not p or not p.is_leader:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        if p.high_watermark < w.required_offset:
            return None
        return ErrorCode.NONE if p.enough_replicas() else ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND

    # -- periodic --------------------------------------------------------------------------------

    def expire_producers(self, now_ms: int, expiration_ms: int) -> None:
        """Forget idle producers of the open logs (in-memory; on the loop, as appends are)."""
        for p in list(self.partitions.values()):
            if p.log.loaded:
                p.log.producers.expire(now_ms, expiration_ms)


def _open_log(partition: Partition) -> None:
    """In a worker thread: open (and if need be recover) the log, record the leader epoch."""
    partition.log.load()
    partition.record_leader_epoch()
