"""Cancellable watches on a znode's data or children, over kazoo's re-arming watch recipes."""

from __future__ import annotations

import logging
from collections.abc import Callable

from kazoo.protocol.states import ZnodeStat
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from strom.cluster.coordination.errors import translate
from strom.cluster.coordination.session import ZkSession

log = logging.getLogger(__name__)


class Watch:
    """A running watch. Its callback is called once at once (on the calling thread) and then
    on every change (on the session's callback thread), also across reconnects, until
    `cancel()`. A failing callback is logged and the watch goes on."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cancelled = False

    def cancel(self) -> None:
        """No more calls after this returns (the kazoo watch ends at its next event)."""
        self.cancelled = True


def watch_children(session: ZkSession, path: str, callback: Callable[[list[str]], None]) -> Watch:
    """Call `callback(sorted children of path)` now and whenever they change. The path is
    created if missing (a children watch needs it)."""
    watch = Watch(path)

    def on_children(children: list[str]) -> bool | None:
        if watch.cancelled:
            return False
        try:
            callback(sorted(children))
        except Exception:
            log.exception("children watch on %s%s: callback failed", session.connect, path)
        return None

    with translate(f"watching the children of {path}"):
        session.client.ensure_path(path)
        ChildrenWatch(session.client, path, on_children)
    return watch


def watch_data(
    session: ZkSession, path: str, callback: Callable[[bytes | None, ZnodeStat | None], None]
) -> Watch:
    """Call `callback(data, stat)` now and whenever the znode changes, is created or is
    deleted (then data and stat are None)."""
    watch = Watch(path)

    def on_data(data: bytes | None, stat: ZnodeStat | None, event: object = None) -> bool | None:
        if watch.cancelled:
            return False
        try:
            callback(data, stat)
        except Exception:
            log.exception("data watch on %s%s: callback failed", session.connect, path)
        return None

    with translate(f"watching {path}"):
        DataWatch(session.client, path, on_data)
    return watch
