"""Broker registration: this broker's ephemeral /brokers/ids/N, and the set of live brokers."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable

from kazoo.exceptions import NodeExistsError, NoNodeError

from strom.cluster.coordination import paths
from strom.cluster.coordination.codec import BrokerRegistration, decode_broker, encode_broker
from strom.cluster.coordination.errors import BrokerIdTakenError, CodecError, translate
from strom.cluster.coordination.session import SessionEvent, ZkSession
from strom.cluster.coordination.watches import Watch, watch_children

log = logging.getLogger(__name__)


class BrokerRegistry:
    """Registers one broker and reads or follows the live ones. After a session expiry the
    registration is made again as soon as the new session connects, as Kafka's brokers do."""

    def __init__(self, session: ZkSession) -> None:
        self.session = session
        self._registration: BrokerRegistration | None = None
        self._lock = threading.Lock()
        session.add_listener(self._on_session)

    def register(self, registration: BrokerRegistration, wait_ms: int = 0) -> int:
        """Create /brokers/ids/N for this session and return the broker epoch (the znode's
        creation zxid, which grows with every registration). Raises BrokerIdTakenError if
        another live session holds the id for longer than `wait_ms` (a broker restarted
        after a crash waits for its old session to time out)."""
        deadline = time.monotonic() + wait_ms / 1000
        with self._lock:
            for attempt in itertools.count():
                try:
                    epoch = self._create(registration)
                    break
                except BrokerIdTakenError as exc:
                    if time.monotonic() >= deadline:
                        raise
                    if attempt == 0:
                        log.info("%s; waiting up to %d ms for it to go", exc, wait_ms)
                    time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            self._registration = registration
        log.info(
            "registered broker %d at %s (broker epoch %d)",
            registration.broker_id,
            ", ".join(str(e) for e in registration.endpoints),
            epoch,
        )
        return epoch

    def unregister(self) -> None:
        """Delete this broker's registration (closing the session does the same)."""
        with self._lock:
            registration, self._registration = self._registration, None
            if registration is None:
                return
            path = paths.broker(registration.broker_id)
            with translate(f"unregistering broker {registration.broker_id}"):
                try:
                    _, stat = self.session.client.get(path)
                    if stat.ephemeralOwner == self.session.session_id:
                        self.session.client.delete(path, version=stat.version)
                except NoNodeError:
                    pass
        log.info("unregistered broker %d", registration.broker_id)

    def _create(self, registration: BrokerRegistration) -> int:
        path = paths.broker(registration.broker_id)
        data = encode_broker(registration)
        client = self.session.client
        with translate(f"registering broker {registration.broker_id}"):
            for _ in range(3):
                try:
                    client.create(path, data, ephemeral=True)
                    _, stat = client.get(path)
                    return stat.czxid
                except NodeExistsError:
                    try:
                        old, stat = client.get(path)
                    except NoNodeError:
                        continue  # the other session ended meanwhile: try again
                    if stat.ephemeralOwner == self.session.session_id:
                        # ours already (a retry after a lost reply): bring it up to date
                        if old != data:
                            client.set(path, data, version=stat.version)
                        return stat.czxid
                    raise BrokerIdTakenError(
                        f"broker id {registration.broker_id} is already registered by live "
                        f"session 0x{stat.ephemeralOwner:x} ({_describe(registration.broker_id, old)})"
                    ) from None
            raise BrokerIdTakenError(
                f"broker id {registration.broker_id}: registration kept racing with another session"
            )

    def _on_session(self, event: SessionEvent) -> None:
        if event is not SessionEvent.CONNECTED:
            return
        with self._lock:
            registration = self._registration
            if registration is None:
                return
            try:
                epoch = self._create(registration)
            except Exception:
                log.exception(
                    "could not register broker %d again after a new zookeeper session",
                    registration.broker_id,
                )
                return
        log.info(
            "registered broker %d again in a new session (broker epoch %d)",
            registration.broker_id,
            epoch,
        )

    # ---- reading -------------------------------------------------------------------------

    def live_broker_ids(self) -> frozenset[int]:
        with translate("listing live brokers"):
            children = self.session.client.retry(self.session.client.get_children, paths.BROKER_IDS)
        return _ids(children)

    def broker(self, broker_id: int) -> BrokerRegistration | None:
        """A live broker's registration, or None if it is not registered."""
        with translate(f"reading broker {broker_id}"):
            try:
                data, _ = self.session.client.retry(
                    self.session.client.get, paths.broker(broker_id)
                )
            except NoNodeError:
                return None
        return decode_broker(broker_id, data)

    def live_brokers(self) -> dict[int, BrokerRegistration]:
        """Every live broker's registration, by id (one that leaves meanwhile is left out)."""
        out: dict[int, BrokerRegistration] = {}
        for broker_id in sorted(self.live_broker_ids()):
            registration = self.broker(broker_id)
            if registration is not None:
                out[broker_id] = registration
        return out

    def watch(self, callback: Callable[[frozenset[int]], None]) -> Watch:
        """Call `callback(live broker ids)` now and whenever a broker comes or goes."""
        return watch_children(
            self.session, paths.BROKER_IDS, lambda children: callback(_ids(children))
        )


def _ids(children: list[str]) -> frozenset[int]:
    ids = set()
    for child in children:
        if child.isdigit():
            ids.add(int(child))
        else:
            log.warning("ignoring %s/%s: not a broker id", paths.BROKER_IDS, child)
    return frozenset(ids)


def _describe(broker_id: int, data: bytes | None) -> str:
    try:
        reg = decode_broker(broker_id, data)
    except CodecError as exc:
        return str(exc)
    return ", ".join(str(e) for e in reg.endpoints) or "no endpoints"
