"""Fetch: read each partition from its offset, wait for min_bytes, answer within fetch sessions."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from strom.broker.fetch_sessions import FetchSession, Key, SessionPartition
from strom.broker.partition import Isolation, Partition
from strom.broker.replica_manager import high_watermark_key, log_end_key
from strom.cluster.metadata import ZERO_UUID
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frames import FileRange
from strom.protocol.messages.fetch import FetchRequest, FetchResponse
from strom.protocol.primitives import SPLICE_MIN
from strom.storage.txn_index import AbortedTxn

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

log = logging.getLogger(__name__)
PartData = FetchResponse.PartitionData
TopicData = FetchResponse.FetchableTopicResponse
Aborted = FetchResponse.AbortedTransaction
READ_COMMITTED = 1


def _wanted(
    services: Services, request: FetchRequest, version: int
) -> tuple[OrderedDict[Key, SessionPartition], list[tuple[bytes, int]]]:
    """The partitions a request names (topic ids resolved), and ids that resolve to nothing."""
    names = services.image.topic_names
    wanted: OrderedDict[Key, SessionPartition] = OrderedDict()
    unknown: list[tuple[bytes, int]] = []
    for t in request.topics:
        if version >= 13:
            name = names.get(t.topic_id)
            if name is None:
                unknown.extend((t.topic_id, p.partition) for p in t.partitions)
                continue
            tid = t.topic_id
        else:
            name = t.topic
            meta = services.image.topics.get(name)
            tid = meta.topic_id if meta else ZERO_UUID
        for p in t.partitions:
            wanted[(name, p.partition)] = SessionPartition(
                topic_id=tid,
                fetch_offset=p.fetch_offset,
                max_bytes=p.partition_max_bytes,
                log_start_offset=p.log_start_offset,
                current_leader_epoch=p.current_leader_epoch,
            )
    return wanted, unknown


def _forget(services: Services, session: FetchSession, request: FetchRequest, version: int) -> None:
    for f in request.forgotten_topics_data:
        name = services.image.topic_names.get(f.topic_id) if version >= 13 else f.topic
        if name is None:
            continue
        for p in f.partitions:
            session.partitions.pop((name, p), None)


# record data below this is read into the response (one pread) rather than sent by sendfile,
# whose asyncio path costs a dup, pause/resume of reading and extra loop iterations
INLINE_MAX = max(SPLICE_MIN, 64 << 10)


class _Read:
    """One partition's part of the answer, before it is encoded."""

    __slots__ = ("key", "error", "hw", "lso", "log_start", "records", "size", "aborted")

    def __init__(self, key: Key) -> None:
        self.key = key
        self.error = ErrorCode.NONE
        self.hw = self.lso = self.log_start = -1
        self.records: bytes | FileRange = b""
        self.size = 0
        self.aborted: list[AbortedTxn] = []  # read_committed: aborts within what was read


def _aborted(partition: Partition, r: _Read, fetch_offset: int, isolation: Isolation) -> None:
    """read_committed: the transactions aborted in the range read, for the consumer to drop."""
    if isolation is Isolation.COMMITTED and r.size > 0:
        r.aborted = partition.log.aborted_transactions(fetch_offset, r.lso)


def _read_all(
    services: Services,
    wanted: OrderedDict[Key, SessionPartition],
    max_bytes: int,
    isolation: Isolation,
    replica_id: int,
    hard_limit: bool,
) -> tuple[list[_Read], int, bool]:
    rm = services.replica_manager
    reads = []
    total = 0
    errors = False
    for key, sp in wanted.items():
        r = _Read(key)
        reads.append(r)
        try:
            partition = rm.leader(*key)
            partition.check_leader_epoch(sp.current_leader_epoch)
            if replica_id >= 0 and partition.update_follower(replica_id, sp.fetch_offset):
                rm.purgatory.notify(high_watermark_key(key))
            r.hw = partition.high_watermark
            r.lso = partition.last_stable_offset()
            r.log_start = partition.log_start_offset
            remaining = max_bytes - total
            limit = min(sp.max_bytes, remaining)
            min_one = not hard_limit and total == 0
            if limit <= 0 and not min_one:
                continue
            rr = partition.read(sp.fetch_offset, max(limit, 0), isolation, min_one)
        except KafkaError as e:
            r.error = e.code
            errors = True
            continue
        if rr.length == 0:
            continue
        try:
            if rr.length >= INLINE_MAX and rr.file is not None:
                r.records = FileRange(rr.file.pin(), rr.position, rr.length, rr.file.unpin)
            else:
                r.records = rr.read_bytes()
        except OSError as e:
            log.warning("cannot read %s-%d: %s", key[0], key[1], e)
            r.error = ErrorCode.KAFKA_STORAGE_ERROR
            errors = True
            continue
        r.size = rr.length
        total += rr.length
        _aborted(partition, r, sp.fetch_offset, isolation)
    return reads, total, errors


