"""Producer id allocation: ids handed out in blocks, the block's end persisted before use."""

from __future__ import annotations

import asyncio
import os

from strom.storage.files import atomic_write

BLOCK_SIZE = 1000
FILE_NAME = "producer_id_block"


class ProducerIdManager:
    """Hands out unique producer ids, never reusing one across restarts."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, FILE_NAME)
        self._next = self._read_reserved()
        self._block_end = self._next
        self._reserving = asyncio.Lock()

    def _read_reserved(self) -> int:
        try:
            with open(self.path, encoding="ascii") as f:
                return int(f.read().strip() or 0)
        except FileNotFoundError:
            return 0

    def _reserve(self, end: int) -> None:
        atomic_write(self.path, f"{end}\n")
        self._block_end = end

    async def next_id(self) -> int:
        """A new producer id; a new block is reserved (written and fsynced, in a worker thread)
        when the current one is used up."""
        async with self._reserving:
            if self._next >= self._block_end:
                await asyncio.to_thread(self._reserve, self._next + BLOCK_SIZE)
        pid = self._next
        self._next += 1
        return pid
