"""What a handler is given: the request context (who asks, on which listener) and the services
it may call (the domain objects of this broker, never the broker itself)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from strom.protocol.frames import RequestHeader

if TYPE_CHECKING:
    from strom.broker.config import BrokerConfig
    from strom.broker.fetch_sessions import FetchSessionCache
    from strom.broker.replica_manager import ReplicaManager
    from strom.broker.txn_markers import LocalMarkerWriter
    from strom.cluster.controller import LocalController
    from strom.cluster.metadata import MetadataImage
    from strom.coordinator.group import GroupCoordinator
    from strom.coordinator.txn.coordinator import TransactionCoordinator
    from strom.coordinator.txn.producer_ids import ProducerIdManager
    from strom.storage.manager import LogManager

ANONYMOUS = "User:ANONYMOUS"


@dataclass(slots=True)
class RequestContext:
    """One request: its header, the listener and client it came from, and the principal
    (ANONYMOUS until authentication exists)."""

    header: RequestHeader
    listener: str
    client_host: str
    client_port: int
    connection_id: int
    principal: str = ANONYMOUS

    @property
    def client_id(self) -> str:
        return self.header.client_id or ""


@dataclass
class Services:
    """The domain objects handlers call; built once by the broker."""

    node_id: int
    config: BrokerConfig
    logs: LogManager  # topic configs (DescribeConfigs/AlterConfigs), DescribeLogDirs
    controller: LocalController
    replica_manager: ReplicaManager
    group_coordinator: GroupCoordinator
    producer_ids: ProducerIdManager
    fetch_sessions: FetchSessionCache
    txn_coordinator: TransactionCoordinator
    txn_markers: LocalMarkerWriter
    #: create __transaction_state (in the background) if it does not exist yet
    start_transactions: Callable[[], None]
    supported_versions: Callable[[], dict[int, tuple[int, int]]] = field(default=dict)

    @property
    def image(self) -> MetadataImage:
        return self.controller.image
