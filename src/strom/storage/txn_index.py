"""A segment's aborted-transaction index (`.txnindex`, Kafka's layout): one entry per
transaction aborted by a marker in the segment, so read_committed fetches can tell consumers
which producers' records in a range to drop.

An entry is 34 bytes: version (int16, 0), producer id, first offset (the transaction's first
batch), last offset (its abort marker) and the last stable offset after the abort (int64s).
Aborts are rare: entries are kept in memory once read, and each is written when it is added.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from strom.storage.files import atomic_write

ENTRY = struct.Struct(">hqqqq")
VERSION = 0


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TxnIndex:
    """The entries of one segment's `.txnindex`, read on first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._entries: list[AbortedTxn] | None = None

    def entries(self) -> list[AbortedTxn]:
        if self._entries is None:
            self._entries = _read(self.path)
        return self._entries

    def append(self, entry: AbortedTxn) -> None:
        """Add an entry (again after a replay: a duplicate is skipped)."""
        entries = self.entries()
        if entry in entries:
            return
        entries.append(entry)
        with open(self.path, "ab") as f:
            f.write(_pack(entry))

    def truncate_to(self, offset: int) -> None:
        """Forget the aborts whose markers are at or after `offset` (the log was cut there)."""
        entries = self.entries()
        kept = [e for e in entries if e.last_offset < offset]
        if len(kept) == len(entries):
            return
        self._entries = kept
        atomic_write(self.path, b"".join(_pack(e) for e in kept))


def _pack(e: AbortedTxn) -> bytes:
    return ENTRY.pack(VERSION, e.producer_id, e.first_offset, e.last_offset, e.last_stable_offset)


def _read(path: str) -> list[AbortedTxn]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    # a torn last entry (a crash while writing it) is left out; the replay adds it back
    for pos in range(0, len(data) - ENTRY.size + 1, ENTRY.size):
        version, pid, first, last, lso = ENTRY.unpack_from(data, pos)
        if version != VERSION:
            break
        out.append(AbortedTxn(pid, first, last, lso))
    return out
