"""Tests for schema parsing, validation and normalization (strom.registry.schemas)."""

from __future__ import annotations

import json

import avro.schema
import pytest

from strom.registry.proto import ProtoFile
from strom.registry.schemas import InvalidSchemaError, ParsedSchema, SchemaType, parse_schema


def avro_text(value: object) -> str:
    return json.dumps(value)


def record(name: str, fields: list[dict], **extra: object) -> dict:
    return {"type": "record", "name": name, "fields": fields, **extra}


def with_default(field_type: object, default: object) -> str:
    return avro_text(record("R", [{"name": "f", "type": field_type, "default": default}]))


ADDRESS = avro_text(
    record(
        "Address",
        [{"name": "street", "type": "string"}],
        namespace="com.acme",
    )
)


# --- schema types ---------------------------------------------------------------------------


@pytest.mark.parametrize("given", [None, "", "AVRO"])
def test_missing_or_avro_type_means_avro(given: str | None) -> None:
    parsed = parse_schema(given, '"string"')
    assert parsed.schema_type is SchemaType.AVRO
    assert isinstance(parsed.parsed, avro.schema.Schema)


def test_json_and_protobuf_types() -> None:
    assert parse_schema("JSON", '{"type":"object"}').schema_type is SchemaType.JSON
    proto = parse_schema("PROTOBUF", "message M { int32 a = 1; }")
    assert proto.schema_type is SchemaType.PROTOBUF


def test_unknown_schema_type_is_invalid() -> None:
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema("XML", "<a/>")
    assert "XML" in err.value.message


def test_schema_type_is_a_string_enum() -> None:
    assert SchemaType.AVRO == "AVRO"
    assert SchemaType("PROTOBUF") is SchemaType.PROTOBUF


# --- Avro parsing -----------------------------------------------------------------------------


def test_avro_text_kept_as_given() -> None:
    text = '{ "type" : "record", "name" : "R", "fields" : [ {"name":"a","type":"int"} ] }'
    parsed = parse_schema(None, text)
    assert parsed.text == text
    assert parsed.references == ()
    assert parsed.parsed.fullname == "R"


def test_avro_record_without_fields_list_is_valid_when_empty() -> None:
    parsed = parse_schema(None, avro_text(record("Empty", [])))
    assert parsed.canonical == '{"type":"record","name":"Empty","fields":[]}'


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "",
        "42",
        '"NoSuchType"',
        '{"type":"record","name":"R"}',
        '{"type":"record","fields":[]}',
        '{"type":"record","name":"R","fields":5}',
        '{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}',
        '{"type":"record","name":"R","fields":[{"name":"a","type":"Missing"}]}',
        '{"type":"record","name":"1bad","fields":[]}',
        '{"type":"enum","name":"E","symbols":["A","A"]}',
        '{"type":"enum","name":"E","symbols":["A"],"default":"B"}',
        '{"type":"enum","name":"E","symbols":[1]}',
        '{"type":"fixed","name":"F"}',
        '{"type":"array"}',
        '{"type":"map"}',
        '["int","int"]',
        '["null",["int","string"]]',
        '{"type":"nonsense"}',
        '{"no":"type"}',
    ],
)
def test_invalid_avro_schemas(text: str) -> None:
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema("AVRO", text)
    assert err.value.message.startswith("Invalid AVRO schema")
    assert str(err.value) == err.value.message


def test_deeply_nested_json_is_invalid_not_a_crash() -> None:
    with pytest.raises(InvalidSchemaError):
        parse_schema(None, "[" * 100_000 + "]" * 100_000)


# Field defaults: the Avro spec's table of permitted JSON values per type; a union's default
# is a value of its first branch.
ENUM = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
INNER = record("Inner", [{"name": "x", "type": "int"}])
INNER_DEFAULTED = record("Inner", [{"name": "x", "type": "int", "default": 7}])


