"""Writing transaction markers on this broker: the commit or abort control batch that ends a
producer's transaction in each partition it touched. The transaction coordinator hands a
`MarkerJob` to a marker writer; on one node every partition is local. A cluster's writer sends
WriteTxnMarkers to the partitions' leaders instead, which end up in `write_local` too."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from strom.coordinator.deferred import Deferred
from strom.coordinator.group import OFFSETS_TOPIC
from strom.coordinator.txn.coordinator import MarkerJob
from strom.coordinator.writer import TxnProducer, marker_batch
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.log import AppendOrigin

if TYPE_CHECKING:
    from strom.broker.replica_manager import ReplicaManager
    from strom.coordinator.group import GroupCoordinator

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


class LocalMarkerWriter:
    """Appends markers to partitions led here: data partitions through the replica manager,
    __consumer_offsets partitions through the group coordinator (whose pending transactional
    offsets the marker commits or drops)."""

    def __init__(self, replicas: ReplicaManager, groups: GroupCoordinator) -> None:
        self.replicas = replicas
        self.groups = groups

    def __call__(self, job: MarkerJob) -> Deferred[ErrorCode]:
        results = [
            self.write_local(
                tp, job.producer_id, job.producer_epoch, job.commit, job.coordinator_epoch
            )
            for tp in sorted(job.partitions)
        ]

        def outcome(codes: list[ErrorCode]) -> ErrorCode:
            failed = [c for c in codes if c != ErrorCode.NONE]
            return failed[0] if failed else ErrorCode.NONE

        return Deferred.all(results).map(outcome)

    def write_local(
        self,
        tp: TopicPartition,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
    ) -> Deferred[ErrorCode]:
        """One partition's marker. A partition deleted meanwhile needs none (NONE)."""
        topic, index = tp
        marker = TxnProducer(producer_id, producer_epoch)
        if topic == OFFSETS_TOPIC:
            return self.groups.complete_transaction(
                index, producer_id, producer_epoch, commit, coordinator_epoch
            )
        try:
            self.replicas.append(
                topic,
                index,
                marker_batch(marker, commit, coordinator_epoch),
                1,
                AppendOrigin.COORDINATOR,
            )
        except KafkaError as e:
            if e.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                log.info("%s-%d is gone: no marker for producer %d", topic, index, producer_id)
                return Deferred.of(ErrorCode.NONE)
            log.warning(
                "%s-%d: cannot write the marker of producer %d: %s", topic, index, producer_id, e
            )
            return Deferred.of(e.code)
        return Deferred.of(ErrorCode.NONE)
