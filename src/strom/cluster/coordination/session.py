"""One ZooKeeper session: connect (with chroot), create Kafka's paths, report state changes."""

from __future__ import annotations

import enum
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from kazoo.client import KazooClient, KazooState
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import Callback
from kazoo.retry import KazooRetry

from strom.cluster.coordination import paths
from strom.cluster.coordination.errors import ZkUnavailableError, translate

log = logging.getLogger(__name__)

DEFAULT_SESSION_TIMEOUT_MS = 18_000  # Kafka's zookeeper.session.timeout.ms

_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.%]+\]|[^\s,:/\[\]]+):(\d{1,5})")


class SessionEvent(enum.Enum):
    """What happened to the session, as a broker must react to it."""

    #: A new session: the first one, or a fresh one after EXPIRED. Ephemeral znodes of any
    #: earlier session are gone and must be created again.
    CONNECTED = "connected"
    #: The connection dropped; the session may still be alive on the server. Do not act as
    #: controller or trust cached state until RECONNECTED or EXPIRED.
    SUSPENDED = "suspended"
    #: The connection is back within the same session: ephemerals and watches are intact.
    RECONNECTED = "reconnected"
    #: The server expired the session: this broker's ephemeral znodes were deleted.
    EXPIRED = "expired"
    #: Closed by `ZkSession.close`.
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ZkConnect:
    """A parsed zookeeper.connect: "HOST:PORT[,HOST:PORT...][/chroot]"."""

    hosts: str
    chroot: str = ""

    def __str__(self) -> str:
        return self.hosts + self.chroot


def parse_connect(text: str) -> ZkConnect:
    """Parse and check a connect string; the chroot is normalised ("/a/b", no trailing "/")."""
    hosts, slash, chroot = text.strip().partition("/")
    if not hosts or not all(_HOST_PORT.fullmatch(h) for h in hosts.split(",")):
        raise ValueError(
            f"malformed ZooKeeper connect string {text!r}: want HOST:PORT[,...][/chroot]"
        )
    parts = [p for p in chroot.split("/") if p]
    if slash and any(p in (".", "..") for p in parts):
        raise ValueError(f"malformed chroot in {text!r}")
    return ZkConnect(hosts, "/" + "/".join(parts) if parts else "")


Listener = Callable[[SessionEvent], None]


class ZkSession:
    """A kazoo client and its session. Listeners and watch callbacks of the coordination
    modules run on kazoo's callback thread, one at a time, in the order ZooKeeper sent them;
    they must not block for long (hand work to the event loop with call_soon_threadsafe)."""

    def __init__(
        self,
        connect: str,
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        connection_timeout_ms: int | None = None,
    ) -> None:
        self.connect = parse_connect(connect)
        self.session_timeout_ms = session_timeout_ms
        self.connection_timeout_ms = connection_timeout_ms or session_timeout_ms
        timeout_s = session_timeout_ms / 1000
        # the kazoo client, for the modules of this package only
        self.client = KazooClient(
            hosts=str(self.connect),
            timeout=timeout_s,
            # reads (and kazoo's watch recipes) retry through a dropped connection for up to
            # one session timeout; writes are never retried blindly
            command_retry=KazooRetry(
                max_tries=-1, max_delay=1.0, deadline=timeout_s, ignore_expire=False
            ),
            connection_retry=KazooRetry(max_tries=-1, max_delay=1.0),
            logger=log,
        )
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._state: KazooState | None = None
        self._closing = False
        self.client.add_listener(self._on_kazoo_state)

    # ---- life ----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (creating the chroot first if needed) and make sure Kafka's persistent
        paths exist. Raises ZkUnavailableError if no server answers in time."""
        if self.connect.chroot:
            self._create_chroot()
        try:
            self.client.start(timeout=self.connection_timeout_ms / 1000)
        except KazooTimeoutError as exc:
            raise ZkUnavailableError(
                f"no ZooKeeper at {self.connect.hosts} answered within "
                f"{self.connection_timeout_ms} ms"
            ) from exc
        with translate(f"creating the persistent paths under {self.connect}"):
            for path in paths.PERSISTENT_PATHS:
                self.client.ensure_path(path)
        log.info(
            "zookeeper session 0x%x at %s (timeout %d ms)",
            self.session_id or 0,
            self.connect,
            self.session_timeout_ms,
        )

    def _create_chroot(self) -> None:
        root = KazooClient(hosts=self.connect.hosts, timeout=self.session_timeout_ms / 1000)
        try:
            root.start(timeout=self.connection_timeout_ms / 1000)
        except KazooTimeoutError as exc:
            raise ZkUnavailableError(
                f"no ZooKeeper at {self.connect.hosts} answered within "
                f"{self.connection_timeout_ms} ms"
            ) from exc
        try:
            with translate(f"creating chroot {self.connect.chroot}"):
                root.ensure_path(self.connect.chroot)
        finally:
            root.stop()
            root.close()

    def close(self) -> None:
        """End the session: the server deletes its ephemeral znodes at once."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        sid = self.session_id
        self.client.stop()
        self.client.close()
        log.info("zookeeper session 0x%x at %s closed", sid or 0, self.connect)
        for listener in list(self._listeners):
            self._call(listener, SessionEvent.CLOSED)

    def __enter__(self) -> ZkSession:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- state ---------------------------------------------------------------------------

    @property
    def session_id(self) -> int | None:
        """The server's id for the current session (None before the first connect)."""
        cid = self.client.client_id
        return cid[0] if cid else None

    @property
    def connected(self) -> bool:
        return self.client.connected

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(event)` on every SessionEvent, on the callback thread."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _on_kazoo_state(self, state: KazooState) -> None:
        # runs on kazoo's connection thread: translate, and hand over to the callback thread
        with self._lock:
            previous, self._state = self._state, state
            if self._closing:
                return
        if state == KazooState.CONNECTED:
            event = (
                SessionEvent.RECONNECTED
                if previous == KazooState.SUSPENDED
                else SessionEvent.CONNECTED
            )
        elif state == KazooState.SUSPENDED:
            event = SessionEvent.SUSPENDED
        else:
            event = SessionEvent.EXPIRED
        log.log(
            logging.WARNING
            if event in (SessionEvent.SUSPENDED, SessionEvent.EXPIRED)
            else logging.INFO,
            "zookeeper session at %s: %s",
            self.connect,
            event.value,
        )
        for listener in list(self._listeners):
            self.client.handler.dispatch_callback(
                Callback("session", self._call, (listener, event))
            )

    def _call(self, listener: Listener, event: SessionEvent) -> None:
        try:
            listener(event)
        except Exception:
            log.exception(
                "session listener %r failed on %s (%s)", listener, event.value, self.connect
            )
