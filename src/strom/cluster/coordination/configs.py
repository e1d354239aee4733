"""Config overrides of topics and brokers (/config/...) and their change notifications."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from kazoo.exceptions import NodeExistsError, NoNodeError

from strom.cluster.coordination import paths
from strom.cluster.coordination.codec import (
    ConfigChange,
    decode_config,
    decode_config_change,
    encode_config,
    encode_config_change,
)
from strom.cluster.coordination.errors import CodecError, CoordinationError, translate
from strom.cluster.coordination.session import ZkSession
from strom.cluster.coordination.watches import Watch, watch_children

log = logging.getLogger(__name__)


class ConfigStore:
    """Reads and writes config overrides. Each write also creates a sequential notification
    /config/changes/config_change_N in the same transaction; brokers watch those to reload
    the entity's config."""

    def __init__(self, session: ZkSession) -> None:
        self.session = session

    def topic_config(self, name: str) -> dict[str, str]:
        """The topic's overrides ({} if it has none)."""
        return self._read(paths.topic_config(name))

    def broker_config(self, broker_id: int | None) -> dict[str, str]:
        """A broker's overrides, or (None) the cluster-wide defaults ({} if none)."""
        return self._read(paths.broker_config(broker_id))

    def set_topic_config(self, name: str, config: Mapping[str, str]) -> int:
        """Replace the topic's overrides; return the notification's sequence number."""
        return self._write(paths.TOPIC_CONFIG, paths.check_topic(name), config)

    def set_broker_config(self, broker_id: int | None, config: Mapping[str, str]) -> int:
        """Replace a broker's (None: the default) overrides; return the notification's number."""
        name = paths.DEFAULT_BROKER if broker_id is None else str(broker_id)
        return self._write(paths.BROKER_CONFIG, name, config)

    def _read(self, path: str) -> dict[str, str]:
        client = self.session.client
        with translate(f"reading {path}"):
            try:
                data, _ = client.retry(client.get, path)
            except NoNodeError:
                return {}
        return decode_config(path, data)

    def _write(self, entity_type: str, entity_name: str, config: Mapping[str, str]) -> int:
        path = paths.config_entity(entity_type, entity_name)
        client = self.session.client
        with translate(f"writing {path}"):
            for _ in range(10):
                txn = client.transaction()
                if client.exists(path) is None:
                    txn.create(path, encode_config(config))
                else:
                    txn.set_data(path, encode_config(config))
                txn.create(
                    paths.config_change_prefix(),
                    encode_config_change(entity_type, entity_name),
                    sequence=True,
                )
                results = txn.commit()
                if isinstance(results[0], NodeExistsError | NoNodeError):
                    continue  # created or deleted meanwhile: try again
                for result in results:
                    if isinstance(result, Exception):
                        raise result
                created = results[1].rsplit("/", 1)[-1]
                sequence = paths.sequence_number(created, paths.CONFIG_CHANGE_PREFIX)
                if sequence is None:
                    raise CoordinationError(f"writing {path}: odd notification name {created!r}")
                log.info("wrote %s (%d keys), change notification %d", path, len(config), sequence)
                return sequence
        raise CoordinationError(f"writing {path}: it kept changing meanwhile, gave up")

    # ---- notifications -------------------------------------------------------------------

    def changes(self, after: int = -1) -> list[ConfigChange]:
        """The notifications numbered above `after`, oldest first (purged ones are gone)."""
        client = self.session.client
        with translate("listing config changes"):
            children = client.retry(client.get_children, paths.CONFIG_CHANGES)
        return self._read_changes(children, after)

    def _read_changes(self, children: list[str], after: int) -> list[ConfigChange]:
        numbered = []
        for child in children:
            sequence = paths.sequence_number(child, paths.CONFIG_CHANGE_PREFIX)
            if sequence is not None and sequence > after:
                numbered.append((sequence, child))
        client = self.session.client
        out = []
        for sequence, child in sorted(numbered):
            path = f"{paths.CONFIG_CHANGES}/{child}"
            with translate(f"reading {path}"):
                try:
                    data, _ = client.retry(client.get, path)
                except NoNodeError:
                    continue  # purged meanwhile
            try:
                out.append(decode_config_change(sequence, path, data))
            except CodecError:
                log.exception("skipping an unreadable config change notification")
        return out

    def watch_changes(self, callback: Callable[[ConfigChange], None], after: int = -1) -> Watch:
        """Call `callback(change)` for each notification numbered above `after`, in order:
        those that exist now, then each new one as it is created."""
        last = [after]

        def on_children(children: list[str]) -> None:
            for change in self._read_changes(children, last[0]):
                last[0] = change.sequence
                try:
                    callback(change)
                except Exception:
                    log.exception("config change callback failed on %s", change)

        return watch_children(self.session, paths.CONFIG_CHANGES, on_children)

    def purge_changes(self, up_to: int) -> int:
        """Delete the notifications numbered up to `up_to`; return how many were deleted."""
        client = self.session.client
        deleted = 0
        with translate("purging config changes"):
            for child in client.retry(client.get_children, paths.CONFIG_CHANGES):
                sequence = paths.sequence_number(child, paths.CONFIG_CHANGE_PREFIX)
                if sequence is not None and sequence <= up_to:
                    try:
                        client.delete(f"{paths.CONFIG_CHANGES}/{child}")
                        deleted += 1
                    except NoNodeError:
                        pass
        return deleted
