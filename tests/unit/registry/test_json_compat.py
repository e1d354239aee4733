"""JSON Schema compatibility rules, with expectations checked against jsonschema validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from strom.registry.compat_json import json_incompatibilities

D07 = "http://json-schema.org/draft-07/schema#"
D04 = "http://json-schema.org/draft-04/schema#"


@dataclass(frozen=True)
class Schema:
    """Just the attributes json_incompatibilities reads."""

    parsed: Any
    references: tuple[tuple[str, str], ...] = ()


def check(reader: Any, writer: Any, reader_refs: Any = (), writer_refs: Any = ()) -> list[str]:
    return json_incompatibilities(
        Schema(reader, tuple(reader_refs)), Schema(writer, tuple(writer_refs))
    )


def valid(schema: Any, doc: Any, refs: Any = ()) -> bool:
    """Independent judgement by jsonschema (format assertions on)."""
    cls = validator_for(schema, default=Draft202012Validator)
    resources = [
        (name, Resource.from_contents(json.loads(text), default_specification=DRAFT202012))
        for name, text in refs
    ]
    registry = Registry().with_resources(resources)
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER).is_valid(doc)


class Case(NamedTuple):
    """reader, writer, expected "RULE at path" (None: compatible), documents.

    For a compatible case the documents are samples valid under the writer (so must be valid
    under the reader); for an incompatible one they are witnesses: valid under the writer,
    invalid under the reader.
    """

    id: str
    reader: Any
    writer: Any
    rule: str | None
    docs: list[Any]
    reader_refs: tuple[tuple[str, str], ...] = ()
    writer_refs: tuple[tuple[str, str], ...] = ()


OBJ = "object"
STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}


def obj(props: dict | None = None, **more: Any) -> dict:
    schema: dict[str, Any] = {"type": OBJ}
    if props is not None:
        schema["properties"] = props
    schema.update(more)
    return schema


LIST_NODE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "v": INT,
                "next": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/node"}]},
            },
        }
    },
    "$ref": "#/$defs/node",
}
LIST_NODE_NUMBER = json.loads(json.dumps(LIST_NODE).replace('"integer"', '"number"'))
TREE = {
    "type": "object",
    "properties": {"name": STR, "children": {"type": "array", "items": {"$ref": "#"}}},
}
TREE_TAGGED = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 10},
        "children": {"type": "array", "items": {"$ref": "#"}},
    },
    "required": ["name"],
}
KIND_A = obj({"kind": {"const": "a"}, "x": STR}, required=["kind"])
KIND_B = obj({"kind": {"const": "b"}, "y": INT}, required=["kind"])
IF_SCHEMA = {"properties": {"kind": {"const": "a"}}, "required": ["kind"]}
ADDRESS = json.dumps(obj({"street": STR}))
ADDRESS_SHORT = json.dumps(obj({"street": {"type": "string", "maxLength": 50}}))
ADDRESS_ZIP = json.dumps(obj({"street": STR, "zip": STR}, required=["zip"]))
DEFS = json.dumps({"$defs": {"id": {"type": "integer", "minimum": 0}}})
DEFS_ANY = json.dumps({"$defs": {"id": {"type": "integer"}}})

CASES = [
    # --- types
    Case("number-reads-integer", NUM, INT, None, [1, -5, 0]),
    Case("integer-reads-number", INT, NUM, "TYPE_NARROWED at #", [1.5]),
    Case(
        "property-type-changed",
        obj({"age": INT}),
        obj({"age": STR}),
        "TYPE_CHANGED at #/properties/age",
        [{"age": "x"}],
    ),
    Case("type-list-widened", {"type": ["string", "null"]}, STR, None, ["a"]),
    Case("type-list-narrowed", STR, {"type": ["string", "null"]}, "TYPE_NARROWED at #", [None]),
    Case("absent-type-reads-all", {}, STR, None, ["a"]),
    Case("type-added", STR, {}, "TYPE_NARROWED at #", [1, None]),
    # --- objects and content models
    Case(
        "property-removed-open-reader",
        obj({"a": STR}),
        obj({"a": STR, "b": INT}),
        None,
        [{"a": "x", "b": 1}],
    ),
    Case(
        "property-removed-closed-reader",
        obj({"a": STR}, additionalProperties=False),
        obj({"a": STR, "b": INT}),
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/properties/b",
        [{"a": "x", "b": 1}],
    ),
    Case(
        "property-added-closed-writer",
        obj({"a": STR, "b": STR}),
        obj({"a": STR}, additionalProperties=False),
        None,
        [{"a": "x"}, {}],
    ),
    Case(
        "property-added-open-writer",
        obj({"a": STR, "b": STR}),
        obj({"a": STR}),
        "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL at #/properties/b",
        [{"a": "x", "b": 5}],
    ),
    Case(
        "property-added-covered-by-partially-open-writer",
        obj({"b": STR}),
        obj({}, additionalProperties=STR),
        None,
        [{"b": "y", "c": "z"}],
    ),
    Case(
        "property-added-not-covered-by-partially-open-writer",
        obj({"b": STR}),
        obj({}, additionalProperties=INT),
        "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL at #/properties/b",
        [{"b": 1}],
    ),
    Case(
        "property-added-covered-by-writer-pattern",
        obj({"s_name": STR}),
        obj(patternProperties={"^s_": STR}, additionalProperties=False),
        None,
        [{"s_x": "a", "s_name": "b"}],
    ),
    Case(
        "property-added-not-covered-by-writer-pattern",
        obj({"s_name": INT}),
        obj(patternProperties={"^s_": STR}, additionalProperties=False),
        "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL at #/properties/s_name",
        [{"s_name": "a"}],
    ),
    Case(
        "property-removed-covered-by-partially-open-reader",
        obj({"a": STR}, additionalProperties=STR),
        obj({"a": STR, "b": STR}, additionalProperties=False),
        None,
        [{"a": "x", "b": "y"}],
    ),
    Case(
        "property-removed-not-covered-by-partially-open-reader",
        obj({"a": STR}, additionalProperties=STR),
        obj({"a": STR, "b": INT}, additionalProperties=False),
        "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL at #/properties/b",
        [{"b": 1}],
    ),
    Case(
        "required-subset",
        obj({"a": INT, "b": INT}, required=["a"]),
        obj({"a": INT, "b": INT}, required=["a", "b"]),
        None,
        [{"a": 1, "b": 2}],
    ),
    Case(
        "required-added",
        obj({"a": INT, "b": INT}, required=["a", "b"]),
        obj({"a": INT, "b": INT}, required=["a"]),
        "REQUIRED_ATTRIBUTE_ADDED at #/required",
        [{"a": 1}],
    ),
    Case(
        "additional-properties-closed-reader-open-writer",
        obj(additionalProperties=False),
        obj(),
        "ADDITIONAL_PROPERTIES_NARROWED at #/additionalProperties",
        [{"x": 1}],
    ),
    Case(
        "additional-properties-schema-narrower-writer",
        obj(additionalProperties=INT),
        obj(additionalProperties={"type": "integer", "minimum": 0}),
        None,
        [{"x": 3}],
    ),
    Case(
        "additional-properties-schema-narrowed",
        obj(additionalProperties=INT),
        obj(additionalProperties=NUM),
        "ADDITIONAL_PROPERTIES_NARROWED at #/additionalProperties",
        [{"x": 1.5}],
    ),
    Case(
        "reader-pattern-properties-vs-open-writer",
        obj(patternProperties={"^x_": STR}),
        obj(),
        "ADDITIONAL_PROPERTIES_NARROWED at #/patternProperties/^x_",
        [{"x_1": 5}],
    ),
    Case(
        "disjoint-pattern-properties",
        obj(patternProperties={"^s_": STR, "^i_": INT}, additionalProperties=False),
        obj(patternProperties={"^s_": STR}, additionalProperties=False),
        None,
        [{"s_a": "x"}],
    ),
    Case(
        "nested-property-narrowed",
        obj({"addr": obj({"zip": {"type": "string", "maxLength": 5}})}),
        obj({"addr": obj({"zip": STR})}),
        "MAX_LENGTH_ADDED at #/properties/addr/properties/zip",
        [{"addr": {"zip": "123456"}}],
    ),
    Case("max-properties-wider", obj(maxProperties=5), obj(maxProperties=3), None, [{"a": 1}]),
    Case(
        "max-properties-decreased",
        obj(maxProperties=2),
        obj(maxProperties=3),
        "MAX_PROPERTIES_DECREASED at #",
        [{"a": 1, "b": 2, "c": 3}],
    ),
    Case(
        "min-properties-implied-by-required",
        obj(minProperties=1),
        obj({"a": INT}, required=["a"]),
        None,
        [{"a": 1}],
    ),
    Case("min-properties-added", obj(minProperties=2), obj(), "MIN_PROPERTIES_ADDED at #", [{}]),
    Case(
        "dependent-required-implied",
        obj(dependentRequired={"a": ["b"]}),
        obj(dependentRequired={"a": ["b", "c"]}),
        None,
        [{"a": 1, "b": 2, "c": 3}, {"x": 1}],
    ),
    Case(
        "dependent-required-added",
        obj(dependentRequired={"a": ["b"]}),
        obj(),
        "DEPENDENCY_ARRAY_ADDED at #/dependentRequired/a",
        [{"a": 1}],
    ),
    Case(
        "draft7-dependencies-added",
        {"$schema": D07, "type": "object", "dependencies": {"a": ["b"]}},
        {"$schema": D07, "type": "object"},
        "DEPENDENCY_ARRAY_ADDED at #/dependencies/a",
        [{"a": 1}],
    ),
    Case(
        "dependent-schema-implied-by-required",
        obj(dependentSchemas={"a": {"required": ["b"]}}),
        obj(required=["b"]),
        None,
        [{"b": 1}, {"a": 1, "b": 2}],
    ),
    Case(
        "dependent-schema-added",
        obj(dependentSchemas={"a": {"required": ["b"]}}),
        obj(),
        "DEPENDENCY_SCHEMA_CHANGED at #/dependentSchemas/a",
        [{"a": 1}],
    ),
    Case(
        "property-names-implied-by-closed-writer",
        obj(propertyNames={"maxLength": 3}),
        obj({"ab": INT, "abc": INT}, additionalProperties=False),
        None,
        [{"ab": 1, "abc": 2}],
    ),
    Case(
        "property-names-added",
        obj(propertyNames={"maxLength": 3}),
        obj(),
        "PROPERTY_NAMES_NARROWED at #/propertyNames",
        [{"abcd": 1}],
    ),
    # --- strings
    Case(
        "max-length-wider",
        {"type": "string", "maxLength": 10},
        {"type": "string", "maxLength": 5},
        None,
        ["abcde"],
    ),
    Case(
        "max-length-decreased",
        {"type": "string", "maxLength": 5},
        {"type": "string", "maxLength": 10},
        "MAX_LENGTH_DECREASED at #",
        ["abcdefgh"],
    ),
    Case(
        "max-length-added",
        {"type": "string", "maxLength": 5},
        STR,
        "MAX_LENGTH_ADDED at #",
        ["abcdefgh"],
    ),
    Case(
        "min-length-narrower-writer",
        {"type": "string", "minLength": 2},
        {"type": "string", "minLength": 3},
        None,
        ["abc"],
    ),
    Case(
        "min-length-increased",
        {"type": "string", "minLength": 3},
        {"type": "string", "minLength": 2},
        "MIN_LENGTH_INCREASED at #",
        ["ab"],
    ),
    Case(
        "min-length-added", {"type": "string", "minLength": 1}, STR, "MIN_LENGTH_ADDED at #", [""]
    ),
    Case(
        "pattern-same",
        {"type": "string", "pattern": "^a"},
        {"type": "string", "pattern": "^a", "maxLength": 4},
        None,
        ["abc"],
    ),
    Case("pattern-added", {"type": "string", "pattern": "^a"}, STR, "PATTERN_ADDED at #", ["xyz"]),
    Case(
        "pattern-changed",
        {"type": "string", "pattern": "^a"},
        {"type": "string", "pattern": "^b"},
        "PATTERN_CHANGED at #",
        ["b"],
    ),
    Case(
        "pattern-accepts-writer-enum",
        {"type": "string", "pattern": "^a"},
        {"enum": ["ab", "ac"]},
        None,
        ["ab", "ac"],
    ),
    Case(
        "format-same",
        {"type": "string", "format": "email"},
        {"type": "string", "format": "email", "maxLength": 64},
        None,
        ["a@b.c"],
    ),
    Case(
        "format-added",
        {"type": "string", "format": "email"},
        STR,
        "FORMAT_ADDED at #",
        ["no-at-sign"],
    ),
    Case(
        "format-changed",
        {"type": "string", "format": "email"},
        {"type": "string", "format": "date"},
        "FORMAT_CHANGED at #",
        ["2020-01-01"],
    ),
    # --- enum / const
    Case("enum-extended", {"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]}, None, ["a", "b"]),
    Case(
        "enum-narrowed",
        {"enum": ["a"]},
        {"enum": ["a", "b"]},
        "ENUM_ARRAY_NARROWED at #",
        ["b"],
    ),
    Case("enum-added", {"enum": ["a"]}, STR, "ENUM_ARRAY_ADDED at #", ["z"]),
    Case(
        "enum-values-give-writer-type",
        {"type": "string", "enum": ["a", "b"]},
        {"enum": ["a"]},
        None,
        ["a"],
    ),
    Case("enum-covers-boolean-type", {"enum": [True, False]}, {"type": "boolean"}, None, [True]),
    Case("const-from-enum", {"const": "x"}, {"enum": ["x"]}, None, ["x"]),
    Case("const-changed", {"const": "x"}, {"enum": ["x", "y"]}, "CONST_CHANGED at #", ["y"]),
    Case("const-added", {"const": "x"}, STR, "CONST_ADDED at #", ["y"]),
    Case("enum-integer-equals-float", {"enum": [1]}, {"const": 1.0}, None, [1.0]),
    Case(
        "enum-boolean-is-not-integer",
        {"enum": [True]},
        {"const": 1},
        "ENUM_ARRAY_NARROWED at #",
        [1],
    ),
    # --- numbers
    Case(
        "maximum-wider",
        {"type": "number", "maximum": 100},
        {"type": "number", "maximum": 50},
        None,
        [50, -3.5],
    ),
    Case(
        "maximum-decreased",
        {"type": "number", "maximum": 50},
        {"type": "number", "maximum": 100},
        "MAXIMUM_DECREASED at #",
        [75],
    ),
    Case("maximum-added", {"type": "number", "maximum": 10}, NUM, "MAXIMUM_ADDED at #", [11]),
    Case(
        "minimum-lower",
        {"type": "number", "minimum": 0},
        {"type": "number", "minimum": 10},
        None,
        [10],
    ),
    Case(
        "minimum-increased",
        {"type": "number", "minimum": 10},
        {"type": "number", "minimum": 0},
        "MINIMUM_INCREASED at #",
        [5],
    ),
    Case(
        "exclusive-maximum-implied",
        {"type": "number", "exclusiveMaximum": 10},
        {"type": "number", "maximum": 9.5},
        None,
        [9.5],
    ),
    Case(
        "exclusive-maximum-decreased",
        {"type": "number", "exclusiveMaximum": 10},
        {"type": "number", "maximum": 10},
        "EXCLUSIVE_MAXIMUM_DECREASED at #",
        [10],
    ),
    Case(
        "integer-exclusive-maximum-rounds",
        {"type": "integer", "maximum": 9},
        {"type": "integer", "exclusiveMaximum": 10},
        None,
        [9, 0],
    ),
    Case(
        "exclusive-minimum-same",
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "number", "exclusiveMinimum": 0, "maximum": 3},
        None,
        [0.5],
    ),
    Case(
        "exclusive-minimum-increased",
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "number", "minimum": 0},
        "EXCLUSIVE_MINIMUM_INCREASED at #",
        [0],
    ),
    Case(
        "draft4-boolean-exclusive-maximum",
        {"$schema": D04, "type": "number", "maximum": 10, "exclusiveMaximum": True},
        {"$schema": D04, "type": "number", "maximum": 10},
        "EXCLUSIVE_MAXIMUM_DECREASED at #",
        [10],
    ),
    Case(
        "multiple-of-divides",
        {"type": "integer", "multipleOf": 5},
        {"type": "integer", "multipleOf": 10},
        None,
        [20],
    ),
    Case(
        "multiple-of-changed",
        {"type": "integer", "multipleOf": 10},
        {"type": "integer", "multipleOf": 5},
        "MULTIPLE_OF_CHANGED at #",
        [5],
    ),
    Case(
        "multiple-of-added",
        {"type": "integer", "multipleOf": 2},
        INT,
        "MULTIPLE_OF_ADDED at #",
        [3],
    ),
    Case("multiple-of-half-reads-integers", {"type": "number", "multipleOf": 0.5}, INT, None, [3]),
    Case(
        "bound-checks-writer-enum",
        {"type": "integer", "maximum": 3},
        {"enum": [1, 2, 3]},
        None,
        [1, 3],
    ),
    # --- arrays
    Case(
        "items-widened",
        {"type": "array", "items": NUM},
        {"type": "array", "items": INT},
        None,
        [[1, 2]],
    ),
    Case(
        "items-narrowed",
        {"type": "array", "items": INT},
        {"type": "array", "items": NUM},
        "TYPE_NARROWED at #/items",
        [[1.5]],
    ),
    Case(
        "tuple-item-added-closed-writer",
        {"type": "array", "prefixItems": [STR, INT]},
        {"type": "array", "prefixItems": [STR], "items": False},
        None,
        [["a"], []],
    ),
    Case(
        "tuple-item-added-open-writer",
        {"type": "array", "prefixItems": [STR, INT]},
        {"type": "array", "prefixItems": [STR]},
        "ITEM_ADDED_TO_OPEN_CONTENT_MODEL at #/prefixItems/1",
        [["a", "b"]],
    ),
    Case(
        "tuple-item-added-covered-by-partially-open-writer",
        {"type": "array", "prefixItems": [STR, STR]},
        {"type": "array", "prefixItems": [STR], "items": STR},
        None,
        [["a", "b", "c"]],
    ),
    Case(
        "tuple-item-added-not-covered-by-partially-open-writer",
        {"type": "array", "prefixItems": [STR, INT]},
        {"type": "array", "prefixItems": [STR], "items": STR},
        "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL at #/prefixItems/1",
        [["a", "b"]],
    ),
    Case(
        "tuple-item-removed-closed-reader",
        {"type": "array", "prefixItems": [STR], "items": False},
        {"type": "array", "prefixItems": [STR, INT]},
        "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/items",
        [["a", 1]],
    ),
    Case(
        "tuple-item-removed-not-covered-by-partially-open-reader",
        {"type": "array", "prefixItems": [STR], "items": STR},
        {"type": "array", "prefixItems": [STR, INT]},
        "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL at #/items",
        [["a", 1]],
    ),
    Case(
        "draft7-additional-items-open-reader",
        {"$schema": D07, "type": "array", "items": [STR]},
        {"$schema": D07, "type": "array", "items": [STR], "additionalItems": False},
        None,
        [["a"]],
    ),
    Case(
        "draft7-additional-items-removed",
        {"$schema": D07, "type": "array", "items": [STR], "additionalItems": False},
        {"$schema": D07, "type": "array", "items": [STR]},
        "ADDITIONAL_ITEMS_REMOVED at #/additionalItems",
        [["a", 1]],
    ),
    Case(
        "max-items-implied-by-closed-tuple",
        {"type": "array", "maxItems": 3},
        {"type": "array", "prefixItems": [INT, INT], "items": False},
        None,
        [[1, 2]],
    ),
    Case(
        "max-items-decreased",
        {"type": "array", "maxItems": 2},
        {"type": "array", "maxItems": 3},
        "MAX_ITEMS_DECREASED at #",
        [[1, 2, 3]],
    ),
    Case(
        "min-items-narrower-writer",
        {"type": "array", "minItems": 1},
        {"type": "array", "minItems": 2},
        None,
        [[1, 2]],
    ),
    Case(
        "min-items-added",
        {"type": "array", "minItems": 1},
        {"type": "array"},
        "MIN_ITEMS_ADDED at #",
        [[]],
    ),
    Case(
        "unique-items-removed",
        {"type": "array"},
        {"type": "array", "uniqueItems": True},
        None,
        [[1, 2]],
    ),
    Case(
        "unique-items-implied-by-max-items",
        {"type": "array", "uniqueItems": True},
        {"type": "array", "maxItems": 1},
        None,
        [[1], []],
    ),
    Case(
        "unique-items-added",
        {"type": "array", "uniqueItems": True},
        {"type": "array"},
        "UNIQUE_ITEMS_ADDED at #",
        [[1, 1]],
    ),
    Case(
        "contains-wider",
        {"type": "array", "contains": NUM},
        {"type": "array", "contains": INT},
        None,
        [[1, "a"]],
    ),
    Case(
        "contains-added",
        {"type": "array", "contains": INT},
        {"type": "array"},
        "CONTAINS_ADDED at #/contains",
        [[]],
    ),
    # --- combinators
    Case("any-of-reader-has-branch", {"anyOf": [INT, STR]}, STR, None, ["a"]),
    Case(
        "any-of-reader-lacks-branch",
        {"anyOf": [INT, {"type": "boolean"}]},
        STR,
        "SUM_TYPE_NARROWED at #",
        ["a"],
    ),
    Case(
        "any-of-writer-branches-covered",
        {"anyOf": [STR, NUM, {"type": "null"}]},
        {"anyOf": [INT, STR]},
        None,
        [1, "a"],
    ),
    Case("one-of-writer-branch-uncovered", INT, {"oneOf": [INT, STR]}, "TYPE_CHANGED at #", ["a"]),
    Case("one-of-ambiguous", {"oneOf": [NUM, INT]}, INT, "ONEOF_AMBIGUOUS at #", [1]),
    Case(
        "nullable-one-of",
        {"oneOf": [{"type": "null"}, STR]},
        {"oneOf": [{"type": "null"}, {"type": "string", "maxLength": 3}]},
        None,
        [None, "abc"],
    ),
    Case(
        "all-of-reader-parts-accept",
        {"allOf": [{"type": "object"}, {"required": ["a"]}]},
        obj(required=["a", "b"]),
        None,
        [{"a": 1, "b": 2}],
    ),
    Case(
        "all-of-reader-part-rejects",
        {"allOf": [{"type": "object"}, {"required": ["c"]}]},
        obj(required=["a", "b"]),
        "REQUIRED_ATTRIBUTE_ADDED at #/allOf/1/required",
        [{"a": 1, "b": 2}],
    ),
    Case(
        "all-of-writer-conjunction",
        obj({"a": STR}, required=["a"]),
        {"allOf": [obj({"a": {"type": "string", "maxLength": 3}}), {"required": ["a"]}]},
        None,
        [{"a": "x"}],
    ),
    Case(
        "one-of-required-branches",
        obj({"a": STR, "b": STR}, oneOf=[{"required": ["a"]}, {"required": ["b"]}]),
        obj(
            {"a": STR, "b": STR},
            oneOf=[{"required": ["a"]}, {"required": ["b"]}],
            description="changed",
        ),
        None,
        [{"a": "x"}, {"b": "y"}],
    ),
    Case(
        "one-of-discriminated-union",
        {"oneOf": [KIND_A, KIND_B]},
        {**KIND_A, "description": "the a variant"},
        None,
        [{"kind": "a", "x": "s"}],
    ),
    Case(
        "one-of-refs-discriminated",
        {
            "$defs": {"a": KIND_A, "b": KIND_B},
            "oneOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/b"}],
        },
        {
            "$defs": {"a": KIND_A, "b": KIND_B},
            "oneOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/b"}],
        },
        None,
        [{"kind": "a"}, {"kind": "b", "y": 1}],
    ),
    Case(
        "one-of-extended-with-overlapping-branch",
        {"oneOf": [obj({"a": STR}), obj({"b": STR})]},
        obj({"a": STR}),
        "ONEOF_AMBIGUOUS at #",
        [{"a": "x"}],
    ),
    Case(
        "one-of-true-branch-overlaps",
        {"oneOf": [True, {"multipleOf": 1, "required": ["s"]}]},
        NUM,
        "ONEOF_AMBIGUOUS at #",
        [3],
    ),
    Case("not-disjoint-type", {"not": {"type": "null"}}, STR, None, ["a"]),
    Case(
        "not-same",
        {"type": "string", "not": {"enum": ["x"]}},
        {"type": "string", "not": {"enum": ["x"]}, "maxLength": 3},
        None,
        ["a"],
    ),
    Case("not-added", {"not": {"enum": ["x"]}}, STR, "NOT_TYPE_CHANGED at #/not", ["x"]),
    Case(
        "not-changed",
        {"not": {"enum": ["x"]}},
        {"not": {"enum": ["y"]}},
        "NOT_TYPE_CHANGED at #/not",
        ["x"],
    ),
    Case(
        "if-then-same",
        obj(**{"if": IF_SCHEMA, "then": {"required": ["a"]}}),
        obj(**{"if": IF_SCHEMA, "then": {"required": ["a"]}, "description": "changed"}),
        None,
        [{"kind": "a", "a": 1}, {"kind": "b"}],
    ),
    Case(
        "if-then-added",
        obj(**{"if": IF_SCHEMA, "then": {"required": ["a"]}}),
        obj(),
        "REQUIRED_ATTRIBUTE_ADDED at #/then/required",
        [{"kind": "a"}],
    ),
    # --- references
    Case(
        "local-ref-narrowed",
        {
            "$defs": {"s": {"type": "string", "maxLength": 5}},
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/s"}},
        },
        {
            "$defs": {"s": {"type": "string", "maxLength": 10}},
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/s"}},
        },
        "MAX_LENGTH_DECREASED at #/properties/a",
        [{"a": "abcdefgh"}],
    ),
    Case(
        "local-ref-draft7-definitions",
        {
            "$schema": D07,
            "definitions": {"s": {"type": "string", "maxLength": 5}},
            "type": "object",
            "properties": {"a": {"$ref": "#/definitions/s"}},
        },
        {
            "$schema": D07,
            "definitions": {"t": {"type": "string", "maxLength": 3}},
            "type": "object",
            "properties": {"a": {"$ref": "#/definitions/t"}},
        },
        None,
        [{"a": "ab"}],
    ),
    Case(
        "named-reference-compatible",
        obj({"addr": {"$ref": "address.json"}}),
        obj({"addr": {"$ref": "address.json"}}),
        None,
        [{"addr": {"street": "x"}}],
        (("address.json", ADDRESS),),
        (("address.json", ADDRESS_SHORT),),
    ),
    Case(
        "named-reference-narrowed",
        obj({"addr": {"$ref": "address.json"}}),
        obj({"addr": {"$ref": "address.json"}}),
        "REQUIRED_ATTRIBUTE_ADDED at #/properties/addr/required",
        [{"addr": {"street": "x"}}],
        (("address.json", ADDRESS_ZIP),),
        (("address.json", ADDRESS),),
    ),
    Case(
        "named-reference-with-fragment",
        obj({"id": {"$ref": "defs.json#/$defs/id"}}),
        obj({"id": {"$ref": "defs.json#/$defs/id"}}),
        "MINIMUM_ADDED at #/properties/id",
        [{"id": -1}],
        (("defs.json", DEFS),),
        (("defs.json", DEFS_ANY),),
    ),
    Case(
        "recursive-same",
        LIST_NODE,
        json.loads(json.dumps(LIST_NODE)),
        None,
        [{"v": 1, "next": {"v": 2, "next": None}}],
    ),
    Case("recursive-widened", LIST_NODE_NUMBER, LIST_NODE, None, [{"v": 1, "next": {"v": 2}}]),
    Case(
        "recursive-narrowed",
        LIST_NODE,
        LIST_NODE_NUMBER,
        "TYPE_NARROWED at #/properties/v",
        [{"v": 1.5}, {"v": 1, "next": {"v": 1.5, "next": None}}],
    ),
    Case("recursive-tree", TREE, TREE_TAGGED, None, [{"name": "a", "children": [{"name": "b"}]}]),
    Case(
        "recursive-tree-narrowed",
        TREE_TAGGED,
        TREE,
        "REQUIRED_ATTRIBUTE_ADDED at #/required",
        [{"children": []}],
    ),
    # --- boolean schemas
    Case("reader-true", True, STR, None, ["a"]),
    Case("reader-false", False, STR, "SCHEMA_FALSE at #", ["a"]),
    Case("writer-false", STR, False, None, []),
    Case("writer-true", STR, True, "TYPE_NARROWED at #", [1]),
    Case(
        "reader-property-false",
        obj({"a": False}),
        obj({"a": STR}),
        "SCHEMA_FALSE at #/properties/a",
        [{"a": "x"}],
    ),
    Case("writer-property-false", obj({"a": INT}), obj({"a": False}), None, [{}, {"b": 1}]),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rule(case: Case) -> None:
    messages = check(case.reader, case.writer, case.reader_refs, case.writer_refs)
    for doc in case.docs:
        assert valid(case.writer, doc, case.writer_refs), f"{doc!r} must be valid for the writer"
    if case.rule is None:
        assert messages == []
        for doc in case.docs:
            assert valid(case.reader, doc, case.reader_refs), f"{doc!r} must suit the reader"
    else:
        assert any(m.startswith(case.rule + ":") for m in messages), messages
        for doc in case.docs:
            assert not valid(case.reader, doc, case.reader_refs), f"{doc!r} is no witness"


def test_message_names_rule_path_and_types() -> None:
    assert check(obj({"age": INT}), obj({"age": STR})) == [
        "TYPE_CHANGED at #/properties/age: reader type integer does not accept writer type string"
    ]


def test_identical_schemas_are_compatible() -> None:
    for case in CASES:
        if case.reader_refs:
            continue
        assert check(case.reader, case.reader) == [], case.id
        assert check(case.writer, case.writer) == [], case.id


def test_unresolved_reader_reference() -> None:
    messages = check({"$ref": "missing.json"}, STR)
    assert messages and messages[0].startswith("REF_UNRESOLVED at #:")
    assert check({"$ref": "missing.json"}, {"$ref": "missing.json"}) == []


def test_references_matched_by_id_and_anchor() -> None:
    reader = {"$id": "https://example.com/root.json", "$ref": "address.json"}
    refs = (("https://example.com/address.json", ADDRESS_ZIP),)
    assert check(reader, obj({"street": STR, "zip": STR}, required=["zip"]), refs) == []
    anchored = {
        "$defs": {"s": {"$anchor": "short", "type": "string", "maxLength": 3}},
        "$ref": "#short",
    }
    assert check(anchored, {"type": "string", "maxLength": 2}) == []
    assert check(anchored, STR)[0].startswith("MAX_LENGTH_ADDED at #:")


def test_json_text_and_references_as_text() -> None:
    parsed = json.dumps(obj({"a": STR}))
    assert json_incompatibilities(Schema(json.loads(parsed)), Schema(json.loads(parsed))) == []


def test_draft7_ref_siblings_are_ignored() -> None:
    schema = {"$schema": D07, "definitions": {"s": STR}, "$ref": "#/definitions/s", "maxLength": 2}
    # draft-07 ignores maxLength next to $ref: the reader accepts any string
    assert check(schema, STR) == []
    assert valid(schema, "abcdef")
    newer = {"$defs": {"s": STR}, "$ref": "#/$defs/s", "maxLength": 2}
    assert check(newer, STR)[0].startswith("MAX_LENGTH_ADDED at #:")


def test_unevaluated_properties_in_plain_node_act_as_additional() -> None:
    reader = obj({"a": STR}, unevaluatedProperties=False)
    assert check(reader, obj({"a": STR}, additionalProperties=False)) == []
    assert check(reader, obj({"a": STR, "b": STR}))[0].startswith(
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/properties/b:"
    )
    composed = {"allOf": [obj({"a": STR})], "unevaluatedProperties": False}
    assert any(m.startswith("UNSUPPORTED_KEYWORD") for m in check(composed, obj({"b": STR})))


def test_many_alternatives_stay_bounded() -> None:
    def writer(count: int) -> dict:
        return {
            "allOf": [{"oneOf": [{"type": "integer", "minimum": i}, STR]} for i in range(count)]
        }

    assert check({"type": ["integer", "string"]}, writer(6)) == []  # 64 alternatives
    assert check(INT, writer(6))  # strings reach the integer reader
    # 4096 alternatives: the writer's disjunctions are dropped, so the verdict is conservative
    assert check({"type": ["integer", "string"]}, writer(12))
    assert check(True, writer(12)) == []


def test_one_of_overlap_with_bare_type_branch() -> None:
    assert check({"oneOf": [INT, NUM]}, NUM)[0].startswith("ONEOF_AMBIGUOUS at #:")
    assert not valid({"oneOf": [INT, NUM]}, 0) and valid(NUM, 0)
    assert check({"oneOf": [INT, NUM]}, {"type": "number", "enum": [1.5]}) == []


# --- soundness sweep: whenever the checker says "compatible", jsonschema must agree on samples

POOL_SCHEMAS: list[Any] = [
    True,
    False,
    {},
    STR,
    INT,
    NUM,
    {"type": ["string", "null"]},
    {"type": "string", "maxLength": 3},
    {"type": "string", "minLength": 2},
    {"type": "string", "pattern": "^a"},
    {"enum": ["a", "ab", 1]},
    {"const": "ab"},
    {"type": "integer", "minimum": 0, "maximum": 10},
    {"type": "number", "exclusiveMaximum": 10},
    {"type": "integer", "multipleOf": 2},
    obj({"a": STR}),
    obj({"a": STR}, additionalProperties=False),
    obj({"a": STR}, required=["a"]),
    obj({"a": INT, "b": STR}, additionalProperties=False),
    obj(additionalProperties=INT),
    obj(patternProperties={"^x": INT}),
    obj(maxProperties=1),
    obj(dependentRequired={"a": ["b"]}),
    {"type": "array", "items": INT},
    {"type": "array", "items": NUM, "maxItems": 2},
    {"type": "array", "prefixItems": [STR], "items": False},
    {"type": "array", "prefixItems": [STR, INT]},
    {"type": "array", "uniqueItems": True},
    {"type": "array", "contains": INT},
    {"anyOf": [INT, STR]},
    {"oneOf": [NUM, INT]},
    {"oneOf": [{"type": "null"}, obj({"a": STR})]},
    {"allOf": [obj({"a": STR}), {"required": ["a"]}]},
    {"not": {"type": "string"}},
    {"if": {"type": "integer"}, "then": {"minimum": 5}, "else": STR},
    {"$defs": {"n": {"type": "integer", "maximum": 5}}, "$ref": "#/$defs/n"},
]
POOL_DOCS: list[Any] = [
    None,
    True,
    0,
    1,
    2,
    3,
    6,
    12,
    -4,
    1.5,
    9.5,
    "",
    "a",
    "ab",
    "abcd",
    "b",
    [],
    [1],
    [1, 1],
    [1, 2, 3],
    [1.5],
    ["a"],
    ["a", 1],
    ["a", 1, "x"],
    {},
    {"a": "x"},
    {"a": 1},
    {"a": "x", "b": "y"},
    {"a": 1, "b": "y"},
    {"b": 1},
    {"x1": 1},
    {"x1": "s"},
    {"a": "x", "z": 2},
]


def test_compatible_verdicts_hold_on_samples() -> None:
    validity = [[valid(schema, doc) for doc in POOL_DOCS] for schema in POOL_SCHEMAS]
    compatible_pairs = 0
    for r, reader in enumerate(POOL_SCHEMAS):
        for w, writer in enumerate(POOL_SCHEMAS):
            if check(reader, writer):
                continue
            compatible_pairs += 1
            for d, doc in enumerate(POOL_DOCS):
                if validity[w][d]:
                    assert validity[r][d], (reader, writer, doc)
    assert compatible_pairs > len(POOL_SCHEMAS) * 2  # the sweep is not vacuous
