"""Timers for the coordinator: session and rebalance timeouts, delayed joins.

The coordinator only needs "call this after so many milliseconds, unless rescheduled or
cancelled", keyed so that a heartbeat can push its member's deadline back. `LoopTimer` runs on
the asyncio loop; `ManualTimer` runs when a test advances its clock, so the state machine can be
driven without sockets or sleeps.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)

Callback = Callable[[], None]


class Timer:
    """The interface: a clock in milliseconds and keyed one-shot callbacks."""

    def now_ms(self) -> int:
        raise NotImplementedError

    def schedule(self, key: Hashable, delay_ms: float, callback: Callback) -> None:
        """Run callback after delay_ms; replaces a pending callback of the same key."""
        raise NotImplementedError

    def cancel(self, key: Hashable) -> None:
        raise NotImplementedError

    def scheduled(self, key: Hashable) -> bool:
        raise NotImplementedError

    def cancel_all(self) -> None:
        raise NotImplementedError

    def scheduled_keys(self) -> list[Hashable]:
        """The keys of the callbacks scheduled now."""
        raise NotImplementedError

    @property
    def pending(self) -> int:
        raise NotImplementedError


def _run(key: Hashable, callback: Callback) -> None:
    try:
        callback()
    except Exception:
        log.exception("group coordinator timer %r failed", key)


class LoopTimer(Timer):
    """Timers on the running asyncio loop (loop.call_later)."""

    def __init__(self) -> None:
        self._handles: dict[Hashable, asyncio.TimerHandle] = {}

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def schedule(self, key: Hashable, delay_ms: float, callback: Callback) -> None:
        old = self._handles.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._handles[key] = loop.call_later(max(delay_ms, 0) / 1000, self._fire, key, callback)

    def _fire(self, key: Hashable, callback: Callback) -> None:
        self._handles.pop(key, None)
        _run(key, callback)

    def cancel(self, key: Hashable) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def scheduled(self, key: Hashable) -> bool:
        return key in self._handles

    def scheduled_keys(self) -> list[Hashable]:
        return list(self._handles)

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()

    @property
    def pending(self) -> int:
        return len(self._handles)


class ManualTimer(Timer):
    """A fake clock for tests: callbacks run only inside advance(), in deadline order."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms
        self._heap: list[tuple[int, int, Hashable]] = []
        self._entries: dict[Hashable, tuple[int, int, Callback]] = {}
        self._seq = itertools.count()

    def now_ms(self) -> int:
        return self._now

    def schedule(self, key: Hashable, delay_ms: float, callback: Callback) -> None:
        deadline = self._now + max(int(delay_ms), 0)
        seq = next(self._seq)
        self._entries[key] = (deadline, seq, callback)
        heapq.heappush(self._heap, (deadline, seq, key))

    def cancel(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def scheduled(self, key: Hashable) -> bool:
        return key in self._entries

    def scheduled_keys(self) -> list[Hashable]:
        return list(self._entries)

    def cancel_all(self) -> None:
        self._entries.clear()
        self._heap.clear()

    @property
    def pending(self) -> int:
        return len(self._entries)

    def advance(self, ms: int) -> None:
        """Move the clock forward, running every callback that falls due on the way."""
        target = self._now + ms
        while self._heap and self._heap[0][0] <= target:
            deadline, seq, key = heapq.heappop(self._heap)
            entry = self._entries.get(key)
            if entry is None or entry[1] != seq:
                continue  # cancelled or rescheduled
            del self._entries[key]
            self._now = max(self._now, deadline)
            _run(key, entry[2])
        self._now = target
