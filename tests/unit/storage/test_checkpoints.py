"""Kafka-style checkpoint files."""

from __future__ import annotations

import pytest

from strom.protocol.errors import ErrorCode
from strom.storage.checkpoints import (
    CheckpointError,
    CleanerCheckpoint,
    CleanerPass,
    EpochEntry,
    LeaderEpochCheckpoint,
    OffsetCheckpoint,
    read_checkpoint,
    write_checkpoint,
)


def test_offset_checkpoint_format_and_round_trip(tmp_path) -> None:
    path = tmp_path / "recovery-point-offset-checkpoint"
    cp = OffsetCheckpoint(str(path))
    assert cp.read() == {}
    cp.write({("b", 1): 20, ("a", 0): 10})
    assert path.read_text() == "0\n2\na 0 10\nb 1 20\n"
    assert cp.read() == {("a", 0): 10, ("b", 1): 20}
    assert not (tmp_path / "recovery-point-offset-checkpoint.tmp").exists()


def test_leader_epoch_and_cleaner_checkpoints(tmp_path) -> None:
    ep = LeaderEpochCheckpoint(str(tmp_path / "leader-epoch-checkpoint"))
    ep.write([EpochEntry(0, 0), EpochEntry(3, 120)])
    assert (tmp_path / "leader-epoch-checkpoint").read_text() == "0\n2\n0 0\n3 120\n"
    assert ep.read() == [EpochEntry(0, 0), EpochEntry(3, 120)]
    cl = CleanerCheckpoint(str(tmp_path / "cleaner"))
    cl.write([CleanerPass(10, 5), CleanerPass(20, 7)])
    assert cl.read() == [CleanerPass(10, 5), CleanerPass(20, 7)]


@pytest.mark.parametrize(
    "text",
    ["", "0\n", "1\n0\n", "0\n2\na 0 1\n", "0\n1\na 0\n", "x\n0\n", "0\n1\na zero 1\n"],
)
def test_malformed_checkpoints_raise(tmp_path, text: str) -> None:
    path = tmp_path / "cp"
    path.write_text(text)
    with pytest.raises(CheckpointError) as exc:
        OffsetCheckpoint(str(path)).read()
    assert exc.value.code == ErrorCode.KAFKA_STORAGE_ERROR


def test_write_replaces_atomically(tmp_path) -> None:
    path = str(tmp_path / "cp")
    write_checkpoint(path, [("a", 1)])
    write_checkpoint(path, [("b", 2), ("c", 3)])
    assert read_checkpoint(path, 2) == [["b", "2"], ["c", "3"]]
