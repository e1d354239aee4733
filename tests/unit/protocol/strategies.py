"""Hypothesis strategies that build random messages of any generated class at any version."""

from __future__ import annotations

from hypothesis import strategies as st

from strom.protocol.primitives import FieldSpec

_INTS = {
    "int8": st.integers(-(2**7), 2**7 - 1),
    "int16": st.integers(-(2**15), 2**15 - 1),
    "uint16": st.integers(0, 2**16 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
}
_TEXT = st.text(max_size=12)
_BYTES = st.binary(max_size=24)


def _scalar(kind: str) -> st.SearchStrategy:
    if kind in _INTS:
        return _INTS[kind]
    if kind == "float64":
        return st.floats(allow_nan=False)
    if kind == "bool":
        return st.booleans()
    if kind == "uuid":
        return st.binary(min_size=16, max_size=16)
    if kind == "string":
        return _TEXT
    if kind in ("bytes", "records"):
        return _BYTES
    raise AssertionError(kind)


def _field(f: FieldSpec, version: int, flexible: bool, depth: int) -> st.SearchStrategy:
    if f.type.startswith("[]"):
        elem = f.type[2:]
        if f.struct is not None:
            inner = message(f.struct, version, flexible, depth + 1)
        else:
            inner = _scalar(elem)
        base = st.lists(inner, max_size=3 if depth < 2 else 1)
    elif f.struct is not None:
        base = message(f.struct, version, flexible, depth + 1)
    else:
        base = _scalar(f.type)
    if f.nullable_min <= version <= f.nullable_max:
        return st.none() | base
    return base


def message(cls: type, version: int, flexible: bool, depth: int = 0) -> st.SearchStrategy:
    """Random instances of cls holding only what version carries (the rest stays default)."""
    kwargs = {}
    for f in cls.FIELDS:
        if f.min_version <= version <= f.max_version:
            kwargs[f.name] = _field(f, version, flexible, depth)
    if flexible:
        # unknown tagged fields must survive a round trip (tags above any the specs use)
        kwargs["unknown_tags"] = st.none() | st.lists(
            st.tuples(st.integers(1000, 1010), st.binary(max_size=6)),
            min_size=1,
            max_size=2,
            unique_by=lambda t: t[0],
        ).map(lambda tags: sorted(tags))
    return st.builds(cls, **kwargs)
