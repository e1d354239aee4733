"""Transactions: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit, WriteTxnMarkers,
ListTransactions, DescribeTransactions and DescribeProducers (the rules live in
strom.coordinator.txn)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom.coordinator.group import OFFSETS_TOPIC, OffsetToCommit
from strom.coordinator.txn.records import TxnState
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.messages.add_offsets_to_txn import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
)
from strom.protocol.messages.add_partitions_to_txn import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
)
from strom.protocol.messages.describe_producers import (
    DescribeProducersRequest,
    DescribeProducersResponse,
)
from strom.protocol.messages.describe_transactions import (
    DescribeTransactionsRequest,
    DescribeTransactionsResponse,
)
from strom.protocol.messages.end_txn import EndTxnRequest, EndTxnResponse
from strom.protocol.messages.list_transactions import (
    ListTransactionsRequest,
    ListTransactionsResponse,
)
from strom.protocol.messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)
from strom.protocol.messages.write_txn_markers import (
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

TopicPartition = tuple[str, int]
R = AddPartitionsToTxnResponse


async def _add_partitions(
    services: Services,
    txn_id: str,
    producer_id: int,
    producer_epoch: int,
    topics: list,
    verify_only: bool,
) -> dict[TopicPartition, ErrorCode]:
    """Every requested partition's error: unknown ones UNKNOWN_TOPIC_OR_PARTITION and the rest
    OPERATION_NOT_ATTEMPTED when any is unknown (Kafka's rule), else the coordinator's."""
    image = services.image
    wanted = [(t.name, p) for t in topics for p in t.partitions]
    unknown = {
        tp
        for tp in wanted
        if (meta := image.topics.get(tp[0])) is None or not 0 <= tp[1] < len(meta.partitions)
    }
    if unknown:
        return {
            tp: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            if tp in unknown
            else ErrorCode.OPERATION_NOT_ATTEMPTED
            for tp in wanted
        }
    txn = services.txn_coordinator
    if verify_only:
        return txn.verify_partitions(txn_id, producer_id, producer_epoch, wanted)
    error = await txn.add_partitions(txn_id, producer_id, producer_epoch, wanted).wait()
    return dict.fromkeys(wanted, error)


def _topic_results(results: dict[TopicPartition, ErrorCode]) -> list:
    by_topic: dict[str, list] = {}
    for (topic, p), code in results.items():
        by_topic.setdefault(topic, []).append(
            R.AddPartitionsToTxnPartitionResult(partition_index=p, partition_error_code=code)
        )
    return [
        R.AddPartitionsToTxnTopicResult(name=name, results_by_partition=parts)
        for name, parts in by_topic.items()
    ]


async def handle_add_partitions_to_txn(
    services: Services, ctx: RequestContext, request: AddPartitionsToTxnRequest
) -> AddPartitionsToTxnResponse:
    if ctx.header.api_version < 4:
        results = await _add_partitions(
            services,
            request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            request.v3_and_below_topics,
            False,
        )
        return R(results_by_topic_v3_and_below=_topic_results(results))
    # v4+: partition leaders (brokers) add or verify several transactions at once (KIP-890)
    out = []
    for t in request.transactions:
        results = await _add_partitions(
            services, t.transactional_id, t.producer_id, t.producer_epoch, t.topics, t.verify_only
        )
        out.append(
            R.AddPartitionsToTxnResult(
                transactional_id=t.transactional_id, topic_results=_topic_results(results)
            )
        )
    return R(results_by_transaction=out)


async def handle_add_offsets_to_txn(
    services: Services, ctx: RequestContext, request: AddOffsetsToTxnRequest
) -> AddOffsetsToTxnResponse:
    """The group's __consumer_offsets partition joins the transaction."""
    partition = services.group_coordinator.partition_for(request.group_id)
    error = await services.txn_coordinator.add_partitions(
        request.transactional_id,
        request.producer_id,
        request.producer_epoch,
        [(OFFSETS_TOPIC, partition)],
    ).wait()
    return AddOffsetsToTxnResponse(error_code=error)


async def handle_end_txn(
    services: Services, ctx: RequestContext, request: EndTxnRequest
) -> EndTxnResponse:
    error = await services.txn_coordinator.end_txn(
        request.transactional_id, request.producer_id, request.producer_epoch, request.committed
    ).wait()
    return EndTxnResponse(error_code=error)


async def handle_txn_offset_commit(
    services: Services, ctx: RequestContext, request: TxnOffsetCommitRequest
) -> TxnOffsetCommitResponse:
    version = ctx.header.api_version
    topics = [
        (
            t.name,
            [
                OffsetToCommit(
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch if version >= 2 else -1,
                    p.committed_metadata,
                )
                for p in t.partitions
            ],
        )
        for t in request.topics
    ]
    results = await services.group_coordinator.commit_txn_offsets(
        request.group_id,
        request.producer_id,
        request.producer_epoch,
        request.generation_id if version >= 3 else -1,
        request.member_id if version >= 3 else "",
        request.group_instance_id if version >= 3 else None,
        topics,
    ).wait()
    Topic = TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
    Part = TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition
    return TxnOffsetCommitResponse(
        topics=[
            Topic(name=name, partitions=[Part(partition_index=p, error_code=c) for p, c in parts])
            for name, parts in results
        ]
    )


async def handle_write_txn_markers(
    services: Services, ctx: RequestContext, request: WriteTxnMarkersRequest
) -> WriteTxnMarkersResponse:
    """Markers a transaction coordinator sends to this broker as the partitions' leader."""
    W = WriteTxnMarkersResponse
    out = []
    for marker in request.markers:
        topics = []
        for t in marker.topics:
            parts = []
            for p in t.partition_indexes:
                code = await services.txn_markers.write_local(
                    (t.name, p),
                    marker.producer_id,
                    marker.producer_epoch,
                    marker.transaction_result,
                    marker.coordinator_epoch,
                ).wait()
                parts.append(W.WritableTxnMarkerPartitionResult(partition_index=p, error_code=code))
            topics.append(W.WritableTxnMarkerTopicResult(name=t.name, partitions=parts))
        out.append(W.WritableTxnMarkerResult(producer_id=marker.producer_id, topics=topics))
    return W(markers=out)


async def handle_list_transactions(
    services: Services, ctx: RequestContext, request: ListTransactionsRequest
) -> ListTransactionsResponse:
    txn = services.txn_coordinator
    states = {s.lower() for s in request.state_filters}
    pids = set(request.producer_id_filters)
    min_ms = request.duration_filter
    now = txn.now_ms()
    listed = []
    for meta in txn.txns.values():
        if states and meta.state.label.lower() not in states:
            continue
        if pids and meta.producer_id not in pids:
            continue
        if min_ms >= 0 and (meta.state != TxnState.ONGOING or now - meta.start_ms < min_ms):
            continue
        listed.append(
            ListTransactionsResponse.TransactionState(
                transactional_id=meta.transactional_id,
                producer_id=meta.producer_id,
                transaction_state=meta.state.label,
            )
        )
    return ListTransactionsResponse(
        error_code=ErrorCode.NONE if txn.started else ErrorCode.COORDINATOR_NOT_AVAILABLE,
        unknown_state_filters=[s for s in request.state_filters if s.lower() not in _STATE_LABELS],
        transaction_states=listed,
    )


_STATE_LABELS = {s.label.lower() for s in TxnState}


async def handle_describe_transactions(
    services: Services, ctx: RequestContext, request: DescribeTransactionsRequest
) -> DescribeTransactionsResponse:
    txn = services.txn_coordinator
    D = DescribeTransactionsResponse
    out = []
    for txn_id in request.transactional_ids:
        error = txn.check_available(txn_id)
        meta = txn.txns.get(txn_id)
        if error == ErrorCode.NONE and meta is None:
            error = ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
        if error != ErrorCode.NONE or meta is None:
            out.append(D.TransactionState(error_code=error, transactional_id=txn_id))
            continue
        by_topic: dict[str, list[int]] = {}
        for topic, p in sorted(meta.partitions):
            by_topic.setdefault(topic, []).append(p)
        out.append(
            D.TransactionState(
                error_code=ErrorCode.NONE,
                transactional_id=txn_id,
                transaction_state=meta.state.label,
                transaction_timeout_ms=meta.timeout_ms,
                transaction_start_time_ms=meta.start_ms,
                producer_id=meta.producer_id,
                producer_epoch=meta.producer_epoch,
                topics=[D.TopicData(topic=t, partitions=ps) for t, ps in by_topic.items()],
            )
        )
    return D(transaction_states=out)


async def handle_describe_producers(
    services: Services, ctx: RequestContext, request: DescribeProducersRequest
) -> DescribeProducersResponse:
    """The producers a partition led here remembers (kafka-transactions.sh describe-producers
    finds hanging transactions with it)."""
    D = DescribeProducersResponse
    rm = services.replica_manager
    await rm.ready((t.name, p) for t in request.topics for p in t.partition_indexes)
    topics = []
    for t in request.topics:
        parts = []
        for index in t.partition_indexes:
            try:
                producers = rm.leader(t.name, index).log.producers.producers
            except KafkaError as e:
                parts.append(
                    D.PartitionResponse(
                        partition_index=index, error_code=e.code, error_message=e.message
                    )
                )
                continue
            parts.append(
                D.PartitionResponse(
                    partition_index=index,
                    active_producers=[
                        D.ProducerState(
                            producer_id=pid,
                            producer_epoch=e.epoch,
                            last_sequence=e.last_seq,
                            last_timestamp=e.last_timestamp,
                            coordinator_epoch=e.coordinator_epoch,
                            current_txn_start_offset=e.current_txn_first_offset,
                        )
                        for pid, e in sorted(producers.items())
                    ],
                )
            )
        topics.append(D.TopicResponse(name=t.name, partitions=parts))
    return D(topics=topics)
