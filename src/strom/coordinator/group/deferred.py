"""A result that may come later: JoinGroup and SyncGroup answers the state machine completes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Deferred(Generic[T]):
    """Completed once by the state machine; handlers await it, tests read it directly."""

    __slots__ = ("_callbacks", "_done", "_result")

    def __init__(self) -> None:
        self._done = False
        self._result: T | None = None
        self._callbacks: list[Callable[[T], None]] = []

    @classmethod
    def of(cls, result: T) -> Deferred[T]:
        d: Deferred[T] = cls()
        d.complete(result)
        return d

    @property
    def done(self) -> bool:
        return self._done

    @property
    def result(self) -> T:
        if not self._done:
            raise RuntimeError("deferred result is not complete")
        return self._result  # type: ignore[return-value]

    def complete(self, result: T) -> bool:
        """Set the result (the first completion wins); False if already complete."""
        if self._done:
            return False
        self._done = True
        self._result = result
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(result)
        return True

    def add_callback(self, callback: Callable[[T], None]) -> None:
        if self._done:
            callback(self._result)  # type: ignore[arg-type]
        else:
            self._callbacks.append(callback)

    async def wait(self) -> T:
        if self._done:
            return self._result  # type: ignore[return-value]
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        def _set(result: T) -> None:
            if not future.done():
                future.set_result(result)

        self.add_callback(_set)
        return await future