def _release(reads: list[_Read]) -> None:
    for r in reads:
        if isinstance(r.records, FileRange) and r.records.release is not None:
            r.records.release()
            r.records.release = None


async def handle(services: Services, ctx: RequestContext, request: FetchRequest) -> FetchResponse:
    version = ctx.header.api_version
    session: FetchSession | None = None
    incremental = False
    if version >= 7:
        try:
            session, incremental = services.fetch_sessions.resolve(
                request.session_id, request.session_epoch
            )
        except KafkaError as e:
            return FetchResponse(error_code=e.code, session_id=0, responses=[])
    wanted, unknown_ids = _wanted(services, request, version)
    if session is not None:
        if incremental:
            _forget(services, session, request, version)
            session.update(wanted)
        else:
            session.partitions = wanted
        wanted = session.partitions
    read_committed = request.isolation_level == READ_COMMITTED
    # a follower (replica id >= 0) reads to the log end and wakes on appends; a consumer reads
    # to the high watermark (read_committed: the last stable offset) and wakes when it moves
    replica_id = request.replica_state.replica_id if version >= 15 else request.replica_id
    if replica_id >= 0:
        isolation, wake_on = Isolation.LOG_END, log_end_key
    else:
        isolation = Isolation.COMMITTED if read_committed else Isolation.HIGH_WATERMARK
        wake_on = high_watermark_key
    max_bytes = request.max_bytes if version >= 3 else 2**31 - 1
    hard_limit = version <= 2
    deadline = time.monotonic() + max(request.max_wait_ms, 0) / 1000
    rm = services.replica_manager
    await rm.ready(wanted)
    while True:
        reads, total, errors = _read_all(
            services, wanted, max_bytes, isolation, replica_id, hard_limit
        )
        remaining = deadline - time.monotonic()
        done = errors or bool(unknown_ids) or remaining <= 0 or not wanted
        if total >= request.min_bytes or done:
            break
        _release(reads)
        await rm.purgatory.wait_any([wake_on(k) for k in wanted], remaining)
    try:
        return _respond(services, session, incremental, wanted, reads, unknown_ids, read_committed)
    except BaseException:
        _release(reads)  # pinned segment files are freed whatever happens to the answer
        raise


def _respond(
    services: Services,
    session: FetchSession | None,
    incremental: bool,
    wanted: OrderedDict[Key, SessionPartition],
    reads: list[_Read],
    unknown_ids: list[tuple[bytes, int]],
    read_committed: bool,
) -> FetchResponse:
    """The answer: every read partition (in a session, incremental answers only what changed),
    and UNKNOWN_TOPIC_ID for ids that resolve to no topic."""
    by_topic: OrderedDict[str, list[PartData]] = OrderedDict()
    for r in reads:
        if session is not None:
            changed = session.changed(r.key, r.hw, r.lso, r.log_start, r.size > 0)
            if r.size > 0:
                session.partitions.move_to_end(r.key)  # the others go first next time
            if incremental and not changed and r.error == ErrorCode.NONE:
                continue
        by_topic.setdefault(r.key[0], []).append(
            PartData(
                partition_index=r.key[1],
                error_code=r.error,
                high_watermark=r.hw,
                last_stable_offset=r.lso,
                log_start_offset=r.log_start,
                aborted_transactions=[
                    Aborted(producer_id=a.producer_id, first_offset=a.first_offset)
                    for a in r.aborted
                ]
                if read_committed
                else None,
                records=r.records,
            )
        )
    responses = []
    for name, parts in by_topic.items():
        meta = services.image.topics.get(name)
        tid = (
            meta.topic_id if meta is not None else wanted[(name, parts[0].partition_index)].topic_id
        )
        responses.append(TopicData(topic=name, topic_id=tid, partitions=parts))
    for tid, p in unknown_ids:
        responses.append(
            TopicData(
                topic_id=tid,
                partitions=[PartData(partition_index=p, error_code=ErrorCode.UNKNOWN_TOPIC_ID)],
            )
        )
    return FetchResponse(
        error_code=0, session_id=session.session_id if session else 0, responses=responses
    )
