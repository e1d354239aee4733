"""Metadata images are immutable; deltas make new ones."""

from __future__ import annotations

import pytest

from strom.cluster.metadata import (
    BrokerMeta,
    MetadataDelta,
    MetadataImage,
    PartitionMeta,
    TopicMeta,
)


def topic(name: str, tid: bytes, partitions: int = 1) -> TopicMeta:
    return TopicMeta(
        name, tid, tuple(PartitionMeta(p, 0, 0, (0,), (0,)) for p in range(partitions))
    )


def test_apply_returns_a_new_image_and_leaves_the_old_one() -> None:
    empty = MetadataImage("c", 0)
    one = empty.apply(
        MetadataDelta(brokers={0: BrokerMeta(0, "h", 9092)}, topics={"a": topic("a", b"1" * 16)})
    )
    assert dict(empty.topics) == {} and dict(empty.brokers) == {}
    assert list(one.topics) == ["a"] and one.topic_names[b"1" * 16] == "a"
    assert one.version == empty.version + 1
    two = one.apply(MetadataDelta(deleted=frozenset({"a"}), topics={"b": topic("b", b"2" * 16)}))
    assert list(two.topics) == ["b"] and dict(two.topic_names) == {b"2" * 16: "b"}
    assert list(one.topics) == ["a"]  # untouched
    grown = two.apply(MetadataDelta(topics={"b": topic("b", b"2" * 16, 3)}))
    assert len(grown.topics["b"].partitions) == 3 and grown.partition("b", 2) is not None
    assert grown.partition("b", 3) is None and grown.partition("x", 0) is None
    gone = grown.apply(MetadataDelta(brokers={0: None}))
    assert dict(gone.brokers) == {}


def test_images_cannot_be_changed_in_place() -> None:
    image = MetadataImage("c", 0).apply(MetadataDelta(topics={"a": topic("a", b"1" * 16)}))
    with pytest.raises(TypeError):
        image.topics["b"] = topic("b", b"2" * 16)  # type: ignore[index]
    with pytest.raises(AttributeError):
        image.topics["a"].partitions[0].leader = 5  # type: ignore[misc]