@pytest.mark.parametrize(
    ("field_type", "default"),
    [
        ("null", None),
        ("boolean", True),
        ("int", 0),
        ("int", -(2**31)),
        ("int", 2**31 - 1),
        ("long", 2**31),
        ("long", -(2**63)),
        ("float", 1.5),
        ("float", 1),
        ("double", 2.5e300),
        ("double", "NaN"),
        ("double", "-Infinity"),
        ("string", ""),
        ("bytes", "\u00ff\u0000"),
        ({"type": "fixed", "name": "F", "size": 2}, "ab"),
        (ENUM, "B"),
        ({"type": "array", "items": "int"}, [1, 2]),
        ({"type": "array", "items": "int"}, []),
        ({"type": "map", "values": "long"}, {"a": 1}),
        (["null", "int"], None),
        (["int", "null"], 3),
        (["string", "null"], "x"),
        (INNER, {"x": 1}),
        (INNER_DEFAULTED, {}),
        ({"type": "array", "items": INNER}, [{"x": 1}]),
        ({"type": "int", "logicalType": "date"}, 18000),
        ({"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}, "\u0001"),
    ],
)
def test_valid_field_defaults(field_type: object, default: object) -> None:
    parse_schema(None, with_default(field_type, default))


@pytest.mark.parametrize(
    ("field_type", "default"),
    [
        ("null", 0),
        ("boolean", 0),
        ("boolean", "true"),
        ("int", "x"),
        ("int", 1.5),
        ("int", True),
        ("int", 2**31),
        ("int", None),
        ("long", 2**63),
        ("long", "1"),
        ("float", "x"),
        ("double", False),
        ("string", 1),
        ("string", None),
        ("bytes", 5),
        ({"type": "fixed", "name": "F", "size": 2}, 1),
        (ENUM, "C"),
        (ENUM, 0),
        ({"type": "array", "items": "int"}, ["a"]),
        ({"type": "array", "items": "int"}, {}),
        ({"type": "map", "values": "long"}, {"a": "b"}),
        ({"type": "map", "values": "long"}, [1]),
        (["null", "int"], 1),
        (["int", "null"], None),
        (INNER, {}),
        (INNER, {"x": "y"}),
        (INNER, 5),
        ({"type": "long", "logicalType": "timestamp-millis"}, "2020-01-01"),
    ],
)
def test_invalid_field_defaults(field_type: object, default: object) -> None:
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema(None, with_default(field_type, default))
    assert "default" in err.value.message
    assert "'f'" in err.value.message


def test_invalid_default_found_in_nested_record() -> None:
    inner = record("Inner", [{"name": "deep", "type": "int", "default": "no"}])
    text = avro_text(record("Outer", [{"name": "i", "type": {"type": "array", "items": inner}}]))
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema(None, text)
    assert "'deep'" in err.value.message


def test_recursive_schema_parses() -> None:
    linked = record(
        "Node",
        [{"name": "value", "type": "long"}, {"name": "next", "type": ["null", "Node"]}],
    )
    parsed = parse_schema(None, avro_text(linked))
    assert parsed.canonical == (
        '{"type":"record","name":"Node","fields":[{"name":"value","type":"long"},'
        '{"name":"next","type":["null","Node"]}]}'
    )


# --- Avro normalization -----------------------------------------------------------------------


def test_normalized_form_is_compact_and_ordered() -> None:
    text = """
    {"fields": [{"type": {"type": "string"}, "name": "a", "doc": "an a", "default": "x"}],
     "namespace": "com.acme", "name": "R", "doc": "a record", "type": "record"}
    """
    parsed = parse_schema(None, text)
    assert parsed.canonical == (
        '{"type":"record","name":"com.acme.R","doc":"a record","fields":'
        '[{"name":"a","type":"string","default":"x","doc":"an a"}]}'
    )
    assert parsed.text == text


def test_normalize_replaces_text() -> None:
    text = '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}'
    parsed = parse_schema(None, text, normalize=True)
    assert parsed.text == parsed.canonical
    assert parsed.text == '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}'


@pytest.mark.parametrize(
    ("one", "other"),
    [
        # whitespace and key order
        (
            '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}',
            '{ "fields" : [ { "type" : "int", "name" : "a" } ], "name" : "R", "type" : "record" }',
        ),
        # namespace given apart or inside the name
        (
            avro_text(record("R", [{"name": "a", "type": "int"}], namespace="x.y")),
            avro_text(record("x.y.R", [{"name": "a", "type": "int"}])),
        ),
        # a primitive as a string or as an object
        ('"string"', '{"type":"string"}'),
        (
            avro_text(record("R", [{"name": "a", "type": {"type": "long"}}])),
            avro_text(record("R", [{"name": "a", "type": "long"}])),
        ),
        # a reuse of a named type by its relative or its full name
        (
            avro_text(
                record(
                    "R",
                    [{"name": "a", "type": ENUM}, {"name": "b", "type": "E"}],
                    namespace="n",
                )
            ),
            avro_text(
                record(
                    "R",
                    [{"name": "a", "type": ENUM}, {"name": "b", "type": "n.E"}],
                    namespace="n",
                )
            ),
        ),
        # an inner namespace equal to the enclosing one, written or inherited
        (
            avro_text(record("R", [{"name": "a", "type": ENUM}], namespace="n")),
            avro_text(
                record("R", [{"name": "a", "type": {**ENUM, "namespace": "n"}}], namespace="n")
            ),
        ),
        # relative and qualified aliases, in any order
        (
            avro_text(record("R", [], namespace="n", aliases=["Old", "o.Older"])),
            avro_text(record("R", [], namespace="n", aliases=["o.Older", "n.Old"])),
        ),
        # keys inside a record default
        (
            with_default(
                record("P", [{"name": "x", "type": "int"}, {"name": "y", "type": "int"}]),
                {"x": 1, "y": 2},
            ),
            with_default(
                record("P", [{"name": "x", "type": "int"}, {"name": "y", "type": "int"}]),
                {"y": 2, "x": 1},
            ),
        ),
    ],
)
def test_equal_meaning_gives_equal_canonical(one: str, other: str) -> None:
    assert one != other
    first, second = parse_schema(None, one), parse_schema(None, other)
    assert first.canonical == second.canonical
    assert (
        parse_schema(None, one, normalize=True).text
        == parse_schema(None, other, normalize=True).text
    )


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (
            avro_text(record("R", [{"name": "a", "type": "int"}])),
            avro_text(record("R", [{"name": "a", "type": "long"}])),
        ),
        (
            avro_text(record("R", [{"name": "a", "type": "int"}, {"name": "b", "type": "int"}])),
            avro_text(record("R", [{"name": "b", "type": "int"}, {"name": "a", "type": "int"}])),
        ),
        (
            avro_text(record("R", [{"name": "a", "type": "int"}], doc="one")),
            avro_text(record("R", [{"name": "a", "type": "int"}], doc="two")),
        ),
        (with_default("int", 1), with_default("int", 2)),
        (
            avro_text(record("R", [], namespace="x")),
            avro_text(record("R", [], namespace="y")),
        ),
        (
            '{"type":"enum","name":"E","symbols":["A","B"]}',
            '{"type":"enum","name":"E","symbols":["B","A"]}',
        ),
        ('{"type":"long","logicalType":"timestamp-millis"}', '"long"'),
    ],
)
def test_different_meaning_gives_different_canonical(one: str, other: str) -> None:
    assert parse_schema(None, one).canonical != parse_schema(None, other).canonical


