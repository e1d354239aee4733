"""Controller election: the ephemeral /controller znode and the /controller_epoch counter."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.protocol.states import ZnodeStat

from strom.cluster.coordination import paths
from strom.cluster.coordination.codec import (
    ControllerRecord,
    decode_controller,
    decode_controller_epoch,
    encode_controller,
    encode_controller_epoch,
)
from strom.cluster.coordination.errors import (
    CodecError,
    CoordinationError,
    first_error,
    translate,
)
from strom.cluster.coordination.session import SessionEvent, ZkSession
from strom.cluster.coordination.watches import Watch, watch_data

log = logging.getLogger(__name__)

_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class Controller:
    """An elected controller. `epoch_zk_version` is the version of /controller_epoch that its
    election wrote: writes fenced with it fail once a newer controller has been elected."""

    broker_id: int
    epoch: int
    epoch_zk_version: int


class ControllerElection:
    """This broker's part in electing the controller. `elect()` tries once; `start()` keeps
    trying whenever the controller znode goes away and reports each new controller to
    `on_change`, in order. None means this broker stopped being controller because its
    session expired; if the next controller (maybe this broker, with a new epoch) is known
    by then, that is reported instead. Any new epoch means a new controller term. Callbacks
    come from kazoo's threads, one at a time, and must not block."""

    def __init__(
        self,
        session: ZkSession,
        broker_id: int,
        on_change: Callable[[Controller | None], None] | None = None,
    ) -> None:
        self.session = session
        self.broker_id = broker_id
        self.on_change = on_change
        self._lock = threading.RLock()
        self._watch: Watch | None = None
        self._running = False
        # our own election, while it lasts: (the session that won it, the result)
        self._won: tuple[int | None, Controller] | None = None
        self._reported: tuple[int, int] | None = None  # (czxid of /controller, epoch)
        session.add_listener(self._on_session)

    # ---- one election ----------------------------------------------------------------------

    def elect(self) -> Controller | None:
        """Become controller if there is none: create /controller and bump /controller_epoch
        in one transaction (the epoch write is a compare-and-set on its version). Returns
        this broker's Controller if it won (also if it already was), None if another broker
        is controller."""
        client = self.session.client
        with self._lock, translate(f"broker {self.broker_id} electing a controller"):
            for _ in range(_ATTEMPTS):
                epoch, version = self._read_epoch()
                txn = client.transaction()
                record = ControllerRecord(self.broker_id, int(time.time() * 1000))
                txn.create(paths.CONTROLLER, encode_controller(record), ephemeral=True)
                txn.set_data(
                    paths.CONTROLLER_EPOCH, encode_controller_epoch(epoch + 1), version=version
                )
                error = first_error(txn.commit())
                if error is None:
                    won = Controller(self.broker_id, epoch + 1, version + 1)
                    self._won = (self.session.session_id, won)
                    log.info(
                        "broker %d elected controller with epoch %d", self.broker_id, epoch + 1
                    )
                    return won
                if isinstance(error, NodeExistsError):
                    try:
                        _, stat = client.get(paths.CONTROLLER)
                    except NoNodeError:
                        continue  # the controller just went away: try again
                    if stat.ephemeralOwner == self.session.session_id:
                        return self._adopt()  # ours: an earlier try's reply was lost
                    return None
                if isinstance(error, BadVersionError | NoNodeError):
                    continue  # another election bumped the epoch meanwhile
                raise error
            raise CoordinationError(
                f"broker {self.broker_id}: controller election kept racing, gave up"
            )

    def _adopt(self) -> Controller:
        """This session holds /controller: the epoch is the one its election wrote."""
        won = self._won_now()
        if won is None:
            epoch, version = self._read_epoch()
            won = Controller(self.broker_id, epoch, version)
            self._won = (self.session.session_id, won)
        return won

    def _won_now(self) -> Controller | None:
        """Our election if it was won by the current session (an expired one's is void)."""
        if self._won is None or self._won[0] != self.session.session_id:
            return None
        return self._won[1]

    def _read_epoch(self) -> tuple[int, int]:
        """(controller epoch, znode version); creates the counter at 0 if absent."""
        client = self.session.client
        try:
            data, stat = client.retry(client.get, paths.CONTROLLER_EPOCH)
        except NoNodeError:
            with contextlib.suppress(NodeExistsError):  # another broker was first
                client.create(paths.CONTROLLER_EPOCH, encode_controller_epoch(0))
            data, stat = client.retry(client.get, paths.CONTROLLER_EPOCH)
        return decode_controller_epoch(data), stat.version

    def current(self) -> Controller | None:
        """The controller now (broker id and epoch), or None if there is none."""
        client = self.session.client
        with translate("reading the controller"):
            try:
                data, _ = client.retry(client.get, paths.CONTROLLER)
            except NoNodeError:
                return None
            broker_id = decode_controller(data).broker_id
            epoch_data, stat = client.retry(client.get, paths.CONTROLLER_EPOCH)
        return Controller(broker_id, decode_controller_epoch(epoch_data), stat.version)

    @property
    def is_controller(self) -> bool:
        return self._won_now() is not None

    # ---- taking part -----------------------------------------------------------------------

    def start(self) -> None:
        """Watch /controller: elect now if it is vacant, and again whenever it is deleted."""
        with self._lock:
            if not self._running:
                self._running = True
                self._watch = watch_data(self.session, paths.CONTROLLER, self._on_controller)

    def stop(self) -> None:
        """Stop taking part; resign (delete /controller) if this broker is controller."""
        with self._lock:
            self._running = False
            if self._watch is not None:
                self._watch.cancel()
                self._watch = None
            won, self._won = self._won_now(), None
            if won is None:
                return
            client = self.session.client
            with translate(f"broker {self.broker_id} resigning as controller"):
                try:
                    _, stat = client.get(paths.CONTROLLER)
                    if stat.ephemeralOwner == self.session.session_id:
                        client.delete(paths.CONTROLLER, version=stat.version)
                except NoNodeError:
                    pass
        log.info("broker %d resigned as controller (epoch %d)", self.broker_id, won.epoch)

    def _on_controller(self, data: bytes | None, stat: ZnodeStat | None) -> None:
        with self._lock:
            if not self._running:
                return
            if data is None or stat is None:
                self._won = None
                self.elect()  # the watch fires again with the winner's znode
                return
            if stat.ephemeralOwner == self.session.session_id:
                with translate("reading the controller epoch"):
                    controller = self._adopt()
            else:
                self._won = None
                try:
                    broker_id = decode_controller(data).broker_id
                except CodecError:
                    log.exception("unreadable /controller; waiting for the next one")
                    return
                with translate("reading the controller epoch"):
                    epoch_data, epoch_stat = self.session.client.retry(
                        self.session.client.get, paths.CONTROLLER_EPOCH
                    )
                controller = Controller(
                    broker_id, decode_controller_epoch(epoch_data), epoch_stat.version
                )
            key = (stat.czxid, controller.epoch)
            if key == self._reported:
                return
            self._reported = key
            log.info(
                "broker %d sees controller %d (epoch %d)",
                self.broker_id,
                controller.broker_id,
                controller.epoch,
            )
            self._report(controller)

    def _report(self, controller: Controller | None) -> None:
        # called under the lock, so reports reach on_change in the order they were decided
        if self.on_change is None:
            return
        try:
            self.on_change(controller)
        except Exception:
            log.exception("broker %d: controller change callback failed", self.broker_id)

    def _on_session(self, event: SessionEvent) -> None:
        if event is not SessionEvent.EXPIRED:
            return
        with self._lock:
            if self._won is None or self._won_now() is not None:
                return  # not controller, or already elected again in the new session
            (_, won), self._won = self._won, None
            log.warning(
                "broker %d is no longer controller (epoch %d): its session expired",
                self.broker_id,
                won.epoch,
            )
            self._report(None)
