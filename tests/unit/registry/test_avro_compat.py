"""Tests for Avro schema resolution compatibility (strom.registry.compat_avro)."""

from __future__ import annotations

import json

import pytest

from strom.registry.compat_avro import (
    FIXED_SIZE_MISMATCH,
    MISSING_ENUM_SYMBOLS,
    MISSING_UNION_BRANCH,
    NAME_MISMATCH,
    READER_FIELD_MISSING_DEFAULT_VALUE,
    TYPE_MISMATCH,
    avro_incompatibilities,
    check_avro,
)
from strom.registry.schemas import ParsedSchema, parse_schema


def avro(value: object, refs: tuple[tuple[str, str], ...] = ()) -> ParsedSchema:
    return parse_schema(None, json.dumps(value), refs)


def record(name: str, fields: list[dict], **extra: object) -> dict:
    return {"type": "record", "name": name, "fields": fields, **extra}


def enum(symbols: list[str], name: str = "E", **extra: object) -> dict:
    return {"type": "enum", "name": name, "symbols": symbols, **extra}


def problems(reader: object, writer: object) -> list[tuple[str, str]]:
    """(error type, path) of each reason `reader` cannot read what `writer` wrote."""
    return [(p.error_type, p.path) for p in check_avro(avro(reader).parsed, avro(writer).parsed)]


def compatible(reader: object, writer: object) -> bool:
    return not problems(reader, writer)


# --- primitives and promotions ----------------------------------------------------------------

PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
# (writer, reader) promotions allowed by the Avro spec
PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}


@pytest.mark.parametrize("writer", PRIMITIVES)
@pytest.mark.parametrize("reader", PRIMITIVES)
def test_primitive_pairs(reader: str, writer: str) -> None:
    expected_ok = reader == writer or (writer, reader) in PROMOTIONS
    found = problems(reader, writer)
    if expected_ok:
        assert found == []
    else:
        assert found == [(TYPE_MISMATCH, "/")]


def test_type_mismatch_message() -> None:
    (message,) = avro_incompatibilities(avro("int"), avro("long"))
    assert "errorType:'TYPE_MISMATCH'" in message
    assert "path '/'" in message
    assert "reader type: INT not compatible with writer type: LONG" in message


def test_promotion_inside_record_field() -> None:
    reader = record("R", [{"name": "a", "type": "long"}])
    writer = record("R", [{"name": "a", "type": "int"}])
    assert compatible(reader, writer)
    assert problems(writer, reader) == [(TYPE_MISMATCH, "/fields/0/type")]


def test_named_vs_primitive_mismatch() -> None:
    assert problems(record("R", []), "string") == [(TYPE_MISMATCH, "/")]
    assert problems(enum(["A"]), "string") == [(TYPE_MISMATCH, "/")]
    assert problems({"type": "array", "items": "int"}, {"type": "map", "values": "int"}) == [
        (TYPE_MISMATCH, "/")
    ]


# --- records ----------------------------------------------------------------------------------

V1 = record("User", [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}])


def test_identical_records() -> None:
    assert compatible(V1, V1)


def test_reader_adds_field_with_default() -> None:
    reader = record(
        "User",
        [
            {"name": "id", "type": "long"},
            {"name": "name", "type": "string"},
            {"name": "email", "type": ["null", "string"], "default": None},
        ],
    )
    assert compatible(reader, V1)