def test_normalized_form_keeps_properties_and_parses_to_itself() -> None:
    text = avro_text(
        {
            "type": "record",
            "name": "R",
            "namespace": "n",
            "aliases": ["Old"],
            "x-custom": {"b": 1, "a": 2},
            "fields": [
                {
                    "name": "amount",
                    "type": {
                        "type": "bytes",
                        "logicalType": "decimal",
                        "precision": 9,
                        "scale": 2,
                    },
                    "aliases": ["sum"],
                    "order": "descending",
                    "note": "custom",
                },
                {"name": "id", "type": {"type": "fixed", "name": "Id", "size": 16}},
                {"name": "kind", "type": {**ENUM, "default": "A"}, "default": "B"},
                {
                    "name": "tags",
                    "type": {"type": "map", "values": {"type": "array", "items": "Id"}},
                },
            ],
        }
    )
    parsed = parse_schema(None, text)
    assert parsed.canonical == (
        '{"type":"record","name":"n.R","aliases":["n.Old"],"fields":['
        '{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2},'
        '"order":"descending","aliases":["sum"],"note":"custom"},'
        '{"name":"id","type":{"type":"fixed","name":"n.Id","size":16}},'
        '{"name":"kind","type":{"type":"enum","name":"n.E","symbols":["A","B"],"default":"A"},'
        '"default":"B"},'
        '{"name":"tags","type":{"type":"map","values":{"type":"array","items":"n.Id"}}}],'
        '"x-custom":{"a":2,"b":1}}'
    )
    again = parse_schema(None, parsed.canonical)
    assert again.canonical == parsed.canonical


