"""The `_schemas` record format and the state rebuilt from it: records as Confluent's registry
writes them replay into the same subjects, ids, configs and modes."""

from __future__ import annotations

import json

import pytest

from strom.registry import records as rec
from strom.registry.state import RegistryState


def _schema(subject: str, version: int, sid: int, schema: str, **extra: object) -> tuple:
    key = json.dumps({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1})
    value = {"subject": subject, "version": version, "id": sid, "schema": schema}
    value.update(extra)
    return key.encode(), json.dumps(value).encode()


def _replay(pairs) -> RegistryState:  # noqa: ANN001
    state = RegistryState()
    for key, value in pairs:
        state.apply(rec.decode(key, value))
    return state


def test_keys_are_written_as_confluent_writes_them() -> None:
    """Compaction needs byte-identical keys: field order and no spaces, as Confluent's."""
    assert rec.schema_key("t-value", 3) == (
        b'{"keytype":"SCHEMA","subject":"t-value","version":3,"magic":1}'
    )
    assert rec.subject_key(rec.CONFIG, None) == b'{"keytype":"CONFIG","subject":null,"magic":0}'
    assert rec.subject_key(rec.MODE, "s") == b'{"keytype":"MODE","subject":"s","magic":0}'
    assert rec.noop_key() == b'{"keytype":"NOOP","magic":0}'


def test_replay_of_confluent_records() -> None:
    state = _replay(
        [
            _schema("a", 1, 1, '"string"', deleted=False),
            _schema("a", 2, 2, '"int"'),
            _schema("b", 1, 1, '"string"'),
            _schema(
                "c",
                1,
                3,
                "{}",
                schemaType="JSON",
                references=[{"name": "x.json", "subject": "a", "version": 1}],
            ),
            (rec.subject_key(rec.CONFIG, None), b'{"compatibilityLevel":"FULL"}'),
            (rec.subject_key(rec.CONFIG, "a"), b'{"compatibilityLevel":"NONE"}'),
            (rec.subject_key(rec.MODE, "b"), b'{"mode":"READONLY"}'),
            (rec.noop_key(), None),
        ]
    )
    assert state.subject_names() == ["a", "b", "c"]
    assert [v.id for v in state.versions("a")] == [1, 2]
    assert state.max_id == 3
    assert state.schemas[1].schema == '"string"'
    c = state.versions("c")[0]
    assert c.schema_type == "JSON" and c.references == (rec.Reference("x.json", "a", 1),)
    assert state.referenced_by("a", 1) == [3]
    assert (state.global_config, state.configs, state.modes) == (
        "FULL",
        {"a": "NONE"},
        {"b": "READONLY"},
    )
    assert [(v.subject, v.version) for v in state.uses_of(1)] == [("a", 1), ("b", 1)]


def test_soft_delete_tombstones_and_subject_records() -> None:
    state = _replay(
        [
            _schema("a", 1, 1, '"string"'),
            _schema("a", 2, 2, '"int"'),
            _schema("a", 1, 1, '"string"', deleted=True),  # soft delete of version 1
        ]
    )
    assert [v.version for v in state.versions("a")] == [2]
    assert [v.version for v in state.versions("a", deleted=True)] == [1, 2]
    # a hard delete (tombstone) of version 1: its id is no longer used anywhere
    state.apply(rec.decode(rec.schema_key("a", 1), None))
    assert 1 not in state.schemas and state.max_id == 2
    assert state.next_version("a") == 3
    # Confluent's DELETE_SUBJECT soft-deletes up to a version; CLEAR_SUBJECT drops those
    state.apply(
        rec.decode(rec.subject_key(rec.DELETE_SUBJECT, "a"), b'{"subject":"a","version":2}')
    )
    assert state.versions("a") == [] and state.subject_names(deleted=True) == ["a"]
    state.apply(rec.decode(rec.subject_key(rec.CLEAR_SUBJECT, "a"), b'{"subject":"a"}'))
    assert state.subject_names(deleted=True) == [] and state.schemas == {}
    # config and mode tombstones
    state.apply(rec.decode(rec.subject_key(rec.CONFIG, "a"), b'{"compatibilityLevel":"NONE"}'))
    state.apply(rec.decode(rec.subject_key(rec.CONFIG, "a"), None))
    assert state.configs == {}


@pytest.mark.parametrize(
    "key, value",
    [
        (None, b"{}"),
        (b"not json", b"{}"),
        (b"[1]", b"{}"),
        (b'{"keytype":"SCHEMA","subject":"a"}', b"{}"),  # no version
        (b'{"keytype":"CONFIG","subject":5,"magic":0}', b"{}"),
        (b'{"keytype":"CONFIG","subject":"a","magic":0}', b"[1]"),
    ],
)
def test_malformed_records_are_refused(key, value) -> None:  # noqa: ANN001
    with pytest.raises(rec.MalformedRecord):
        rec.decode(key, value)


def test_bad_values_are_skipped_not_fatal() -> None:
    """A SCHEMA value missing fields, or a config of the wrong type, is logged and skipped:
    the rest of the topic still applies."""
    state = _replay(
        [
            (rec.schema_key("a", 1), b'{"subject":"a","version":1}'),  # no id, no schema
            (rec.subject_key(rec.CONFIG, None), b'{"compatibilityLevel":7}'),
            (rec.subject_key("SOMETHING_NEW", None), b"{}"),
            _schema("b", 1, 4, '"int"'),
        ]
    )
    assert state.subject_names() == ["b"] and state.global_config is None
