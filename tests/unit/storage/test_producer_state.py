"""Idempotent producer state: sequence checks within and across appends, duplicates, epochs."""

from __future__ import annotations

import pytest

from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.log import BatchInfo
from strom.storage.producer_state import DuplicateBatch, ProducerStateManager


def batch(seq: int, n: int = 5, epoch: int = 0, offset: int = 0, pid: int = 7) -> BatchInfo:
    return BatchInfo(offset, offset + n - 1, pid, epoch, seq, seq + n - 1, False, False, 0, n, 100)


def test_several_batches_of_one_append_follow_each_other(tmp_path) -> None:  # noqa: ANN001
    state = ProducerStateManager(str(tmp_path))
    state.update([batch(0)])
    state.check([batch(5, offset=5), batch(10, offset=10)])
    with pytest.raises(KafkaError) as e:
        state.check([batch(5, offset=5), batch(11, offset=10)])
    assert e.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    # a producer the partition has not seen yet is held to its own first batch too
    fresh = ProducerStateManager(str(tmp_path))
    fresh.check([batch(3), batch(8)])
    with pytest.raises(KafkaError):
        fresh.check([batch(3), batch(9)])


def test_duplicates_gaps_and_epochs(tmp_path) -> None:  # noqa: ANN001
    state = ProducerStateManager(str(tmp_path))
    state.update([batch(0), batch(5, offset=5)])
    with pytest.raises(DuplicateBatch) as dup:
        state.check([batch(0, offset=10)])
    assert dup.value.batch.first_offset == 0
    with pytest.raises(KafkaError) as e:
        state.check([batch(11, offset=10)])
    assert e.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    state.update([batch(0, epoch=1, offset=10)])
    with pytest.raises(KafkaError) as e:
        state.check([batch(10, epoch=0, offset=15)])
    assert e.value.code == ErrorCode.INVALID_PRODUCER_EPOCH


def test_snapshot_round_trip(tmp_path) -> None:  # noqa: ANN001
    state = ProducerStateManager(str(tmp_path))
    state.update([batch(0), batch(5, offset=5)])
    state.write_snapshot(10)
    again = ProducerStateManager(str(tmp_path))
    snap = again._read_snapshot(str(tmp_path / f"{10:020d}.snapshot"))
    assert snap is not None
    offset, producers = snap
    assert offset == 10 and producers[7].last_seq == 9 and len(producers[7].batches) == 2