# --- Avro references ----------------------------------------------------------------------------


def test_reference_types_usable_by_full_name() -> None:
    text = avro_text(record("Person", [{"name": "home", "type": "com.acme.Address"}]))
    parsed = parse_schema(None, text, [("com.acme.Address", ADDRESS)])
    assert parsed.references == (("com.acme.Address", ADDRESS),)
    home = parsed.parsed.fields[0].type
    assert home.fullname == "com.acme.Address"
    # the referenced type is named, not inlined, in the normalized form
    assert parsed.canonical == (
        '{"type":"record","name":"Person","fields":[{"name":"home","type":"com.acme.Address"}]}'
    )


def test_reference_usable_by_relative_name_in_same_namespace() -> None:
    text = avro_text(record("Person", [{"name": "home", "type": "Address"}], namespace="com.acme"))
    parsed = parse_schema(None, text, [("com.acme.Address", ADDRESS)])
    assert parsed.canonical == (
        '{"type":"record","name":"com.acme.Person","fields":'
        '[{"name":"home","type":"com.acme.Address"}]}'
    )


def test_reference_missing_is_invalid() -> None:
    text = avro_text(record("Person", [{"name": "home", "type": "com.acme.Address"}]))
    with pytest.raises(InvalidSchemaError):
        parse_schema(None, text)


def test_chained_references_dependencies_first() -> None:
    city = avro_text(record("City", [{"name": "name", "type": "string"}], namespace="geo"))
    place = avro_text(record("Place", [{"name": "city", "type": "geo.City"}], namespace="geo"))
    text = avro_text(record("Trip", [{"name": "to", "type": "geo.Place"}]))
    parsed = parse_schema(None, text, [("geo.City", city), ("geo.Place", place)])
    assert parsed.parsed.fields[0].type.fields[0].type.fullname == "geo.City"
    with pytest.raises(InvalidSchemaError):
        parse_schema(None, text, [("geo.Place", place), ("geo.City", city)])


def test_invalid_reference_names_the_reference() -> None:
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema(None, '"string"', [("broken", '{"type":"record"}')])
    assert "broken" in err.value.message


def test_schema_redefining_a_referenced_name_is_invalid() -> None:
    with pytest.raises(InvalidSchemaError):
        parse_schema(None, ADDRESS, [("com.acme.Address", ADDRESS)])


def test_whole_schema_may_be_a_referenced_name() -> None:
    parsed = parse_schema(None, '"com.acme.Address"', [("com.acme.Address", ADDRESS)])
    assert parsed.parsed.fullname == "com.acme.Address"
    assert parsed.canonical == '"com.acme.Address"'


# --- JSON Schema --------------------------------------------------------------------------------


def test_json_schema_parses_to_dict() -> None:
    text = '{"type": "object", "properties": {"a": {"type": "string"}}}'
    parsed = parse_schema("JSON", text)
    assert parsed.parsed == {"type": "object", "properties": {"a": {"type": "string"}}}
    assert parsed.text == text
    assert parsed.canonical == '{"properties":{"a":{"type":"string"}},"type":"object"}'


def test_json_boolean_schema() -> None:
    assert parse_schema("JSON", "true").parsed is True
    assert parse_schema("JSON", "false").canonical == "false"


