"""The topics the group coordinator checks commits and subscriptions against: `TopicsView`
(partition counts and topic ids of the cluster's topics), over a metadata image or, for tests,
a fixed set."""

from __future__ import annotations

from collections.abc import Callable, Mapping


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
