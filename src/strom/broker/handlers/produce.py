"""Produce: append each partition's batches; acks=0 requests get no response."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from strom.broker.replica_manager import AppendWait
from strom.cluster.metadata import INTERNAL_TOPICS
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.messages.produce import ProduceRequest, ProduceResponse
from strom.protocol.records import BatchView

if TYPE_CHECKING:
    from strom.broker.context import RequestContext, Services

log = logging.getLogger(__name__)

PartResp = ProduceResponse.PartitionProduceResponse
TopicResp = ProduceResponse.TopicProduceResponse


def _error(index: int, code: ErrorCode, message: str | None = None) -> PartResp:
    return PartResp(index=index, error_code=code, base_offset=-1, error_message=message)


#: verification errors a producer retries, as NOT_ENOUGH_REPLICAS (Kafka's mapping: every
#: client knows that one as retriable)
_RETRY_VERIFICATION = {
    ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_COORDINATOR,
    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    ErrorCode.CONCURRENT_TRANSACTIONS,
}


def _verify_transaction(services: Services, txn_id: str | None, topic: str, p: object) -> None:
    """A transactional batch is appended only if its producer's ongoing transaction holds
    the partition (KIP-890): a late or stray batch cannot open a transaction nobody ends."""
    batch = BatchView(p.records)  # type: ignore[attr-defined]
    if not batch.is_transactional:
        return
    if txn_id is None:
        raise KafkaError(
            "a transactional batch without a transactional id", ErrorCode.INVALID_TXN_STATE
        )
    tp = (topic, p.index)  # type: ignore[attr-defined]
    error = services.txn_coordinator.verify_partitions(
        txn_id, batch.producer_id, batch.producer_epoch, [tp]
    )[tp]
    if error == ErrorCode.NONE:
        return
    if error in _RETRY_VERIFICATION:
        raise KafkaError("the transaction cannot be verified yet", ErrorCode.NOT_ENOUGH_REPLICAS)
    if error == ErrorCode.PRODUCER_FENCED:
        raise KafkaError("the producer epoch is not current", ErrorCode.INVALID_PRODUCER_EPOCH)
    raise KafkaError(f"the partition is not in the transaction of {txn_id}", error)


async def handle(
    services: Services, ctx: RequestContext, request: ProduceRequest
) -> ProduceResponse | None:
    acks = request.acks
    rm = services.replica_manager
    await rm.ready((t.name, p.index) for t in request.topic_data for p in t.partition_data)
    woken = rm.purgatory.woken
    responses = []
    waits: dict[tuple[str, int], AppendWait] = {}
    answers: dict[tuple[str, int], PartResp] = {}
    for topic in request.topic_data:
        parts = []
        for p in topic.partition_data:
            if acks not in (0, 1, -1):
                parts.append(_error(p.index, ErrorCode.INVALID_REQUIRED_ACKS))
                continue
            try:
                if topic.name in INTERNAL_TOPICS:
                    raise KafkaError(
                        f"Cannot append to internal topic {topic.name}",
                        ErrorCode.INVALID_TOPIC_EXCEPTION,
                    )
                if p.records is None or len(p.records) == 0:
                    raise KafkaError("no record data", ErrorCode.CORRUPT_MESSAGE)
                if len(p.records) <= 16:
                    raise KafkaError(
                        "record data shorter than a batch header", ErrorCode.CORRUPT_MESSAGE
                    )
                if ctx.header.api_version < 3 and p.records[16] != 2:
                    raise KafkaError("message format before v2", ErrorCode.UNSUPPORTED_VERSION)
                _verify_transaction(services, request.transactional_id, topic.name, p)
                outcome = rm.append(topic.name, p.index, p.records, acks)
            except KafkaError as e:
                if e.code not in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,):
                    log.info(
                        "produce to %s-%d from %s refused: %s",
                        topic.name,
                        p.index,
                        ctx.client_id,
                        e,
                    )
                parts.append(_error(p.index, e.code, e.message))
                continue
            answer = PartResp(
                index=p.index,
                error_code=0,
                base_offset=outcome.base_offset,
                log_append_time_ms=outcome.log_append_time,
                log_start_offset=outcome.log_start_offset,
            )
            parts.append(answer)
            if acks == -1:
                tp = (topic.name, p.index)
                waits[tp] = AppendWait(rm.get(*tp), outcome.last_offset + 1)
                answers[tp] = answer
        responses.append(TopicResp(name=topic.name, partition_responses=parts))
    if rm.purgatory.woken != woken:
        # the appends woke parked fetches: they answer (next loop iteration) before this
        # producer's acknowledgement is encoded and sent
        await asyncio.sleep(0)
    if waits:
        # acks=all: answered once the ISR has every partition's records (or the time is up)
        for tp, code in (await rm.wait_for_acks(waits, request.timeout_ms / 1000)).items():
            if code != ErrorCode.NONE:
                answer = answers[tp]
                answer.error_code = code
                answer.base_offset = -1
                answer.log_append_time_ms = -1
    if acks == 0:
        failed = [p for t in responses for p in t.partition_responses if p.error_code]
        if failed:
            # as Kafka does: closing the connection is how an acks=0 producer learns of it
            raise KafkaError(
                f"acks=0 produce failed for {len(failed)} partition(s)",
                ErrorCode(failed[0].error_code),
            )
        return None
    return ProduceResponse(responses=responses)