@pytest.mark.parametrize(
    "text",
    [
        "{bad",
        "[]",
        '"string"',
        "3",
        '{"type": 5}',
        '{"type": "nothing"}',
        '{"minLength": -1}',
        '{"properties": {"a": {"type": "strin"}}}',
        '{"$schema": "http://json-schema.org/draft-07/schema#", "required": "a"}',
    ],
)
def test_invalid_json_schemas(text: str) -> None:
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema("JSON", text)
    assert err.value.message.startswith("Invalid JSON schema")


def test_json_normalize_sorts_keys() -> None:
    one = '{"type": "object", "required": ["a"], "properties": {"b": {}, "a": {}}}'
    other = '{"properties":{"a":{},"b":{}},"required":["a"],"type":"object"}'
    first = parse_schema("JSON", one, normalize=True)
    assert first.text == first.canonical == other.replace(" ", "")
    assert parse_schema("JSON", other).canonical == first.canonical
    # array order is meaning
    third = parse_schema("JSON", '{"enum": [2, 1]}').canonical
    assert third != parse_schema("JSON", '{"enum": [1, 2]}').canonical


def test_json_references_checked_and_kept() -> None:
    ref = '{"type": "string", "minLength": 1}'
    parsed = parse_schema("JSON", '{"$ref": "name.json"}', [("name.json", ref)])
    assert parsed.references == (("name.json", ref),)
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema("JSON", '{"$ref": "name.json"}', [("name.json", '{"type": 1}')])
    assert "name.json" in err.value.message


def test_parsed_schema_equality_and_hash_ignore_parsed_object() -> None:
    one = parse_schema("JSON", '{"type":"object"}')
    two = parse_schema("JSON", '{"type":"object"}')
    assert one == two
    assert hash(one) == hash(two)
    assert isinstance(one, ParsedSchema)
    assert one != parse_schema("JSON", '{"type": "object"}')


# --- Protobuf -----------------------------------------------------------------------------------

PROTO = """
syntax = "proto3";
package acme;  // the package

/* a block
   comment */
message Person {
  string name = 1;
  repeated string emails = 2 [deprecated = true];
  map<string, int32> scores = 3;
  string url = 4;  // "http://x"
}
"""


def test_protobuf_parses_and_normalizes() -> None:
    parsed = parse_schema("PROTOBUF", PROTO)
    assert isinstance(parsed.parsed, ProtoFile)
    assert parsed.text == PROTO
    assert parsed.canonical == (
        'syntax="proto3";package acme;message Person{string name=1;'
        "repeated string emails=2[deprecated=true];map<string,int32>scores=3;"
        "string url=4;}"
    )
    assert parse_schema("PROTOBUF", PROTO, normalize=True).text == parsed.canonical


def test_protobuf_whitespace_and_comments_do_not_matter() -> None:
    compact = 'syntax="proto3"; package acme; message Person { string name = 1; ' + (
        "repeated string emails=2 [deprecated=true]; map<string,int32> scores=3; string url=4; }"
    )
    assert parse_schema("PROTOBUF", compact).canonical == parse_schema("PROTOBUF", PROTO).canonical


def test_protobuf_strings_kept_verbatim() -> None:
    text = 'option go_package = "a//b /* c */";\nenum E { A = 0; }'
    assert (
        parse_schema("PROTOBUF", text).canonical == 'option go_package="a//b /* c */";enum E{A=0;}'
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        'syntax = "proto3";',
        "message M { string a = 1;",
        "message M { string a = 1; }}",
        "message M { } /* open",
        'message M { string a = 1 [default = "x]; }',
        "message M { string a = 1; } #",
        "syntax proto3; message M {}",
    ],
)
def test_invalid_protobuf(text: str) -> None:
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema("PROTOBUF", text)
    assert err.value.message.startswith("Invalid PROTOBUF schema")


def test_protobuf_service_only_is_accepted() -> None:
    parse_schema(
        "PROTOBUF", "message Req {} message Resp {} service S { rpc Get (Req) returns (Resp); }"
    )
    with pytest.raises(InvalidSchemaError, match="Req"):  # its types must exist
        parse_schema("PROTOBUF", "service S { rpc Get (Req) returns (Resp); }")
