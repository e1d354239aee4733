"""The cluster id in /cluster/id: created once by the first broker, read by every other."""

from __future__ import annotations

import logging
import uuid

from kazoo.exceptions import NodeExistsError, NoNodeError

from strom.cluster.coordination import paths
from strom.cluster.coordination.codec import decode_cluster_id, encode_cluster_id
from strom.cluster.coordination.errors import translate
from strom.cluster.coordination.session import ZkSession
from strom.cluster.metadata import topic_id_str

log = logging.getLogger(__name__)


def new_cluster_id() -> str:
    """A random uuid as Kafka writes one: 22 characters of url-safe base64, no padding."""
    return topic_id_str(uuid.uuid4().bytes)


def get_or_create_cluster_id(session: ZkSession, proposed: str | None = None) -> str:
    """The cluster's id; if it has none yet, `proposed` (or a new random one) becomes it."""
    client = session.client
    with translate("reading the cluster id"):
        try:
            data, _ = client.retry(client.get, paths.CLUSTER_ID)
            return decode_cluster_id(data)
        except NoNodeError:
            pass
        candidate = proposed or new_cluster_id()
        try:
            client.create(paths.CLUSTER_ID, encode_cluster_id(candidate), makepath=True)
            log.info("created cluster id %s", candidate)
            return candidate
        except NodeExistsError:
            data, _ = client.retry(client.get, paths.CLUSTER_ID)  # another broker was first
            return decode_cluster_id(data)
