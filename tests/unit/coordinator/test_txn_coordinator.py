"""The transaction coordinator over real logs: InitProducerId (new ids, epoch bumps, fencing,
KIP-360 retries), AddPartitionsToTxn, EndTxn with markers, timeouts, restarts."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from strom.coordinator.deferred import Deferred
from strom.coordinator.txn.coordinator import MarkerJob, TransactionCoordinator, TxnConfig
from strom.coordinator.txn.records import TxnState, decode_txn_record
from strom.coordinator.writer import LogWriter
from strom.protocol.errors import ErrorCode
from strom.storage.config import LogConfig
from strom.storage.log import Log

E = ErrorCode


class Harness:
    """A coordinator over logs in a directory; `restart()` rebuilds one from the logs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs: dict[int, Log] = {}
        self.now = 1_700_000_000_000
        self.pids = itertools.count(1000)
        self.jobs: list[tuple[MarkerJob, Deferred[ErrorCode]]] = []
        self.auto_markers = True
        self.c = self._make()

    def log_of(self, p: int) -> Log:
        if p not in self.logs:
            cfg = LogConfig.from_props({"cleanup.policy": "compact"})
            self.logs[p] = Log(str(self.root / f"__transaction_state-{p}"), cfg)
        return self.logs[p]

    async def _pid(self) -> int:
        return next(self.pids)

    def _markers(self, job: MarkerJob) -> Deferred[ErrorCode]:
        done: Deferred[ErrorCode] = Deferred()
        self.jobs.append((job, done))
        if self.auto_markers:
            done.complete(ErrorCode.NONE)
        return done

    def _make(self) -> TransactionCoordinator:
        c = TransactionCoordinator(
            TxnConfig(num_partitions=3, max_timeout_ms=60_000, id_expiration_ms=3_600_000),
            LogWriter(self.log_of),
            self._pid,
            self._markers,
            lambda: self.now,
        )
        c.load_all()
        return c

    def restart(self) -> TransactionCoordinator:
        for lg in self.logs.values():
            lg.close()
        self.logs.clear()
        self.c = self._make()
        return self.c

    def init(self, txn_id: str, timeout: int = 30_000, pid: int = -1, epoch: int = -1):  # noqa: ANN201
        return asyncio.run(self.c.init_producer_id(txn_id, timeout, pid, epoch))

    def close(self) -> None:
        for lg in self.logs.values():
            lg.close(flush=False)


@pytest.fixture
def h(tmp_path: Path):  # noqa: ANN201
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def test_new_ids_and_epoch_bumps(h: Harness) -> None:
    first = h.init("t1")
    assert (first.error, first.producer_epoch) == (E.NONE, 0)
    again = h.init("t1")
    assert (again.producer_id, again.producer_epoch) == (first.producer_id, 1)
    other = h.init("t2")
    assert other.producer_id != first.producer_id
    assert h.init("t1", timeout=60_001).error == E.INVALID_TRANSACTION_TIMEOUT
    assert h.init("t1", timeout=0).error == E.INVALID_TRANSACTION_TIMEOUT


def test_commit_writes_markers_then_completes(h: Harness) -> None:
    r = h.init("t")
    pid, epoch = r.producer_id, r.producer_epoch
    c = h.c
    assert c.end_txn("t", pid, epoch, True).result == E.INVALID_TXN_STATE  # nothing to commit
    assert c.add_partitions("t", pid, epoch, [("a", 0), ("b", 1)]).result == E.NONE
    assert c.txns["t"].state == TxnState.ONGOING
    assert c.add_partitions("t", pid, epoch, [("a", 0)]).result == E.NONE  # already in
    assert c.verify_partitions("t", pid, epoch, [("a", 0), ("c", 0)]) == {
        ("a", 0): E.NONE,
        ("c", 0): E.INVALID_TXN_STATE,
    }
    h.auto_markers = False
    assert c.end_txn("t", pid, epoch, True).result == E.NONE
    assert c.txns["t"].state == TxnState.PREPARE_COMMIT
    job, done = h.jobs[-1]
    assert job.commit and job.partitions == {("a", 0), ("b", 1)}
    assert (job.producer_id, job.producer_epoch) == (pid, epoch)
    # meanwhile: retries and other requests wait
    assert c.end_txn("t", pid, epoch, True).result == E.CONCURRENT_TRANSACTIONS
    assert c.add_partitions("t", pid, epoch, [("a", 0)]).result == E.CONCURRENT_TRANSACTIONS
    done.complete(E.NONE)
    assert c.txns["t"].state == TxnState.COMPLETE_COMMIT and not c.txns["t"].partitions
    assert c.end_txn("t", pid, epoch, True).result == E.NONE  # a retry after completion
    assert c.end_txn("t", pid, epoch, False).result == E.INVALID_TXN_STATE
    # the next transaction starts from Complete
    assert c.add_partitions("t", pid, epoch, [("c", 2)]).result == E.NONE
    assert c.txns["t"].partitions == {("c", 2)}
    h.auto_markers = True
    assert c.end_txn("t", pid, epoch, False).result == E.NONE
    assert c.txns["t"].state == TxnState.COMPLETE_ABORT


