"""Producer state owned by the log: loaded with it, snapshotted at rolls, truncated with it,
and the first unstable offset kept as transactions open and close."""

from __future__ import annotations

from pathlib import Path

from strom.protocol.records import build_batch, build_control_batch
from strom.storage.config import LogConfig
from strom.storage.log import AppendOrigin, Log

COMMIT = 1


def txn_batch(pid: int, seq: int, n: int = 2) -> bytearray:
    records = [(b"k%d" % i, b"v%d" % i) for i in range(n)]
    return bytearray(
        build_batch(
            records, producer_id=pid, producer_epoch=0, base_sequence=seq, transactional=True
        )
    )


def plain_batch(n: int = 2, pid: int = -1, seq: int = -1) -> bytearray:
    records = [(b"k%d" % i, b"v%d" % i) for i in range(n)]
    epoch = 0 if pid >= 0 else -1
    return bytearray(build_batch(records, producer_id=pid, producer_epoch=epoch, base_sequence=seq))


def marker(pid: int) -> bytearray:
    return bytearray(build_control_batch(COMMIT, producer_id=pid, producer_epoch=0))


def reopen(path: Path, **kw: object) -> Log:
    lg = Log(str(path), LogConfig.from_props({"segment.bytes": "1024"}), **kw)
    lg.load()
    return lg


def test_first_unstable_offset_follows_open_transactions(tmp_path: Path) -> None:
    lg = reopen(tmp_path / "t-0")
    lg.append(plain_batch(4))
    assert lg.producers.first_unstable_offset() is None
    lg.append(txn_batch(7, 0))  # offsets 4-5, producer 7 opens a transaction at 4
    lg.append(txn_batch(8, 0))  # offsets 6-7, producer 8 at 6
    assert lg.producers.first_unstable_offset() == 4
    lg.append(marker(7), origin=AppendOrigin.COORDINATOR)  # 7 commits: 8 is the oldest open
    assert lg.producers.first_unstable_offset() == 6
    lg.append(marker(8), origin=AppendOrigin.COORDINATOR)
    assert lg.producers.first_unstable_offset() is None
    lg.close()


def test_state_is_loaded_with_the_log_after_a_crash(tmp_path: Path) -> None:
    lg = reopen(tmp_path / "t-0")
    for i in range(30):  # several rolls at 1 KiB segments: snapshots at each
        lg.append(plain_batch(3, pid=5, seq=3 * i))
    lg.append(txn_batch(9, 0))
    open_at = lg.log_end_offset - 2
    assert len(lg.segments) >= 3
    snapshots = sorted(p.name for p in (tmp_path / "t-0").glob("*.snapshot"))
    assert snapshots, "a roll takes a producer snapshot"
    # a crash: no close, no final snapshot; the state comes back from the log alone
    again = reopen(tmp_path / "t-0", needs_recovery=True)
    assert again.producers.first_unstable_offset() == open_at
    assert again.producers.producers[5].last_seq == 89
    again.append(plain_batch(3, pid=5, seq=90))  # the next sequence is accepted
    lg.close(flush=False)
    again.close()


def test_truncation_rewinds_producer_state(tmp_path: Path) -> None:
    lg = reopen(tmp_path / "t-0")
    lg.append(plain_batch(2))
    lg.append(txn_batch(3, 0))  # offsets 2-3
    assert lg.producers.first_unstable_offset() == 2
    lg.truncate_to(2)
    assert lg.producers.first_unstable_offset() is None
    assert 3 not in lg.producers.producers
    lg.close()


def test_clean_close_snapshots_at_the_log_end(tmp_path: Path) -> None:
    lg = reopen(tmp_path / "t-0")
    lg.append(plain_batch(2, pid=4, seq=0))
    end = lg.log_end_offset
    lg.close()
    assert (tmp_path / "t-0" / f"{end:020d}.snapshot").exists()
    again = reopen(tmp_path / "t-0")
    assert again.producers.producers[4].last_seq == 1
    again.close()
