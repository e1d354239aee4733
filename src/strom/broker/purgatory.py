"""Delayed operations: fetches waiting for data (min_bytes) and acks=all produces waiting for the
ISR, each parked on keys (see replica_manager: high watermark and log end keys) until notified
or timed out."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable


class Purgatory:
    """Waiters parked on keys; notifying a key wakes every waiter parked on it."""

    def __init__(self) -> None:
        self._waiters: dict[Hashable, set[asyncio.Event]] = {}

    @property
    def waiting(self) -> int:
        return sum(len(s) for s in self._waiters.values())

    async def wait_any(self, keys: Iterable[Hashable], timeout_s: float) -> bool:
        """Park until one of keys is notified (True) or the timeout passes (False)."""
        event = asyncio.Event()
        keys = list(keys)
        for k in keys:
            self._waiters.setdefault(k, set()).add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            for k in keys:
                waiters = self._waiters.get(k)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[k]

    def notify(self, key: Hashable) -> None:
        waiters = self._waiters.get(key)
        if waiters:
            for event in waiters:
                event.set()
