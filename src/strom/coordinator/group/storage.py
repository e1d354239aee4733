"""Where the coordinator's records go: the logs of __consumer_offsets, and the topics it checks.

The coordinator sees two small interfaces, so tests can hand it plain logs in a temporary
directory and a dict of topics: `RecordLog` (append records to a partition, read its batches
back) and `TopicsView` (partition counts and topic ids of the cluster's topics).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from strom.coordinator.group.records import Record
from strom.protocol.records import BatchView, build_batch
from strom.storage.log import AppendOrigin, Log

RECORD_OVERHEAD = 32  # a generous bound on a record's framing inside a batch


class RecordLog:
    """Appends the coordinator's records to the log of one __consumer_offsets partition.

    In a broker `append` goes through the replica manager (leader check, high watermark,
    waking fetches); tests leave it out and write to plain logs."""

    def __init__(
        self,
        log_of: Callable[[int], Log],
        append: Callable[[int, bytearray], None] | None = None,
    ) -> None:
        self._log_of = log_of
        self._append = append

    def append(self, partition: int, records: list[Record], timestamp: int) -> None:
        """Write the records as one append (one or more batches back to back, each within the
        partition's max.message.bytes): all of them land, or none. Raises KafkaError."""
        log = self._log_of(partition)
        limit = max(log.config.max_message_bytes - 256, 1024)
        chunks: list[bytes] = []
        current: list[Record] = []
        size = 0
        for rec in records:
            n = len(rec[0]) + (len(rec[1]) if rec[1] is not None else 0) + RECORD_OVERHEAD
            if current and size + n > limit:
                chunks.append(build_batch(current, timestamp=timestamp))
                current, size = [], 0
            current.append(rec)
            size += n
        if current:
            chunks.append(build_batch(current, timestamp=timestamp))
        data = bytearray(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if self._append is not None:
            self._append(partition, data)
        else:
            log.append(data, origin=AppendOrigin.COORDINATOR)

    def batches(self, partition: int) -> Iterator[BatchView]:
        """Every batch of the partition, from its log start to its end now."""
        log = self._log_of(partition)
        yield from log.iter_batches(max_offset=log.log_end_offset)


class TopicsView:
    """The topics the coordinator checks commits and subscriptions against."""

    def partition_count(self, topic: str) -> int | None:
        raise NotImplementedError

    def topic_id(self, topic: str) -> bytes | None:
        raise NotImplementedError

    def topic_name(self, topic_id: bytes) -> str | None:
        raise NotImplementedError

    def names(self) -> list[str]:
        raise NotImplementedError


class StaticTopics(TopicsView):
    """A fixed set of topics (for tests): name -> (topic id, partition count)."""

    def __init__(self, topics: Mapping[str, tuple[bytes, int]] | None = None) -> None:
        self.topics: dict[str, tuple[bytes, int]] = dict(topics or {})

    def partition_count(self, topic: str) -> int | None:
        found = self.topics.get(topic)
        return None if found is None else found[1]

    def topic_id(self, topic: str) -> bytes | None:
        found = self.topics.get(topic)
        return None if found is None else found[0]

    def topic_name(self, topic_id: bytes) -> str | None:
        for name, (tid, _) in self.topics.items():
            if tid == topic_id:
                return name
        return None

    def names(self) -> list[str]:
        return list(self.topics)


class ImageTopics(TopicsView):
    """Topics of a metadata image (anything with .topics {name: meta} and .topic_names
    {id: name}, as strom.cluster.metadata.MetadataImage has)."""

    def __init__(self, image_of: Callable[[], object]) -> None:
        self._image_of = image_of

    def partition_count(self, topic: str) -> int | None:
        meta = self._image_of().topics.get(topic)  # type: ignore[attr-defined]
        return None if meta is None else len(meta.partitions)

    def topic_id(self, topic: str) -> bytes | None:
        meta = self._image_of().topics.get(topic)  # type: ignore[attr-defined]
        return None if meta is None else meta.topic_id

    def topic_name(self, topic_id: bytes) -> str | None:
        return self._image_of().topic_names.get(topic_id)  # type: ignore[attr-defined]

    def names(self) -> list[str]:
        return list(self._image_of().topics)  # type: ignore[attr-defined]
