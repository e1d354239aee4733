"""Tests for compatibility levels across a subject's versions (strom.registry.compatibility)."""

from __future__ import annotations

import json
import sys
import types

import pytest

from strom.registry.compatibility import CompatibilityLevel, incompatibilities
from strom.registry.schemas import ParsedSchema, parse_schema

L = CompatibilityLevel


def user(*fields: dict) -> ParsedSchema:
    return parse_schema(
        None, json.dumps({"type": "record", "name": "User", "fields": list(fields)})
    )


ID = {"name": "id", "type": "long"}
NAME = {"name": "name", "type": "string"}
NAME_DEFAULTED = {"name": "name", "type": "string", "default": ""}
EMAIL = {"name": "email", "type": "string"}
EMAIL_DEFAULTED = {"name": "email", "type": "string", "default": ""}

BASE = user(ID, NAME)
# adding a field with a default: readable both ways
ADD_DEFAULTED = user(ID, NAME, EMAIL_DEFAULTED)
# adding a field without default: old data lacks it (not backward), old readers skip it (forward)
ADD_REQUIRED = user(ID, NAME, EMAIL)
# removing a field without default: new reader skips it (backward), old reader misses it (not forward)
DROP_NAME = user(ID)


def test_levels_are_confluent_names() -> None:
    assert [level.value for level in CompatibilityLevel] == [
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
        "NONE",
    ]


@pytest.mark.parametrize(
    ("level", "new", "ok"),
    [
        (L.BACKWARD, ADD_DEFAULTED, True),
        (L.BACKWARD, ADD_REQUIRED, False),
        (L.BACKWARD, DROP_NAME, True),
        (L.FORWARD, ADD_DEFAULTED, True),
        (L.FORWARD, ADD_REQUIRED, True),
        (L.FORWARD, DROP_NAME, False),
        (L.FULL, ADD_DEFAULTED, True),
        (L.FULL, ADD_REQUIRED, False),
        (L.FULL, DROP_NAME, False),
        (L.NONE, ADD_REQUIRED, True),
        (L.NONE, DROP_NAME, True),
    ],
)
def test_single_previous_version(level: CompatibilityLevel, new: ParsedSchema, ok: bool) -> None:
    assert (incompatibilities(level, new, [BASE]) == []) is ok


def test_backward_message() -> None:
    (message,) = incompatibilities(L.BACKWARD, ADD_REQUIRED, [BASE])
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in message
    assert "'email'" in message
    assert not message.startswith("version")


def test_forward_checks_old_reading_new() -> None:
    (message,) = incompatibilities(L.FORWARD, DROP_NAME, [BASE])
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in message
    assert "'name'" in message


def test_full_says_which_direction() -> None:
    # type change int -> long: backward fine (promotion), forward not (long cannot become int)
    old = user({"name": "n", "type": "int"})
    new = user({"name": "n", "type": "long"})
    assert incompatibilities(L.BACKWARD, new, [old]) == []
    (message,) = incompatibilities(L.FULL, new, [old])
    assert message.startswith("forward: ")
    assert "TYPE_MISMATCH" in message
    (message,) = incompatibilities(L.FULL, old, [new])
    assert message.startswith("backward: ")


def test_full_reports_both_directions() -> None:
    old = user(ID, NAME)
    new = user(ID, EMAIL)  # drops name (no default), adds email (no default)
    found = incompatibilities(L.FULL, new, [old])
    assert len(found) == 2
    assert found[0].startswith("backward: ") and "'email'" in found[0]
    assert found[1].startswith("forward: ") and "'name'" in found[1]


def test_no_previous_versions() -> None:
    for level in CompatibilityLevel:
        assert incompatibilities(level, BASE, []) == []


def test_none_accepts_anything() -> None:
    other_type = parse_schema("JSON", '{"type":"string"}')
    assert incompatibilities(L.NONE, parse_schema(None, '"int"'), [BASE, other_type]) == []


# v1 has a required field `legacy` that v2 dropped; a new schema without `legacy` is fine
# against v2 only.
V1 = user(ID, NAME, {"name": "legacy", "type": "int"})
V2 = user(ID, NAME)
V3_NO_LEGACY = user(ID, NAME_DEFAULTED)


def test_non_transitive_checks_latest_only() -> None:
    assert incompatibilities(L.FORWARD, V3_NO_LEGACY, [V1, V2]) == []
    assert incompatibilities(L.FULL, V3_NO_LEGACY, [V1, V2]) == []


def test_forward_transitive_checks_every_version() -> None:
    (message,) = incompatibilities(L.FORWARD_TRANSITIVE, V3_NO_LEGACY, [V1, V2])
    assert message.startswith("version 1: ")
    assert "'legacy'" in message


