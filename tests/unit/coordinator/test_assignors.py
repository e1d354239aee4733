"""Server-side assignors: every partition to exactly one subscribed member, balanced, sticky."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strom.coordinator.group.assignors import MemberSpec, range_, uniform

TOPIC_IDS = [bytes([i]) * 16 for i in range(1, 5)]


def _flat(result: dict) -> list:
    return [(m, t, p) for m, a in result.items() for t, ps in a.items() for p in ps]


@st.composite
def cluster(draw):  # noqa: ANN201, ANN001
    topics = {t: draw(st.integers(1, 12)) for t in TOPIC_IDS[: draw(st.integers(1, 4))]}
    n = draw(st.integers(1, 8))
    homogeneous = draw(st.booleans())
    members = {}
    for i in range(n):
        subs = (
            frozenset(topics)
            if homogeneous
            else frozenset(draw(st.sets(st.sampled_from(list(topics)), min_size=1)))
        )
        members[f"m{i}"] = MemberSpec(subs)
    return members, topics


def _check_complete(members, topics, result) -> None:  # noqa: ANN001
    owners: dict = {}
    for m, t, p in _flat(result):
        assert (t, p) not in owners, "assigned twice"
        owners[(t, p)] = m
        assert t in members[m].topics, "assigned to a member not subscribed"
        assert 0 <= p < topics[t]
    for t, n in topics.items():
        if any(t in s.topics for s in members.values()):
            assert all((t, p) in owners for p in range(n)), "partition left out"


@settings(max_examples=300, deadline=None)
@given(cluster())
def test_uniform_is_complete_and_balanced(c) -> None:  # noqa: ANN001
    members, topics = c
    result = uniform(members, topics, {})
    _check_complete(members, topics, result)
    counts = [sum(len(ps) for ps in result[m].values()) for m in members]
    specs = list(members.values())
    if all(s.topics == specs[0].topics for s in specs):
        assert max(counts) - min(counts) <= 1


@settings(max_examples=200, deadline=None)
@given(cluster(), st.integers(0, 7))
def test_uniform_is_sticky_when_a_member_leaves(c, leaver: int) -> None:  # noqa: ANN001
    members, topics = c
    first = uniform(members, topics, {})
    gone = f"m{leaver % len(members)}"
    rest = {m: s for m, s in members.items() if m != gone}
    if not rest:
        return
    second = uniform(rest, topics, first)
    _check_complete(rest, topics, second)
    specs = list(members.values())
    if all(s.topics == specs[0].topics for s in specs):
        # Survivors keep what they had; only the leaver's partitions move.
        for m in rest:
            for t, ps in first[m].items():
                assert ps <= second[m].get(t, set())


@settings(max_examples=200, deadline=None)
@given(cluster())
def test_range_is_complete_and_contiguous(c) -> None:  # noqa: ANN001
    members, topics = c
    result = range_(members, topics, {})
    _check_complete(members, topics, result)
    for a in result.values():
        for ps in a.values():
            assert sorted(ps) == list(range(min(ps), max(ps) + 1))


def test_range_co_partitions_topics() -> None:
    t1, t2 = TOPIC_IDS[:2]
    members = {"a": MemberSpec(frozenset({t1, t2})), "b": MemberSpec(frozenset({t1, t2}))}
    result = range_(members, {t1: 5, t2: 5}, {})
    assert result["a"] == {t1: {0, 1, 2}, t2: {0, 1, 2}}
    assert result["b"] == {t1: {3, 4}, t2: {3, 4}}
