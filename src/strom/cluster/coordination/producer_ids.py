"""Producer id blocks: each broker takes the next 1000 ids from /latest_producer_id_block."""

from __future__ import annotations

import logging

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from strom.cluster.coordination import paths
from strom.cluster.coordination.codec import (
    ProducerIdBlock,
    decode_producer_id_block,
    encode_producer_id_block,
)
from strom.cluster.coordination.errors import CoordinationError, translate
from strom.cluster.coordination.session import ZkSession

log = logging.getLogger(__name__)

BLOCK_SIZE = 1000  # Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE
MAX_PRODUCER_ID = 2**63 - 1
_ATTEMPTS = 100


def allocate_producer_id_block(
    session: ZkSession, broker_id: int, block_size: int = BLOCK_SIZE
) -> ProducerIdBlock:
    """Claim the block after the last one handed out, with a compare-and-set on the znode's
    version (retried when another broker wins the race), so no two blocks ever overlap."""
    if block_size < 1:
        raise ValueError(f"block size must be positive, got {block_size}")
    client = session.client
    path = paths.LATEST_PRODUCER_ID_BLOCK
    with translate(f"broker {broker_id} allocating a producer id block"):
        for attempt in range(_ATTEMPTS):
            try:
                data, stat = client.retry(client.get, path)
            except NoNodeError:
                data, stat = None, None
            start = decode_producer_id_block(data).block_end + 1 if data else 0
            if start > MAX_PRODUCER_ID - block_size + 1:
                raise CoordinationError(
                    f"producer ids exhausted: the last block ends at {start - 1}"
                )
            block = ProducerIdBlock(broker_id, start, start + block_size - 1)
            try:
                if stat is None:
                    client.create(path, encode_producer_id_block(block), makepath=True)
                else:
                    client.set(path, encode_producer_id_block(block), version=stat.version)
            except (BadVersionError, NodeExistsError, NoNodeError):
                log.debug(
                    "broker %d lost a producer id block race (attempt %d)", broker_id, attempt
                )
                continue
            log.info(
                "broker %d got producer ids %d..%d", broker_id, block.block_start, block.block_end
            )
            return block
    raise CoordinationError(
        f"broker {broker_id}: lost the producer id block race {_ATTEMPTS} times in a row"
    )
