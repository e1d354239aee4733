"""Kafka-style text checkpoint files (version, count, entries), written atomically."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.files import atomic_write

CHECKPOINT_VERSION = 0

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
HIGH_WATERMARK_CHECKPOINT = "replication-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
CLEANER_CHECKPOINT = "cleaner-offset-checkpoint"


class CheckpointError(KafkaError):
    """A checkpoint file that cannot be read or written."""

    code = ErrorCode.KAFKA_STORAGE_ERROR


def write_checkpoint(
    path: str, entries: Iterable[Iterable[object]], version: int = CHECKPOINT_VERSION
) -> None:
    """Write `version`, `count`, then one space-separated line per entry, atomically.

    The text goes to `<path>.tmp`, is fsynced, renamed over `path`, and the directory is
    fsynced, so a reader sees the old file or the new one, never a mix.
    """
    lines = [" ".join(str(field) for field in entry) for entry in entries]
    text = f"{version}\n{len(lines)}\n" + "".join(line + "\n" for line in lines)
    try:
        atomic_write(path, text.encode("ascii"))
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint {path}: {e}") from e


def _read_body(path: str, expected_version: int) -> list[str] | None:
    """The entry lines of a checkpoint file, its header checked; None if it is missing."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 2:
        raise CheckpointError(f"malformed checkpoint {path}: missing header")
    try:
        version = int(lines[0])
        count = int(lines[1])
    except ValueError:
        raise CheckpointError(f"malformed checkpoint {path}: bad header") from None
    if version != expected_version:
        raise CheckpointError(f"checkpoint {path} has unknown version {version}")
    body = lines[2:]
    if count != len(body):
        raise CheckpointError(f"checkpoint {path}: expected {count} entries, found {len(body)}")
    return body


def _split(path: str, body: list[str], fields: int) -> list[list[str]]:
    entries = []
    for line in body:
        parts = line.split()
        if len(parts) != fields:
            raise CheckpointError(f"malformed checkpoint {path} line: {line!r}")
        entries.append(parts)
    return entries


def read_checkpoint(
    path: str, fields: int, expected_version: int = CHECKPOINT_VERSION
) -> list[list[str]] | None:
    """Entries of a checkpoint file, each split into `fields` strings; None if it is missing.

    A malformed file (bad version, count mismatch, wrong field count) raises CheckpointError.
    """
    body = _read_body(path, expected_version)
    return None if body is None else _split(path, body, fields)


def _int(path: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CheckpointError(f"malformed number {text!r} in checkpoint {path}") from None


class OffsetCheckpoint:
    """A data-dir checkpoint of one offset per partition: lines of `topic partition offset`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Replace the file with these offsets."""
        write_checkpoint(self.path, ((t, p, o) for (t, p), o in sorted(offsets.items())))

    def read(self) -> dict[tuple[str, int], int]:
        """The offsets in the file (empty if it does not exist)."""
        body = _read_body(self.path, CHECKPOINT_VERSION)
        if body is None:
            return {}
        try:  # a line per partition, read at every start: parsed in one go
            return {(t, int(p)): int(o) for t, p, o in map(str.split, body)}
        except ValueError:  # a line without three fields, or not a number: say which
            entries = _split(self.path, body, 3)
            return {(t, _int(self.path, p)): _int(self.path, o) for t, p, o in entries}


@dataclass(frozen=True, slots=True)
class EpochEntry:
    """A leader epoch and the first offset written in it."""

    epoch: int
    start_offset: int


class LeaderEpochCheckpoint:
    """A partition's `leader-epoch-checkpoint`: lines of `epoch start_offset`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, entries: Iterable[EpochEntry]) -> None:
        """Replace the file with these entries."""
        write_checkpoint(self.path, ((e.epoch, e.start_offset) for e in entries))

    def read(self) -> list[EpochEntry]:
        """The entries in the file (empty if it does not exist)."""
        entries = read_checkpoint(self.path, 2)
        if entries is None:
            return []
        return [EpochEntry(_int(self.path, e), _int(self.path, o)) for e, o in entries]


@dataclass(frozen=True, slots=True)
class CleanerPass:
    """A compaction pass: every offset below `end_offset` was clean at `time_ms` or earlier."""

    end_offset: int
    time_ms: int


class CleanerCheckpoint:
    """A partition's cleaner state: lines of `end_offset time_ms`, one per recent pass.

    The largest end offset is the first dirty offset; the times say how long a tombstone
    has been in the clean part of the log, which decides when it may be dropped.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, passes: Iterable[CleanerPass]) -> None:
        """Replace the file with these passes."""
        write_checkpoint(self.path, ((p.end_offset, p.time_ms) for p in passes))

    def read(self) -> list[CleanerPass]:
        """The passes in the file, oldest first (empty if it does not exist)."""
        entries = read_checkpoint(self.path, 2)
        if entries is None:
            return []
        passes = [CleanerPass(_int(self.path, o), _int(self.path, t)) for o, t in entries]
        passes.sort(key=lambda p: p.end_offset)
        return passes
