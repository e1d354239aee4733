"""Tests of the JSON Schema serializer and deserializer against an in-memory registry."""

from __future__ import annotations

import json

import pytest

from strom.serde import (
    JSONDeserializer,
    JSONSerializer,
    SerializationError,
    frame,
    record_name_strategy,
    topic_record_name_strategy,
    unframe,
)
from tests.unit.serde.registry_double import InMemoryRegistry

PERSON = json.dumps(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "com.example.Person",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
        "required": ["name", "age"],
    }
)
ANN = {"name": "ann", "age": 30, "tags": ["a"], "address": {"city": "Oslo"}}


@pytest.fixture
def registry() -> InMemoryRegistry:
    return InMemoryRegistry()


def test_round_trip(registry: InMemoryRegistry) -> None:
    data = JSONSerializer(registry, PERSON)(ANN, "people")
    schema_id, payload = unframe(data)
    assert json.loads(bytes(payload)) == ANN
    assert registry.schemas[schema_id].schema_type == "JSON"
    assert registry.subjects == {"people-value": [schema_id]}
    assert JSONDeserializer(registry)(data, "people") == ANN
    assert JSONDeserializer(registry, PERSON)(data, "people") == ANN


def test_validation_failure_on_serialize(registry: InMemoryRegistry) -> None:
    serializer = JSONSerializer(registry, PERSON)
    with pytest.raises(SerializationError, match=r"\$\.age.*-1 is less than the minimum"):
        serializer({"name": "ann", "age": -1}, "people")
    with pytest.raises(SerializationError, match="'city' is a required property"):
        serializer({"name": "ann", "age": 1, "address": {}}, "people")


def test_validation_can_be_turned_off(registry: InMemoryRegistry) -> None:
    data = JSONSerializer(registry, PERSON, validate=False)({"name": 1}, "people")
    assert JSONDeserializer(registry, validate=False)(data, "people") == {"name": 1}


def test_deserializer_validates_against_the_writer_schema(registry: InMemoryRegistry) -> None:
    schema_id = registry.register("people-value", PERSON, "JSON")
    bad = frame(schema_id, json.dumps({"name": "ann"}).encode())
    deserializer = JSONDeserializer(registry)
    with pytest.raises(SerializationError, match="'age' is a required property"):
        deserializer(bad, "people")
    good = frame(schema_id, json.dumps(ANN).encode())
    assert deserializer(good, "people") == ANN
    assert registry.count("schema_by_id") == 1


def test_deserializer_with_its_own_schema_never_asks(registry: InMemoryRegistry) -> None:
    strict = json.dumps({"type": "object", "required": ["email"]})
    data = frame(12, json.dumps(ANN).encode())
    with pytest.raises(SerializationError, match="'email' is a required property"):
        JSONDeserializer(registry, strict)(data, "people")
    assert registry.calls == []


def test_not_json_payload(registry: InMemoryRegistry) -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        JSONDeserializer(registry, validate=False)(frame(1, b"{nope"), "t")


def test_bad_framing(registry: InMemoryRegistry) -> None:
    with pytest.raises(SerializationError, match="magic byte"):
        JSONDeserializer(registry)(b'{"a": 1}', "t")
    with pytest.raises(SerializationError, match="too short"):
        JSONDeserializer(registry)(b"\x00\x00\x01", "t")


def test_tombstones(registry: InMemoryRegistry) -> None:
    assert JSONSerializer(registry, PERSON)(None, "t") is None
    assert JSONDeserializer(registry)(None, "t") is None
    assert registry.calls == []


@pytest.mark.parametrize(
    ("kwargs", "subject"),
    [
        ({}, "people-value"),
        ({"is_key": True}, "people-key"),
        ({"subject_name_strategy": record_name_strategy}, "com.example.Person"),
        ({"subject_name_strategy": topic_record_name_strategy}, "people-com.example.Person"),
    ],
)
def test_subject_names(registry: InMemoryRegistry, kwargs: dict, subject: str) -> None:
    JSONSerializer(registry, PERSON, **kwargs)(ANN, "people")
    assert list(registry.subjects) == [subject]


def test_record_strategy_needs_a_title(registry: InMemoryRegistry) -> None:
    serializer = JSONSerializer(
        registry, '{"type": "object"}', subject_name_strategy=record_name_strategy
    )
    with pytest.raises(SerializationError, match="title"):
        serializer({}, "t")


def test_no_auto_register(registry: InMemoryRegistry) -> None:
    serializer = JSONSerializer(registry, PERSON, auto_register=False)
    with pytest.raises(SerializationError, match="not registered"):
        serializer(ANN, "people")
    schema_id = registry.register("people-value", PERSON, "JSON")
    assert unframe(serializer(ANN, "people"))[0] == schema_id


def test_registry_asked_once(registry: InMemoryRegistry) -> None:
    serializer = JSONSerializer(registry, PERSON)
    for _ in range(4):
        serializer(ANN, "people")
    assert [name for name, _ in registry.calls] == ["register"]


def test_use_latest_validates_against_the_latest(registry: InMemoryRegistry) -> None:
    registry.register("people-value", PERSON, "JSON")
    latest = json.dumps({"type": "object", "required": ["name", "email"]})
    latest_id = registry.register("people-value", latest, "JSON")
    serializer = JSONSerializer(registry, PERSON, use_latest=True)
    with pytest.raises(SerializationError, match="'email' is a required property"):
        serializer(ANN, "people")
    data = serializer({**ANN, "email": "a@x"}, "people")
    assert unframe(data)[0] == latest_id


def test_invalid_schemas(registry: InMemoryRegistry) -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        JSONSerializer(registry, "{nope")
    with pytest.raises(SerializationError, match="invalid JSON schema"):
        JSONSerializer(registry, '{"type": 5}')


def test_writer_schema_of_another_type(registry: InMemoryRegistry) -> None:
    schema_id = registry.register("t-value", '"string"', "AVRO")
    with pytest.raises(SerializationError, match="not JSON"):
        JSONDeserializer(registry)(frame(schema_id, b'"x"'), "t")


def test_unserializable_object(registry: InMemoryRegistry) -> None:
    with pytest.raises(SerializationError, match="cannot encode"):
        JSONSerializer(registry, '{"type": "object"}', validate=False)({"a": object()}, "t")
