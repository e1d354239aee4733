"""Helpers shared by the storage tests: building batches and reading a log back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from strom.protocol.compression import Compression
from strom.protocol.records import BatchView, build_batch
from strom.storage.log import Log


def make_batch(
    values: Sequence[bytes | None] | int = 1,
    *,
    keys: Sequence[bytes | None] | None = None,
    timestamp: int = 1_000,
    compression: Compression = Compression.NONE,
    producer_id: int = -1,
    base_sequence: int = -1,
    prefix: bytes = b"v",
) -> bytes:
    """One batch; `values` is a list of values or a count of generated ones."""
    if isinstance(values, int):
        values = [prefix + str(i).encode() for i in range(values)]
    if keys is None:
        keys = [b"k" + str(i).encode() for i in range(len(values))]
    return build_batch(
        list(zip(keys, values, strict=True)),
        timestamp=timestamp,
        compression=compression,
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=base_sequence,
    )


def records_of(log: Log, start: int | None = None) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record readable in the log."""
    out = []
    for batch in log.iter_batches(start):
        for r in batch.records():
            out.append((r.offset, r.key, r.value))
    return out


def batches_of(data: bytes) -> list[BatchView]:
    from strom.protocol.records import iter_batches

    return list(iter_batches(data, verify=True))


def offsets(items: Iterable[tuple[int, object, object]]) -> list[int]:
    return [o for o, _k, _v in items]
