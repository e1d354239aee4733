"""Tests of the Avro serializer and deserializer against an in-memory registry."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from strom.serde import (
    AvroDeserializer,
    AvroSerializer,
    RegistryError,
    SerializationError,
    frame,
    record_name_strategy,
    topic_record_name_strategy,
    unframe,
)
from tests.unit.serde.registry_double import InMemoryRegistry


def avro(schema: object) -> str:
    return json.dumps(schema)


ADDRESS = {
    "type": "record",
    "name": "Address",
    "fields": [
        {"name": "street", "type": "string"},
        {"name": "zip", "type": ["null", "string"], "default": None},
    ],
}

STATUS = {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}
LINE = {
    "type": "record",
    "name": "Line",
    "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}],
}
ORDER = avro(
    {
        "type": "record",
        "name": "Order",
        "namespace": "com.example",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "home", "type": ADDRESS},
            {"name": "work", "type": ["null", "Address"], "default": None},
            {"name": "status", "type": STATUS},
            {"name": "tag", "type": {"type": "fixed", "name": "Tag", "size": 2}},
            {"name": "lines", "type": {"type": "array", "items": LINE}},
            {"name": "attrs", "type": {"type": "map", "values": "string"}},
            {"name": "note", "type": ["null", "string", "long"]},
        ],
    }
)

ORDER_VALUE = {
    "id": 42,
    "home": {"street": "Main St 1", "zip": "12345"},
    "work": {"street": "Dock 7", "zip": None},
    "status": "PAID",
    "tag": b"\x01\x02",
    "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 3}],
    "attrs": {"channel": "web"},
    "note": 7,
}


@pytest.fixture
def registry() -> InMemoryRegistry:
    return InMemoryRegistry()


def test_round_trip_nested_named_types_and_unions(registry: InMemoryRegistry) -> None:
    data = AvroSerializer(registry, ORDER)(ORDER_VALUE, "orders")
    assert data is not None
    schema_id, _ = unframe(data)
    assert registry.subjects == {"orders-value": [schema_id]}
    assert AvroDeserializer(registry)(data, "orders") == ORDER_VALUE
    for note in (None, "text"):
        value = {**ORDER_VALUE, "note": note, "work": None}
        assert AvroDeserializer(registry)(AvroSerializer(registry, ORDER)(value, "o"), "o") == value


def test_round_trip_logical_types(registry: InMemoryRegistry) -> None:
    schema = avro(
        {
            "type": "record",
            "name": "Payment",
            "fields": [
                {"name": "day", "type": {"type": "int", "logicalType": "date"}},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {
                    "name": "amount",
                    "type": {
                        "type": "bytes",
                        "logicalType": "decimal",
                        "precision": 10,
                        "scale": 2,
                    },
                },
            ],
        }
    )
    value = {
        "day": date(2024, 2, 29),
        "at": datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC),
        "amount": Decimal("-12345.67"),
    }
    data = AvroSerializer(registry, schema)(value, "payments")
    assert AvroDeserializer(registry)(data, "payments") == value


V1 = avro(
    {
        "type": "record",
        "name": "User",
        "fields": [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}],
    }
)
V2 = avro(
    {
        "type": "record",
        "name": "User",
        "fields": [
            {"name": "id", "type": "int"},
            {"name": "name", "type": "string"},
            {"name": "email", "type": "string", "default": "unknown"},
        ],
    }
)


def test_new_reader_reads_old_data(registry: InMemoryRegistry) -> None:
    old = AvroSerializer(registry, V1)({"id": 1, "name": "ann"}, "users")
    assert AvroDeserializer(registry, V2)(old, "users") == {
        "id": 1,
        "name": "ann",
        "email": "unknown",
    }


def test_old_reader_reads_new_data(registry: InMemoryRegistry) -> None:
    new = AvroSerializer(registry, V2)({"id": 2, "name": "bob", "email": "b@x"}, "users")
    assert AvroDeserializer(registry, V1)(new, "users") == {"id": 2, "name": "bob"}


def test_type_promotion_follows_avro_rules(registry: InMemoryRegistry) -> None:
    def user(id_type: str) -> str:
        fields = [{"name": "id", "type": id_type}, {"name": "name", "type": "string"}]
        return avro({"type": "record", "name": "User", "fields": fields})

    data = AvroSerializer(registry, user("int"))({"id": 5, "name": "x"}, "users")
    assert AvroDeserializer(registry, user("double"))(data, "users") == {"id": 5.0, "name": "x"}
    wide = AvroSerializer(registry, user("long"))({"id": 2**40, "name": "x"}, "users")
    with pytest.raises(SerializationError, match="long is not int"):
        AvroDeserializer(registry, user("int"))(wide, "users")


def test_unresolvable_reader_is_a_serialization_error(registry: InMemoryRegistry) -> None:
    reader = avro(
        {
            "type": "record",
            "name": "User",
            "fields": [{"name": "id", "type": "int"}, {"name": "age", "type": "int"}],
        }
    )
    data = AvroSerializer(registry, V1)({"id": 1, "name": "ann"}, "users")
    with pytest.raises(SerializationError, match="cannot decode"):
        AvroDeserializer(registry, reader)(data, "users")


def test_tombstones_pass_through(registry: InMemoryRegistry) -> None:
    assert AvroSerializer(registry, V1)(None, "users") is None
    assert AvroDeserializer(registry)(None, "users") is None
    assert registry.calls == []


def test_bad_framing(registry: InMemoryRegistry) -> None:
    deserializer = AvroDeserializer(registry)
    with pytest.raises(SerializationError, match="magic byte"):
        deserializer(b"\x07\x00\x00\x00\x01\x02", "t")
    with pytest.raises(SerializationError, match="too short"):
        deserializer(b"\x00\x00", "t")


def test_truncated_payload(registry: InMemoryRegistry) -> None:
    data = AvroSerializer(registry, V1)({"id": 1, "name": "ann"}, "users")
    assert data is not None
    with pytest.raises(SerializationError, match="cannot decode"):
        AvroDeserializer(registry)(data[:-2], "users")


def test_object_not_matching_the_schema(registry: InMemoryRegistry) -> None:
    serializer = AvroSerializer(registry, V1)
    with pytest.raises(SerializationError, match="cannot encode"):
        serializer({"id": 1}, "users")
    with pytest.raises(SerializationError, match="cannot encode"):
        serializer({"id": "one", "name": "x"}, "users")


@pytest.mark.parametrize(
    ("strategy", "is_key", "subject"),
    [
        (None, False, "orders-value"),
        (None, True, "orders-key"),
        (record_name_strategy, False, "com.example.Order"),
        (topic_record_name_strategy, False, "orders-com.example.Order"),
    ],
)
def test_subject_name_strategies(
    registry: InMemoryRegistry, strategy: object, is_key: bool, subject: str
) -> None:
    kwargs = {} if strategy is None else {"subject_name_strategy": strategy}
    AvroSerializer(registry, ORDER, is_key=is_key, **kwargs)(ORDER_VALUE, "orders")
    assert list(registry.subjects) == [subject]


def test_record_strategy_needs_a_named_schema(registry: InMemoryRegistry) -> None:
    serializer = AvroSerializer(registry, '"string"', subject_name_strategy=record_name_strategy)
    with pytest.raises(SerializationError, match="named schema"):
        serializer("x", "t")


def test_primitive_schema(registry: InMemoryRegistry) -> None:
    data = AvroSerializer(registry, '"string"', is_key=True)("k1", "t")
    assert data == frame(1, b"\x04k1")
    assert AvroDeserializer(registry)(data, "t") == "k1"


def test_no_auto_register_with_unknown_schema(registry: InMemoryRegistry) -> None:
    serializer = AvroSerializer(registry, V1, auto_register=False)
    with pytest.raises(SerializationError, match="not registered under subject 'users-value'"):
        serializer({"id": 1, "name": "ann"}, "users")
    assert registry.count("register") == 0


def test_no_auto_register_with_known_schema(registry: InMemoryRegistry) -> None:
    registry.register("other-value", V2)
    schema_id = registry.register("users-value", V1)
    serializer = AvroSerializer(registry, V1, auto_register=False)
    data = serializer({"id": 1, "name": "ann"}, "users")
    assert unframe(data)[0] == schema_id
    serializer({"id": 2, "name": "bob"}, "users")
    assert registry.count("lookup") == 1


def test_registry_asked_once(registry: InMemoryRegistry) -> None:
    serializer, deserializer = AvroSerializer(registry, V1), AvroDeserializer(registry)
    for i in range(5):
        assert deserializer(serializer({"id": i, "name": "n"}, "users"), "users")["id"] == i
    assert registry.count("register") == 1
    assert registry.count("schema_by_id") == 1
    serializer({"id": 9, "name": "n"}, "people")
    assert registry.count("register") == 2


def test_use_latest(registry: InMemoryRegistry) -> None:
    registry.register("users-value", V1)
    v2_id = registry.register("users-value", V2)
    registry.calls.clear()
    serializer = AvroSerializer(registry, use_latest=True)
    data = serializer({"id": 1, "name": "ann", "email": "a@x"}, "users")
    assert unframe(data)[0] == v2_id
    assert registry.count("register") == 0
    assert AvroDeserializer(registry)(data, "users") == {"id": 1, "name": "ann", "email": "a@x"}


def test_schema_or_use_latest_required(registry: InMemoryRegistry) -> None:
    with pytest.raises(ValueError, match="use_latest"):
        AvroSerializer(registry)


def test_invalid_schema(registry: InMemoryRegistry) -> None:
    with pytest.raises(SerializationError, match="invalid Avro schema"):
        fields = [{"name": "a", "type": "Nope"}]
        AvroSerializer(registry, avro({"type": "record", "name": "X", "fields": fields}))(
            {"a": 1}, "t"
        )
    with pytest.raises(SerializationError, match="not valid JSON"):
        AvroSerializer(registry, "{nope")({"a": 1}, "t")


def test_writer_schema_of_another_type(registry: InMemoryRegistry) -> None:
    schema_id = registry.register("t-value", '{"type": "object"}', "JSON")
    with pytest.raises(SerializationError, match="not AVRO"):
        AvroDeserializer(registry)(frame(schema_id, b"{}"), "t")


def test_unknown_schema_id(registry: InMemoryRegistry) -> None:
    with pytest.raises(RegistryError) as info:
        AvroDeserializer(registry)(frame(99, b"\x00"), "t")
    assert info.value.error_code == 40403


COUNTRY = avro(
    {
        "type": "record",
        "name": "Country",
        "namespace": "geo",
        "fields": [{"name": "code", "type": "string"}],
    }
)
CITY = avro(
    {
        "type": "record",
        "name": "City",
        "namespace": "geo",
        "fields": [{"name": "name", "type": "string"}, {"name": "country", "type": "geo.Country"}],
    }
)
TRIP = avro(
    {
        "type": "record",
        "name": "Trip",
        "namespace": "travel",
        "fields": [
            {"name": "origin", "type": "geo.City"},
            {"name": "destination", "type": "geo.City"},
            {"name": "via", "type": ["null", "geo.Country"], "default": None},
        ],
    }
)
TRIP_VALUE = {
    "origin": {"name": "Oslo", "country": {"code": "NO"}},
    "destination": {"name": "Lund", "country": {"code": "SE"}},
    "via": {"code": "DK"},
}


def _register_geo(registry: InMemoryRegistry) -> list[tuple[str, str, int]]:
    registry.register("geo.Country", COUNTRY)
    registry.register("geo.City", CITY, references=[("geo.Country", "geo.Country", 1)])
    return [("geo.City", "geo.City", 1), ("geo.Country", "geo.Country", 1)]


def test_references_round_trip(registry: InMemoryRegistry) -> None:
    references = _register_geo(registry)
    serializer = AvroSerializer(registry, TRIP, references=references)
    data = serializer(TRIP_VALUE, "trips")
    schema_id, _ = unframe(data)
    assert registry.schemas[schema_id].references == tuple(references)

    fresh_calls = len(registry.calls)
    deserializer = AvroDeserializer(registry)
    assert deserializer(data, "trips") == TRIP_VALUE
    assert deserializer(data, "trips") == TRIP_VALUE
    fetched = [arg for name, arg in registry.calls[fresh_calls:] if name == "version"]
    assert sorted(fetched) == [("geo.City", 1), ("geo.Country", 1)]


def test_references_resolved_recursively(registry: InMemoryRegistry) -> None:
    _register_geo(registry)
    # Only the direct dependency: City's own reference to Country must be followed.
    serializer = AvroSerializer(
        registry,
        avro({"type": "record", "name": "Stop", "fields": [{"name": "at", "type": "geo.City"}]}),
        references=[("geo.City", "geo.City", 1)],
    )
    value = {"at": {"name": "Oslo", "country": {"code": "NO"}}}
    assert AvroDeserializer(registry)(serializer(value, "stops"), "stops") == value


def test_missing_reference_is_an_error(registry: InMemoryRegistry) -> None:
    with pytest.raises(SerializationError, match="invalid Avro schema"):
        AvroSerializer(registry, TRIP)(TRIP_VALUE, "trips")