def test_reader_adds_field_without_default() -> None:
    reader = record(
        "User",
        [
            {"name": "id", "type": "long"},
            {"name": "name", "type": "string"},
            {"name": "email", "type": "string"},
        ],
    )
    assert problems(reader, V1) == [(READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/2")]
    (message,) = avro_incompatibilities(avro(reader), avro(V1))
    assert message == (
        "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'email' at "
        "path '/fields/2' in the reader schema has no default value and is missing in the "
        "writer schema', additionalInfo:'email'}"
    )


def test_reader_drops_field() -> None:
    reader = record("User", [{"name": "id", "type": "long"}])
    assert compatible(reader, V1)
    # the other way round the dropped field has no default
    assert problems(V1, reader) == [(READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/1")]


def test_field_order_does_not_matter() -> None:
    reader = record("User", [{"name": "name", "type": "string"}, {"name": "id", "type": "long"}])
    assert compatible(reader, V1)


def test_all_problems_reported() -> None:
    reader = record(
        "User",
        [
            {"name": "id", "type": "int"},
            {"name": "name", "type": "string"},
            {"name": "age", "type": "int"},
        ],
    )
    assert problems(reader, V1) == [
        (TYPE_MISMATCH, "/fields/0/type"),
        (READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/2"),
    ]


def test_record_rename_is_name_mismatch() -> None:
    reader = record("Person", V1["fields"])
    found = check_avro(avro(reader).parsed, avro(V1).parsed)
    assert [(p.error_type, p.path) for p in found] == [(NAME_MISMATCH, "/name")]
    assert found[0].additional_info == "expected: User"


def test_record_names_compared_unqualified() -> None:
    assert compatible({**V1, "namespace": "new.ns"}, {**V1, "namespace": "old.ns"})


def test_record_alias_relative_to_reader_namespace() -> None:
    reader = record("Person", V1["fields"], namespace="ns", aliases=["User"])
    writer = {**V1, "namespace": "ns"}
    assert compatible(reader, writer)


def test_record_alias_fully_qualified() -> None:
    reader = record("Person", V1["fields"], namespace="ns", aliases=["old.User"])
    writer = {**V1, "namespace": "old"}
    assert compatible(reader, writer)


def test_record_alias_only_applies_to_reader() -> None:
    # aliases of the writer are not used: the reader's name must match
    reader = record("Person", V1["fields"])
    writer = record("User", V1["fields"], aliases=["Person"])
    assert problems(reader, writer) == [(NAME_MISMATCH, "/name")]


def test_field_alias_matches_renamed_field() -> None:
    reader = record(
        "User",
        [
            {"name": "id", "type": "long"},
            {"name": "full_name", "type": "string", "aliases": ["name"]},
        ],
    )
    assert compatible(reader, V1)


def test_renamed_field_without_alias_or_default() -> None:
    reader = record(
        "User", [{"name": "id", "type": "long"}, {"name": "full_name", "type": "string"}]
    )
    assert problems(reader, V1) == [(READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/1")]
    with_default = record(
        "User",
        [{"name": "id", "type": "long"}, {"name": "full_name", "type": "string", "default": ""}],
    )
    assert compatible(with_default, V1)


def test_field_alias_type_still_checked() -> None:
    reader = record(
        "User",
        [{"name": "id", "type": "long"}, {"name": "full_name", "type": "int", "aliases": ["name"]}],
    )
    assert problems(reader, V1) == [(TYPE_MISMATCH, "/fields/1/type")]


def test_nested_record_paths() -> None:
    def outer(inner_fields: list[dict]) -> dict:
        inner = record("Inner", inner_fields)
        return record("Outer", [{"name": "x", "type": "int"}, {"name": "in", "type": inner}])

    reader = outer([{"name": "a", "type": "int"}, {"name": "b", "type": "string"}])
    writer = outer([{"name": "a", "type": "string"}])
    assert problems(reader, writer) == [
        (TYPE_MISMATCH, "/fields/1/type/fields/0/type"),
        (READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/1/type/fields/1"),
    ]


def test_named_type_reused_by_name_is_checked() -> None:
    def schema(symbols: list[str]) -> dict:
        return record(
            "R",
            [{"name": "first", "type": enum(symbols)}, {"name": "second", "type": "E"}],
        )

    assert compatible(schema(["A", "B", "C"]), schema(["A", "B"]))
    assert problems(schema(["A"]), schema(["A", "B"])) == [
        (MISSING_ENUM_SYMBOLS, "/fields/0/type/symbols"),
        (MISSING_ENUM_SYMBOLS, "/fields/1/type/symbols"),
    ]


def test_error_type_behaves_like_record() -> None:
    reader = {"type": "error", "name": "Oops", "fields": [{"name": "m", "type": "string"}]}
    assert compatible(reader, reader)
    assert problems(reader, {**reader, "fields": []}) == [
        (READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/0")
    ]


def test_recursive_records() -> None:
    def linked(value_type: str, extra: list[dict] | None = None) -> dict:
        return record(
            "Node",
            [{"name": "value", "type": value_type}, {"name": "next", "type": ["null", "Node"]}]
            + (extra or []),
        )

    assert compatible(linked("long"), linked("int"))
    assert problems(linked("int"), linked("long")) == [(TYPE_MISMATCH, "/fields/0/type")]
    assert problems(linked("long", [{"name": "z", "type": "int"}]), linked("long")) == [
        (READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/2")
    ]


# --- enums ------------------------------------------------------------------------------------


def test_enum_reader_has_more_symbols() -> None:
    assert compatible(enum(["A", "B", "C"]), enum(["A", "B"]))


def test_enum_symbol_order_does_not_matter() -> None:
    assert compatible(enum(["B", "A"]), enum(["A", "B"]))


def test_enum_writer_symbol_missing_in_reader() -> None:
    found = check_avro(avro(enum(["A"])).parsed, avro(enum(["A", "B", "C"])).parsed)
    assert [(p.error_type, p.path) for p in found] == [(MISSING_ENUM_SYMBOLS, "/symbols")]
    assert found[0].additional_info == "[B, C]"


def test_enum_reader_default_covers_unknown_symbols() -> None:
    assert compatible(enum(["UNKNOWN", "A"], default="UNKNOWN"), enum(["A", "B", "C"]))


def test_enum_writer_default_does_not_help() -> None:
    assert problems(enum(["A"]), enum(["A", "B"], default="A")) == [
        (MISSING_ENUM_SYMBOLS, "/symbols")
    ]


def test_enum_names() -> None:
    assert problems(enum(["A"], name="F"), enum(["A"])) == [(NAME_MISMATCH, "/name")]
    assert compatible(enum(["A"], name="F", aliases=["E"]), enum(["A"]))


def test_missing_field_of_enum_type_with_enum_default_still_needs_field_default() -> None:
    # The enum's own default is for unknown symbols; a field absent from the writer
    # needs a field default (avro.compatibility gets this wrong).
    reader = record("R", [{"name": "e", "type": enum(["A"], default="A")}])
    writer = record("R", [{"name": "x", "type": "int"}])
    assert problems(reader, writer) == [(READER_FIELD_MISSING_DEFAULT_VALUE, "/fields/0")]
    reader_defaulted = record(
        "R", [{"name": "e", "type": enum(["A"], default="A"), "default": "A"}]
    )
    assert compatible(reader_defaulted, writer)


# --- fixed ------------------------------------------------------------------------------------


def fixed(size: int, name: str = "F", **extra: object) -> dict:
    return {"type": "fixed", "name": name, "size": size, **extra}


def test_fixed_same_size() -> None:
    assert compatible(fixed(16), fixed(16))


def test_fixed_size_change() -> None:
    found = check_avro(avro(fixed(8)).parsed, avro(fixed(16)).parsed)
    assert [(p.error_type, p.path) for p in found] == [(FIXED_SIZE_MISMATCH, "/size")]
    assert found[0].additional_info == "expected: 16, found: 8"


def test_fixed_name_and_alias() -> None:
    assert problems(fixed(4, name="G"), fixed(4)) == [(NAME_MISMATCH, "/name")]
    assert compatible(fixed(4, name="G", aliases=["F"]), fixed(4))


def test_fixed_vs_bytes() -> None:
    assert problems(fixed(4), "bytes") == [(TYPE_MISMATCH, "/")]
    assert problems("bytes", fixed(4)) == [(TYPE_MISMATCH, "/")]


# --- arrays and maps --------------------------------------------------------------------------


def test_array_items() -> None:
    assert compatible({"type": "array", "items": "long"}, {"type": "array", "items": "int"})
    assert problems({"type": "array", "items": "int"}, {"type": "array", "items": "long"}) == [
        (TYPE_MISMATCH, "/items")
    ]


def test_map_values() -> None:
    assert compatible({"type": "map", "values": "double"}, {"type": "map", "values": "float"})
    assert problems({"type": "map", "values": "string"}, {"type": "map", "values": "int"}) == [
        (TYPE_MISMATCH, "/values")
    ]


def test_array_of_records() -> None:
    def schema(fields: list[dict]) -> dict:
        return {"type": "array", "items": record("I", fields)}

    assert problems(schema([{"name": "a", "type": "int"}]), schema([])) == [
        (READER_FIELD_MISSING_DEFAULT_VALUE, "/items/fields/0")
    ]


# --- unions -----------------------------------------------------------------------------------


def test_union_reader_superset_of_writer() -> None:
    assert compatible(["null", "string", "int"], ["null", "string"])


def test_union_branch_order_does_not_matter() -> None:
    assert compatible(["string", "null"], ["null", "string"])


def test_union_writer_branch_missing_in_reader() -> None:
    found = check_avro(avro(["null", "int"]).parsed, avro(["null", "int", "string"]).parsed)
    assert [(p.error_type, p.path) for p in found] == [(MISSING_UNION_BRANCH, "/2")]
    assert found[0].additional_info == "reader union lacking writer type: STRING"


def test_union_branches_promote() -> None:
    assert compatible(["null", "long"], ["null", "int"])
    assert problems(["null", "int"], ["null", "long"]) == [(MISSING_UNION_BRANCH, "/1")]


def test_reader_union_writer_plain() -> None:
    assert compatible(["null", "string"], "string")
    assert compatible(["null", "double"], "int")
    assert problems(["null", "string"], "int") == [(MISSING_UNION_BRANCH, "/")]


def test_writer_union_reader_plain() -> None:
    assert compatible("long", ["int", "long"])
    assert problems("string", ["null", "string"]) == [(TYPE_MISMATCH, "/0")]
    assert compatible("null", ["null"])


def test_union_field_made_optional_and_back() -> None:
    plain = record("R", [{"name": "a", "type": "string"}])
    optional = record("R", [{"name": "a", "type": ["null", "string"], "default": None}])
    assert compatible(optional, plain)
    assert problems(plain, optional) == [(TYPE_MISMATCH, "/fields/0/type/0")]


def test_union_of_named_types() -> None:
    a = record("A", [{"name": "x", "type": "int"}])
    b = record("B", [{"name": "y", "type": "int"}])
    a_renamed = record("A2", [{"name": "x", "type": "int"}], aliases=["A"])
    assert compatible([a, b], [b])
    assert compatible([a_renamed, b], [a, b])
    assert problems([b], [a]) == [(MISSING_UNION_BRANCH, "/0")]
    # a branch of the right name but unreadable content does not count
    a_needs_z = record("A", [{"name": "x", "type": "int"}, {"name": "z", "type": "int"}])
    assert problems([a_needs_z, b], [a, b]) == [(MISSING_UNION_BRANCH, "/0")]


# --- logical types ----------------------------------------------------------------------------


def test_logical_types_compared_by_underlying_type() -> None:
    def decimal(precision: int, scale: int) -> dict:
        return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}

    assert compatible(decimal(10, 2), decimal(8, 4))
    assert compatible("bytes", decimal(8, 2))
    assert compatible({"type": "long", "logicalType": "timestamp-millis"}, "long")
    assert compatible(
        {"type": "long", "logicalType": "timestamp-micros"},
        {"type": "int", "logicalType": "date"},
    )
    assert problems(
        {"type": "int", "logicalType": "date"},
        {"type": "long", "logicalType": "timestamp-millis"},
    ) == [(TYPE_MISMATCH, "/")]


def test_fixed_decimal_size_still_checked() -> None:
    def dec(size: int) -> dict:
        return fixed(size, logicalType="decimal", precision=4, scale=2)

    assert compatible(dec(4), dec(4))
    assert problems(dec(4), dec(8)) == [(FIXED_SIZE_MISMATCH, "/size")]


# --- references -------------------------------------------------------------------------------


def test_schemas_with_references() -> None:
    def address(fields: list[dict]) -> tuple[tuple[str, str], ...]:
        text = json.dumps(record("Address", fields, namespace="com.acme"))
        return (("com.acme.Address", text),)

    person = record("Person", [{"name": "home", "type": "com.acme.Address"}])
    old = avro(person, address([{"name": "street", "type": "string"}]))
    new_ok = avro(
        person,
        address(
            [{"name": "street", "type": "string"}, {"name": "zip", "type": "string", "default": ""}]
        ),
    )
    new_bad = avro(
        person,
        address([{"name": "street", "type": "string"}, {"name": "zip", "type": "string"}]),
    )
    assert avro_incompatibilities(new_ok, old) == []
    (message,) = avro_incompatibilities(new_bad, old)
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in message
    assert "/fields/0/type/fields/1" in message
