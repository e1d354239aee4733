"""Topics in ZooKeeper: replica assignments, partition states (compare-and-set), deletion."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from kazoo.client import TransactionRequest
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, NotEmptyError
from kazoo.protocol.states import ZnodeStat

from strom.cluster.coordination import paths
from strom.cluster.coordination.codec import (
    PartitionState,
    TopicAssignment,
    decode_partition_state,
    decode_topic,
    encode_partition_state,
    encode_topic,
)
from strom.cluster.coordination.controller_election import Controller
from strom.cluster.coordination.errors import (
    CodecError,
    ControllerMovedError,
    CoordinationError,
    NoSuchTopicError,
    StaleStateError,
    TopicExistsError,
    first_error,
    translate,
)
from strom.cluster.coordination.session import ZkSession
from strom.cluster.coordination.watches import Watch, watch_children, watch_data

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
T = TypeVar("T")

_OPS_PER_TRANSACTION = 1000  # keeps a multi request well under ZooKeeper's 1 MiB jute.maxbuffer


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    """A znode's decoded value and its version (the next compare-and-set expects it)."""

    value: T
    zk_version: int


class TopicStore:
    """Reads and writes /brokers/topics and /admin/delete_topics. Writes may be fenced by a
    Controller: they then fail with ControllerMovedError, changing nothing, once another
    controller has been elected (the transaction checks /controller_epoch's version)."""

    def __init__(self, session: ZkSession) -> None:
        self.session = session

    # ---- transactions --------------------------------------------------------------------

    def _transaction(self, fence: Controller | None) -> TransactionRequest:
        txn = self.session.client.transaction()
        if fence is not None:
            txn.check(paths.CONTROLLER_EPOCH, fence.epoch_zk_version)
        return txn

    def _commit(self, txn: TransactionRequest, fence: Controller | None, what: str) -> list:
        """Commit; raise ControllerMovedError if the fence failed, the failing op's kazoo error
        otherwise; return the results of the ops after the fence."""
        results = txn.commit()
        if fence is not None:
            if isinstance(results[0], BadVersionError | NoNodeError):
                raise ControllerMovedError(
                    f"{what}: controller epoch {fence.epoch} of broker {fence.broker_id} is "
                    "no longer current"
                )
            results = results[1:]
        error = first_error(results)
        if error is not None:
            raise error
        return results

    # ---- assignments ---------------------------------------------------------------------

    def create_topic(
        self, name: str, assignment: TopicAssignment, fence: Controller | None = None
    ) -> None:
        """Create /brokers/topics/T; TopicExistsError if it exists. (Write the topic's config
        first, as Kafka does, so a controller never sees a topic without it.)"""
        path = paths.topic(name)
        with translate(f"creating topic {name}"):
            txn = self._transaction(fence)
            txn.create(path, encode_topic(assignment))
            try:
                self._commit(txn, fence, f"creating topic {name}")
            except NodeExistsError:
                raise TopicExistsError(f"topic {name!r} already exists") from None
        log.info("created topic %s with %d partitions", name, len(assignment.partitions))

    def set_assignment(
        self,
        name: str,
        assignment: TopicAssignment,
        expected_zk_version: int,
        fence: Controller | None = None,
    ) -> int:
        """Replace a topic's assignment (new partitions, reassignment) if its znode is still at
        `expected_zk_version`; return the new version. StaleStateError otherwise."""
        what = f"updating the assignment of topic {name}"
        with translate(what):
            txn = self._transaction(fence)
            txn.set_data(paths.topic(name), encode_topic(assignment), version=expected_zk_version)
            try:
                (stat,) = self._commit(txn, fence, what)
            except BadVersionError:
                raise StaleStateError(
                    f"{what}: expected zk version {expected_zk_version}, "
                    f"found {self._version_of(paths.topic(name))}"
                ) from None
            except NoNodeError:
                raise NoSuchTopicError(f"{what}: no such topic") from None
        return stat.version

    def assignment(self, name: str) -> Versioned[TopicAssignment] | None:
        """The topic's assignment and its znode version, or None if there is no such topic."""
        client = self.session.client
        with translate(f"reading topic {name}"):
            try:
                data, stat = client.retry(client.get, paths.topic(name))
            except NoNodeError:
                return None
        return Versioned(decode_topic(name, data), stat.version)

    def topic_names(self) -> frozenset[str]:
        client = self.session.client
        with translate("listing topics"):
            return frozenset(client.retry(client.get_children, paths.TOPICS))

    def watch_topics(self, callback: Callable[[frozenset[str]], None]) -> Watch:
        """Call `callback(all topic names)` now and whenever a topic is created or deleted."""
        return watch_children(self.session, paths.TOPICS, lambda names: callback(frozenset(names)))

    def watch_assignment(
        self, name: str, callback: Callable[[Versioned[TopicAssignment] | None], None]
    ) -> Watch:
        """Call `callback(assignment)` now and whenever the topic's assignment changes (None:
        the topic does not exist). An unreadable assignment is logged and skipped."""

        def on_data(data: bytes | None, stat: ZnodeStat | None) -> None:
            if data is None or stat is None:
                callback(None)
                return
            try:
                value = decode_topic(name, data)
            except CodecError:
                log.exception("skipping an unreadable assignment of topic %s", name)
                return
            callback(Versioned(value, stat.version))

        return watch_data(self.session, paths.topic(name), on_data)

    # ---- partition state -----------------------------------------------------------------

    def create_partition_state(
        self, tp: TopicPartition, state: PartitionState, fence: Controller | None = None
    ) -> int:
        """Create the partition's state znode and return its zk version (0). NoSuchTopicError
        if the topic does not exist; StaleStateError if the state already exists."""
        topic, partition = tp
        what = f"creating the state of {topic}-{partition}"
        client = self.session.client
        with translate(what):
            for parent in (paths.partitions(topic), paths.partition(topic, partition)):
                try:
                    client.create(parent)
                except NodeExistsError:
                    pass
                except NoNodeError:
                    raise NoSuchTopicError(f"{what}: no such topic") from None
            txn = self._transaction(fence)
            txn.create(paths.partition_state(topic, partition), encode_partition_state(state))
            try:
                self._commit(txn, fence, what)
            except NodeExistsError:
                raise StaleStateError(f"{what}: it exists already") from None
            except NoNodeError:
                raise NoSuchTopicError(f"{what}: the topic was deleted meanwhile") from None
        return 0

    def partition_state(self, tp: TopicPartition) -> Versioned[PartitionState] | None:
        """The partition's state and zk version (its partition epoch), or None if absent."""
        topic, partition = tp
        path = paths.partition_state(topic, partition)
        client = self.session.client
        with translate(f"reading the state of {topic}-{partition}"):
            try:
                data, stat = client.retry(client.get, path)
            except NoNodeError:
                return None
        return Versioned(decode_partition_state(path, data), stat.version)

    def update_partition_state(
        self,
        tp: TopicPartition,
        state: PartitionState,
        expected_zk_version: int,
        fence: Controller | None = None,
    ) -> int:
        """Write the partition's state if its znode is still at `expected_zk_version`, and
        return the new version (the new partition epoch). StaleStateError, writing nothing,
        if someone changed it first or it does not exist."""
        topic, partition = tp
        path = paths.partition_state(topic, partition)
        what = f"updating the state of {topic}-{partition}"
        with translate(what):
            txn = self._transaction(fence)
            txn.set_data(path, encode_partition_state(state), version=expected_zk_version)
            try:
                (stat,) = self._commit(txn, fence, what)
            except BadVersionError:
                raise StaleStateError(
                    f"{what}: expected zk version {expected_zk_version}, "
                    f"found {self._version_of(path)}"
                ) from None
            except NoNodeError:
                raise StaleStateError(f"{what}: there is no state to update") from None
        return stat.version

    def _version_of(self, path: str) -> int | str:
        try:
            stat = self.session.client.exists(path)
        except Exception:  # only for an error message
            return "unknown"
        return stat.version if stat is not None else "none (deleted)"

    # ---- deletion ------------------------------------------------------------------------

    def mark_for_deletion(self, name: str) -> bool:
        """Ask the controller to delete the topic (/admin/delete_topics/T). True if newly
        marked, False if it already was; NoSuchTopicError if there is no such topic."""
        client = self.session.client
        with translate(f"marking topic {name} for deletion"):
            if client.retry(client.exists, paths.topic(name)) is None:
                raise NoSuchTopicError(f"cannot delete topic {name!r}: no such topic")
            try:
                client.create(paths.delete_topic(name))
            except NodeExistsError:
                return False
        log.info("marked topic %s for deletion", name)
        return True

    def topics_marked_for_deletion(self) -> frozenset[str]:
        client = self.session.client
        with translate("listing topics marked for deletion"):
            return frozenset(client.retry(client.get_children, paths.DELETE_TOPICS))

    def watch_deletions(self, callback: Callable[[frozenset[str]], None]) -> Watch:
        """Call `callback(topics marked for deletion)` now and whenever the set changes."""
        return watch_children(
            self.session, paths.DELETE_TOPICS, lambda names: callback(frozenset(names))
        )

    def delete_topic(self, name: str, fence: Controller | None = None) -> None:
        """Delete the topic's znodes (partition states, assignment, config), its deletion mark
        last. Deleting a topic that is gone is not an error."""
        what = f"deleting topic {name}"
        client = self.session.client
        with translate(what):
            for _ in range(10):
                doomed = self._tree(paths.topic(name))
                for extra in (paths.topic_config(name), paths.delete_topic(name)):
                    if client.retry(client.exists, extra) is not None:
                        doomed.append(extra)
                try:
                    self._delete_all(doomed, fence, what)
                except (NotEmptyError, NoNodeError):
                    continue  # changed meanwhile (a child created, a znode deleted): look again
                log.info("deleted topic %s", name)
                return
        raise CoordinationError(f"{what}: the topic kept changing meanwhile, gave up")

    def _tree(self, root: str) -> list[str]:
        """`root` and everything under it, children before parents."""
        client = self.session.client
        try:
            children = client.retry(client.get_children, root)
        except NoNodeError:
            return []
        out: list[str] = []
        for child in children:
            out += self._tree(f"{root}/{child}")
        return [*out, root]

    def _delete_all(self, doomed: list[str], fence: Controller | None, what: str) -> None:
        """Delete znodes in order, in fenced transactions of bounded size."""
        for start in range(0, len(doomed), _OPS_PER_TRANSACTION):
            txn = self._transaction(fence)
            for path in doomed[start : start + _OPS_PER_TRANSACTION]:
                txn.delete(path)
            self._commit(txn, fence, what)
