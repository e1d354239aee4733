"""Server-side assignors of consumer (KIP-848) groups: "uniform" (the default) and "range".

An assignor maps each member to the partitions it should own, given what each member subscribes
to, the partition count of every subscribed topic (by topic id) and the current target
assignment (to stay sticky: a partition moves only when balance needs it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Assignment = dict[bytes, set[int]]  # topic id -> partitions


@dataclass(frozen=True, slots=True)
class MemberSpec:
    topics: frozenset[bytes]  # subscribed topic ids that exist
    rack: str | None = None


def uniform(
    members: Mapping[str, MemberSpec],
    topics: Mapping[bytes, int],
    current: Mapping[str, Assignment],
) -> dict[str, Assignment]:
    """Spread every subscribed partition evenly over the members subscribed to its topic,
    keeping each member's current partitions where balance allows."""
    if not members:
        return {}
    specs = list(members.values())
    if all(s.topics == specs[0].topics for s in specs):
        return _uniform_homogeneous(members, topics, current, specs[0].topics)
    return _uniform_heterogeneous(members, topics, current)


def _valid_current(
    members: Mapping[str, MemberSpec],
    topics: Mapping[bytes, int],
    current: Mapping[str, Assignment],
) -> dict[str, list[tuple[bytes, int]]]:
    """Each member's current partitions that are still valid (subscribed, existing, not claimed
    by another member first), in topic/partition order."""
    owner: set[tuple[bytes, int]] = set()
    kept: dict[str, list[tuple[bytes, int]]] = {m: [] for m in members}
    for m in sorted(members):
        spec = members[m]
        for tid in sorted(current.get(m, {})):
            if tid not in spec.topics or tid not in topics:
                continue
            for p in sorted(current[m][tid]):
                if 0 <= p < topics[tid] and (tid, p) not in owner:
                    owner.add((tid, p))
                    kept[m].append((tid, p))
    return kept


def _to_assignment(parts: list[tuple[bytes, int]]) -> Assignment:
    out: Assignment = {}
    for tid, p in parts:
        out.setdefault(tid, set()).add(p)
    return out


def _uniform_homogeneous(
    members: Mapping[str, MemberSpec],
    topics: Mapping[bytes, int],
    current: Mapping[str, Assignment],
    subscribed: frozenset[bytes],
) -> dict[str, Assignment]:
    all_parts = [(t, p) for t in sorted(subscribed) if t in topics for p in range(topics[t])]
    kept = _valid_current(members, topics, current)
    n = len(members)
    base, extra = divmod(len(all_parts), n)
    # Members that hold the most now get the larger quotas: fewer partitions move.
    order = sorted(members, key=lambda m: (-len(kept[m]), m))
    quota = {m: base + (1 if i < extra else 0) for i, m in enumerate(order)}
    assigned: dict[str, list[tuple[bytes, int]]] = {}
    taken: set[tuple[bytes, int]] = set()
    for m in order:
        keep = kept[m][: quota[m]]
        assigned[m] = list(keep)
        taken.update(keep)
    pool = [tp for tp in all_parts if tp not in taken]
    pool.reverse()
    for m in order:
        while len(assigned[m]) < quota[m] and pool:
            assigned[m].append(pool.pop())
    return {m: _to_assignment(assigned[m]) for m in members}


def _uniform_heterogeneous(
    members: Mapping[str, MemberSpec],
    topics: Mapping[bytes, int],
    current: Mapping[str, Assignment],
) -> dict[str, Assignment]:
    kept = _valid_current(members, topics, current)
    owner: dict[tuple[bytes, int], str] = {}
    for m, parts in kept.items():
        for tp in parts:
            owner[tp] = m
    count = {m: len(kept[m]) for m in members}
    eligible = {t: sorted(m for m in members if t in members[m].topics) for t in topics}
    # Topics with the fewest eligible members first: they have the least room to choose.
    for t in sorted(topics, key=lambda t: (len(eligible[t]), t)):
        if not eligible[t]:
            continue
        for p in range(topics[t]):
            if (t, p) not in owner:
                m = min(eligible[t], key=lambda x: (count[x], x))
                owner[(t, p)] = m
                count[m] += 1
    # Move partitions from the fullest members to eligible emptier ones until no move helps.
    owned: dict[str, set[tuple[bytes, int]]] = {m: set() for m in members}
    for tp, m in owner.items():
        owned[m].add(tp)
    for _round in range(sum(count.values()) + 1):
        moved = False
        for a in sorted(members, key=lambda x: (-count[x], x)):
            for tp in sorted(owned[a], reverse=True):
                b = min(eligible[tp[0]], key=lambda x: (count[x], x))
                if count[a] - count[b] > 1:
                    owned[a].discard(tp)
                    owned[b].add(tp)
                    count[a] -= 1
                    count[b] += 1
                    moved = True
                    break
            if moved:
                break
        if not moved:
            break
    return {m: _to_assignment(sorted(owned[m])) for m in members}


def range_(
    members: Mapping[str, MemberSpec],
    topics: Mapping[bytes, int],
    current: Mapping[str, Assignment],
) -> dict[str, Assignment]:
    """Per topic, contiguous ranges of partitions to the subscribed members in member-id order
    (the first members get one more when the count does not divide): topics with the same
    partition count are co-partitioned."""
    out: dict[str, Assignment] = {m: {} for m in members}
    for t in sorted(topics):
        subs = sorted(m for m in members if t in members[m].topics)
        if not subs:
            continue
        base, extra = divmod(topics[t], len(subs))
        start = 0
        for i, m in enumerate(subs):
            n = base + (1 if i < extra else 0)
            if n:
                out[m][t] = set(range(start, start + n))
            start += n
    return out


ASSIGNORS = {"uniform": uniform, "range": range_}
