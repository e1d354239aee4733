"""Incremental fetch sessions (KIP-227): what each session holds and which partitions to answer."""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from strom.protocol.errors import ErrorCode, KafkaError

INITIAL_EPOCH = 0
FINAL_EPOCH = -1
INVALID_SESSION_ID = 0
INT_MAX = (1 << 31) - 1
EVICTABLE_AFTER_S = 120.0  # a full cache gives up only sessions idle this long

# a session partition's key: (topic name, partition); topic ids are resolved before
Key = tuple[str, int]


@dataclass(slots=True)
class SessionPartition:
    """What a session remembers of one partition: the request, and what was last answered."""

    topic_id: bytes
    fetch_offset: int
    max_bytes: int
    log_start_offset: int = -1
    current_leader_epoch: int = -1
    # last answered, so an incremental response can leave out what did not change
    high_watermark: int = -1
    last_stable_offset: int = -1
    answered_log_start: int = -1


@dataclass
class FetchSession:
    session_id: int
    epoch: int  # the epoch the next request must carry
    partitions: OrderedDict[Key, SessionPartition] = field(default_factory=OrderedDict)
    last_used: float = 0.0

    def update(self, wanted: OrderedDict[Key, SessionPartition]) -> None:
        """An incremental request's partitions: new ones join, known ones take the new fetch
        position but keep what was last answered."""
        for key, sp in wanted.items():
            known = self.partitions.get(key)
            if known is None:
                self.partitions[key] = sp
            else:
                known.topic_id = sp.topic_id
                known.fetch_offset = sp.fetch_offset
                known.max_bytes = sp.max_bytes
                known.log_start_offset = sp.log_start_offset
                known.current_leader_epoch = sp.current_leader_epoch

    def changed(self, key: Key, hw: int, lso: int, log_start: int, has_data: bool) -> bool:
        """Whether a partition belongs in an incremental response; remembers what is sent."""
        p = self.partitions[key]
        changed = (
            has_data
            or p.high_watermark != hw
            or p.last_stable_offset != lso
            or p.answered_log_start != log_start
        )
        p.high_watermark, p.last_stable_offset, p.answered_log_start = hw, lso, log_start
        return changed


def next_epoch(epoch: int) -> int:
    return 1 if epoch >= INT_MAX else epoch + 1


class FetchSessionCache:
    """Sessions by id, at most `max_slots` (least recently used evicted first)."""

    def __init__(self, max_slots: int = 1000) -> None:
        self.max_slots = max_slots
        self._sessions: OrderedDict[int, FetchSession] = OrderedDict()
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._sessions)

    def resolve(self, session_id: int, epoch: int) -> tuple[FetchSession | None, bool]:
        """The session a request names: (session or None, whether the fetch is incremental).

        Full fetches (epoch 0 or -1) close the named session; epoch 0 opens a new one, which
        the caller fills from the request. Raises FETCH_SESSION_ID_NOT_FOUND or
        INVALID_FETCH_SESSION_EPOCH for a bad incremental request.
        """
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if session_id != INVALID_SESSION_ID:
                self._sessions.pop(session_id, None)
            if epoch == FINAL_EPOCH or self.max_slots == 0:
                return None, False
            if len(self._sessions) >= self.max_slots:
                oldest = next(iter(self._sessions.values()))
                if time.monotonic() - oldest.last_used < EVICTABLE_AFTER_S:
                    return None, False  # every slot busy: this fetch goes without a session
                self._sessions.popitem(last=False)
            sid = next(self._ids)
            if sid > INT_MAX:
                self._ids = itertools.count(1)
                sid = next(self._ids)
            session = FetchSession(sid, next_epoch(INITIAL_EPOCH), last_used=time.monotonic())
            self._sessions[sid] = session
            return session, False
        session = self._sessions.get(session_id)
        if session is None:
            raise KafkaError(
                f"fetch session {session_id} not found", ErrorCode.FETCH_SESSION_ID_NOT_FOUND
            )
        if epoch != session.epoch:
            raise KafkaError(
                f"fetch session {session_id} expected epoch {session.epoch}, got {epoch}",
                ErrorCode.INVALID_FETCH_SESSION_EPOCH,
            )
        session.epoch = next_epoch(epoch)
        session.last_used = time.monotonic()
        self._sessions.move_to_end(session_id)
        return session, True

    def forget_topic(self, name: str) -> None:
        """A deleted topic leaves every session."""
        for s in self._sessions.values():
            for key in [k for k in s.partitions if k[0] == name]:
                del s.partitions[key]
