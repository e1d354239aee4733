"""A result that may come later: coordinator answers, completed once their records commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")


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

    def map(self, fn: Callable[[T], U]) -> Deferred[U]:
        """A result computed from this one when it completes (at once if it has)."""
        out: Deferred[U] = Deferred()
        self.add_callback(lambda result: out.complete(fn(result)))
        return out

    def then(self, fn: Callable[[T], Deferred[U]]) -> Deferred[U]:
        """The result of the next step, which starts when this one completes."""
        out: Deferred[U] = Deferred()
        self.add_callback(lambda result: fn(result).add_callback(out.complete))
        return out

    @staticmethod
    def all(items: list[Deferred[T]]) -> Deferred[list[T]]:
        """Completes with every item's result, in order, once all have completed."""
        out: Deferred[list[T]] = Deferred()
        left = len(items)
        if not left:
            out.complete([])
            return out

        def one_done(_: T) -> None:
            nonlocal left
            left -= 1
            if left == 0:
                out.complete([d.result for d in items])

        for d in items:
            d.add_callback(one_done)
        return out