def test_bad_requests_change_nothing(h: Harness) -> None:
    r = h.init("t")
    pid, epoch = r.producer_id, r.producer_epoch
    c = h.c
    log_end = sum(lg.log_end_offset for lg in h.logs.values())
    assert c.end_txn("unknown", pid, epoch, True).result == E.INVALID_PRODUCER_ID_MAPPING
    assert c.add_partitions("t", pid + 1, epoch, [("a", 0)]).result == (
        E.INVALID_PRODUCER_ID_MAPPING
    )
    assert c.add_partitions("t", pid, epoch - 1, [("a", 0)]).result == E.PRODUCER_FENCED
    assert c.end_txn("t", pid, epoch + 1, True).result == E.PRODUCER_FENCED
    assert sum(lg.log_end_offset for lg in h.logs.values()) == log_end
    assert c.txns["t"].state == TxnState.EMPTY


def test_new_producer_fences_an_open_transaction(h: Harness) -> None:
    old = h.init("t")
    c = h.c
    assert c.add_partitions("t", old.producer_id, 0, [("a", 0)]).result == E.NONE
    h.auto_markers = False
    retry = h.init("t")
    assert retry.error == E.CONCURRENT_TRANSACTIONS
    job, done = h.jobs[-1]
    assert not job.commit and job.producer_epoch == 1  # aborted under the bumped epoch
    # the fenced producer can no longer commit
    assert c.end_txn("t", old.producer_id, 0, True).result == E.PRODUCER_FENCED
    done.complete(E.NONE)
    assert c.txns["t"].state == TxnState.COMPLETE_ABORT
    new = h.init("t")
    assert (new.error, new.producer_id, new.producer_epoch) == (E.NONE, old.producer_id, 2)


def test_kip360_retried_init(h: Harness) -> None:
    first = h.init("t")
    bumped = h.init("t", pid=first.producer_id, epoch=first.producer_epoch)
    assert (bumped.error, bumped.producer_epoch) == (E.NONE, 1)
    # the same request again (its answer was lost): the same answer
    again = h.init("t", pid=first.producer_id, epoch=first.producer_epoch)
    assert (again.error, again.producer_epoch) == (E.NONE, 1)
    assert h.init("t", pid=first.producer_id, epoch=7).error == E.PRODUCER_FENCED
    assert h.init("t", pid=999_999, epoch=1).error == E.PRODUCER_FENCED


def test_timed_out_transaction_is_aborted(h: Harness) -> None:
    r = h.init("t", timeout=10_000)
    c = h.c
    assert c.add_partitions("t", r.producer_id, r.producer_epoch, [("a", 0)]).result == E.NONE
    h.now += 5_000
    assert c.abort_timed_out() == 0
    h.now += 6_000
    assert c.abort_timed_out() == 1
    assert c.txns["t"].state == TxnState.COMPLETE_ABORT
    assert c.txns["t"].producer_epoch == r.producer_epoch + 1  # the old producer is fenced
    job, _ = h.jobs[-1]
    assert not job.commit and job.partitions == {("a", 0)}


def test_restart_completes_prepared_transactions(h: Harness) -> None:
    r = h.init("t")
    c = h.c
    c.add_partitions("t", r.producer_id, r.producer_epoch, [("a", 0), ("a", 1)])
    h.auto_markers = False
    assert c.end_txn("t", r.producer_id, r.producer_epoch, True).result == E.NONE
    jobs_before = len(h.jobs)
    h.auto_markers = True
    c = h.restart()  # the broker died before the markers were written
    assert len(h.jobs) == jobs_before + 1
    job, _ = h.jobs[-1]
    assert job.commit and job.partitions == {("a", 0), ("a", 1)}
    assert c.txns["t"].state == TxnState.COMPLETE_COMMIT
    # what the log holds decodes as Kafka's records
    p = c.partition_for("t")
    last = list(h.logs[p].iter_batches())[-1]
    rec = next(iter(last.records()))
    decoded = decode_txn_record(rec.key, rec.value)
    assert decoded.transactional_id == "t"
    assert decoded.value.transaction_status == TxnState.COMPLETE_COMMIT


def test_idle_ids_expire(h: Harness) -> None:
    h.init("t")
    c = h.c
    h.now += 3_600_001
    assert c.expire_ids() == 1
    assert "t" not in c.txns
    c = h.restart()
    assert "t" not in c.txns
