"""Aborted-transaction indexes: an abort marker records its transaction in its segment's
.txnindex (Kafka's layout), reads find them across segments, they survive a restart, are
rebuilt by the producer-state replay, and go with a truncation."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from strom.protocol.records import build_batch, build_control_batch
from strom.storage.config import LogConfig
from strom.storage.log import AppendOrigin, Log
from strom.storage.txn_index import ENTRY, AbortedTxn

ABORT, COMMIT = 0, 1


def txn(pid: int, seq: int, n: int = 2) -> bytearray:
    records = [(b"k%d" % i, b"x" * 100) for i in range(n)]
    return bytearray(
        build_batch(
            records, producer_id=pid, producer_epoch=0, base_sequence=seq, transactional=True
        )
    )


def end(pid: int, kind: int) -> bytearray:
    return bytearray(build_control_batch(kind, producer_id=pid, producer_epoch=0))


def open_log(path: Path) -> Log:
    lg = Log(str(path), LogConfig.from_props({"segment.bytes": "1024"}))
    lg.load()
    return lg


def fill(lg: Log) -> None:
    """pid 1 aborts [0..1] at 4; pid 2 commits; pid 3 aborts a transaction spanning segments."""
    lg.append(txn(1, 0))  # 0-1
    lg.append(txn(2, 0))  # 2-3
    lg.append(end(1, ABORT), origin=AppendOrigin.COORDINATOR)  # 4
    lg.append(end(2, COMMIT), origin=AppendOrigin.COORDINATOR)  # 5
    lg.append(txn(3, 0))  # 6-7
    for _ in range(6):  # rolls segments meanwhile (1 KiB each)
        lg.append(bytearray(build_batch([(b"p", b"y" * 300)])))  # 8..13
    lg.append(end(3, ABORT), origin=AppendOrigin.COORDINATOR)  # 14


def test_aborts_are_indexed_and_read_back(tmp_path: Path) -> None:
    lg = open_log(tmp_path / "t-0")
    fill(lg)
    assert len(glob.glob(str(tmp_path / "t-0" / "*.log"))) > 2
    assert lg.aborted_transactions(0, 15) == [
        AbortedTxn(1, 0, 4, 2),  # the LSO after the abort: pid 2's transaction still open
        AbortedTxn(3, 6, 14, 15),
    ]
    # a read of offsets [8, 10) meets pid 3's transaction, aborted in a later segment
    assert lg.aborted_transactions(8, 10) == [AbortedTxn(3, 6, 14, 15)]
    assert lg.aborted_transactions(5, 6) == []  # nothing aborted there begins before 6
    files = glob.glob(str(tmp_path / "t-0" / "*.txnindex"))
    assert sum(os.path.getsize(f) for f in files) == 2 * ENTRY.size
    lg.close()
    lg = open_log(tmp_path / "t-0")
    try:
        assert [a.producer_id for a in lg.aborted_transactions(0, 15)] == [1, 3]
    finally:
        lg.close()


def test_replay_rebuilds_and_truncation_drops(tmp_path: Path) -> None:
    d = tmp_path / "t-0"
    lg = open_log(d)
    fill(lg)
    lg.close()
    for f in glob.glob(str(d / "*.txnindex")) + glob.glob(str(d / "*.snapshot")):
        os.unlink(f)  # lost: the producer-state replay from the log start finds the aborts again
    lg = open_log(d)
    try:
        assert [
            (a.producer_id, a.first_offset, a.last_offset) for a in lg.aborted_transactions(0, 15)
        ] == [
            (1, 0, 4),
            (3, 6, 14),
        ]
        lg.truncate_to(10)  # pid 3's abort marker is gone: its transaction is open again
        assert [a.producer_id for a in lg.aborted_transactions(0, 10)] == [1]
        assert lg.producers.first_unstable_offset() == 6
    finally:
        lg.close()