def test_full_transitive_checks_every_version_both_ways() -> None:
    (message,) = incompatibilities(L.FULL_TRANSITIVE, V3_NO_LEGACY, [V1, V2])
    assert message.startswith("version 1: forward: ")


def test_backward_transitive() -> None:
    # v1 had `age` as a string, v2 dropped it; a new `age` int with a default reads v2 data
    # (field missing, default used) but not v1 data (string is not int)
    v1 = user(ID, {"name": "age", "type": "string"})
    v2 = user(ID)
    v3 = user(ID, {"name": "age", "type": "int", "default": 0})
    assert incompatibilities(L.BACKWARD, v3, [v1, v2]) == []
    (message,) = incompatibilities(L.BACKWARD_TRANSITIVE, v3, [v1, v2])
    assert message.startswith("version 1: ")
    assert "TYPE_MISMATCH" in message


def test_transitive_newest_first_and_version_labels() -> None:
    v1 = user(ID, {"name": "a", "type": "string"})
    v2 = user(ID, {"name": "a", "type": "boolean"})
    v3 = user(ID, {"name": "a", "type": "int"})
    found = incompatibilities(L.BACKWARD_TRANSITIVE, v3, [v1, v2])
    assert [m.split(":")[0] for m in found] == ["version 2", "version 1"]
    labelled = incompatibilities(L.BACKWARD_TRANSITIVE, v3, [v1, v2], versions=[4, 7])
    assert [m.split(":")[0] for m in labelled] == ["version 7", "version 4"]


def test_transitive_all_compatible() -> None:
    history = [user(ID), user(ID, NAME_DEFAULTED), user(ID, NAME_DEFAULTED, EMAIL_DEFAULTED)]
    new = user(ID, NAME_DEFAULTED, EMAIL_DEFAULTED, {"name": "x", "type": "int", "default": 1})
    for level in CompatibilityLevel:
        assert incompatibilities(level, new, history) == []


def test_level_may_be_given_as_string() -> None:
    assert incompatibilities("BACKWARD", ADD_REQUIRED, [BASE]) != []  # type: ignore[arg-type]
    assert incompatibilities("FORWARD", ADD_REQUIRED, [BASE]) == []  # type: ignore[arg-type]


def test_different_schema_type_is_incompatible() -> None:
    json_schema = parse_schema("JSON", '{"type": "object"}')
    (message,) = incompatibilities(L.BACKWARD, BASE, [json_schema])
    assert "AVRO" in message and "JSON" in message
    found = incompatibilities(L.BACKWARD_TRANSITIVE, BASE, [json_schema, BASE])
    assert len(found) == 1 and found[0].startswith("version 1: ")


def test_protobuf_is_checked() -> None:
    """Replacing message M by N: each schema lacks the other's message (MESSAGE_REMOVED both
    ways, as Confluent compares the message sets); NONE checks nothing."""
    old = parse_schema("PROTOBUF", "message M { string a = 1; }")
    new = parse_schema("PROTOBUF", "message N { int64 b = 7; }")
    for level in (CompatibilityLevel.BACKWARD, CompatibilityLevel.FORWARD):
        problems = incompatibilities(level, new, [old])
        assert problems and "MESSAGE_REMOVED" in problems[0]
    assert incompatibilities(CompatibilityLevel.NONE, new, [old]) == []


@pytest.fixture
def fake_compat_json(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, object]]:
    """Stand in for compat_json (written separately): record calls, object if writer has more."""
    calls: list[tuple[object, object]] = []

    def json_incompatibilities(reader: ParsedSchema, writer: ParsedSchema) -> list[str]:
        calls.append((reader.parsed, writer.parsed))
        return ["reader cannot read writer"] if reader.parsed != writer.parsed else []

    module = types.ModuleType("strom.registry.compat_json")
    module.json_incompatibilities = json_incompatibilities  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "strom.registry.compat_json", module)
    return calls


def test_json_dispatch(fake_compat_json: list[tuple[object, object]]) -> None:
    old = parse_schema("JSON", '{"type": "string"}')
    new = parse_schema("JSON", '{"type": "number"}')
    assert incompatibilities(L.BACKWARD, new, [old]) == ["reader cannot read writer"]
    assert fake_compat_json == [({"type": "number"}, {"type": "string"})]
    fake_compat_json.clear()
    assert incompatibilities(L.FORWARD, new, [old]) == ["reader cannot read writer"]
    assert fake_compat_json == [({"type": "string"}, {"type": "number"})]
    assert incompatibilities(L.FULL_TRANSITIVE, new, [new, old]) == [
        "version 2: backward: reader cannot read writer",
        "version 2: forward: reader cannot read writer",
    ]
