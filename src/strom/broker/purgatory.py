"""Delayed operations: fetches waiting for data (min_bytes) and acks=all produces waiting for the
ISR, each parked on keys (see replica_manager: high watermark and log end keys) until notified
or timed out."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(False)


class Purgatory:
    """Waiters parked on keys; notifying a key wakes every waiter parked on it."""

    def __init__(self) -> None:
        self._waiters: dict[Hashable, set[asyncio.Future]] = {}
        #: waiters woken so far; a request that sees it move knows its work woke someone
        self.woken = 0

    @property
    def waiting(self) -> int:
        return sum(len(s) for s in self._waiters.values())

    async def wait_any(self, keys: Iterable[Hashable], timeout_s: float) -> bool:
        """Park until one of keys is notified (True) or the timeout passes (False). A plain
        future and a timer (no Event, no wait_for task): the waiter runs in the loop
        iteration after the notify."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        keys = list(keys)
        for k in keys:
            self._waiters.setdefault(k, set()).add(fut)
        timer = loop.call_later(timeout_s, _expire, fut)
        try:
            return await fut
        finally:
            timer.cancel()
            for k in keys:
                waiters = self._waiters.get(k)
                if waiters is not None:
                    waiters.discard(fut)
                    if not waiters:
                        del self._waiters[k]

    def notify(self, key: Hashable) -> None:
        waiters = self._waiters.get(key)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(True)
                    self.woken += 1
