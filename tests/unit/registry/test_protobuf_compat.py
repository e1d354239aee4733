"""Tests for Protobuf compatibility (strom.registry.compat_protobuf).

Each case gives a writer (old, under BACKWARD) and a reader (new) schema and the rules expected,
worked out from the wire format: a varint field read as another varint type keeps its value
(maybe truncated), zigzag and plain varints decode to different numbers, wire types 0 (varint),
1 (64-bit), 2 (length-delimited), 3/4 (group) and 5 (32-bit) cannot stand in for each other,
unknown field numbers are skipped, and packed repeated numbers arrive length-delimited.
"""

from __future__ import annotations

import pytest

from strom.registry.compat_protobuf import check_protobuf, protobuf_incompatibilities
from strom.registry.compatibility import CompatibilityLevel, incompatibilities
from strom.registry.schemas import ParsedSchema, parse_schema

L = CompatibilityLevel


def proto(text: str, refs: list[tuple[str, str]] | None = None) -> ParsedSchema:
    return parse_schema("PROTOBUF", text, refs or [])


def p3(body: str, package: str = "shop") -> ParsedSchema:
    return proto(f'syntax = "proto3";\npackage {package};\n{body}')


def p2(body: str) -> ParsedSchema:
    return proto(f'syntax = "proto2";\npackage shop;\n{body}')


def rules(reader: ParsedSchema, writer: ParsedSchema) -> list[str]:
    return [i.rule for i in check_protobuf(reader.parsed, writer.parsed)]


def paths(reader: ParsedSchema, writer: ParsedSchema) -> list[str]:
    return [i.path for i in check_protobuf(reader.parsed, writer.parsed)]


# (writer, reader, expected rules): one compatible and one incompatible case per rule
CASES = [
    # --- nothing reported: additions, removals, renames -------------------------------------------
    pytest.param(
        p3("message Order { int64 id = 1; }"),
        p3("message Order { int64 id = 1; string note = 2; }"),
        [],
        id="field-added",
    ),
    pytest.param(
        p3("message Order { int64 id = 1; string note = 2; }"),
        p3("message Order { int64 id = 1; }"),
        [],
        id="field-removed",
    ),
    pytest.param(
        p3("message Order { int64 id = 1; }"),
        p3("message Order { int64 order_id = 1; }"),
        [],
        id="field-renamed",
    ),
    pytest.param(
        p3("message Order { int64 id = 1; }"),
        p3("message Order { int64 id = 1 [deprecated = true]; }\nmessage Extra {}"),
        [],
        id="option-and-message-added",
    ),
    # --- PACKAGE_CHANGED ---------------------------------------------------------------------------
    pytest.param(
        p3("message Order { int64 id = 1; }", package="shop"),
        proto('syntax = "proto3"; package shop; // same package\nmessage Order {int64 id=1;}'),
        [],
        id="package-same",
    ),
    pytest.param(
        p3("message Order { int64 id = 1; }", package="shop"),
        p3("message Order { int64 id = 1; }", package="store"),
        ["PACKAGE_CHANGED"],
        id="package-changed",
    ),
    # --- MESSAGE_REMOVED ---------------------------------------------------------------------------
    pytest.param(
        p3("message Order { int64 id = 1; }\nmessage Line { string sku = 1; }"),
        p3("message Order { int64 id = 1; }\nmessage Line { string sku = 1; }\nmessage New {}"),
        [],
        id="message-kept",
    ),
    pytest.param(
        p3("message Order { int64 id = 1; }\nmessage Line { string sku = 1; }"),
        p3("message Order { int64 id = 1; }"),
        ["MESSAGE_REMOVED"],
        id="message-removed",
    ),
    pytest.param(
        p3("message Order { message Line { string sku = 1; } }"),
        p3("message Order { }"),
        ["MESSAGE_REMOVED"],
        id="nested-message-removed",
    ),
    pytest.param(
        p3("message Order { int64 id = 1; }"),
        p3("message Purchase { int64 id = 1; }"),
        ["MESSAGE_REMOVED"],
        id="message-renamed",
    ),
    # --- FIELD_KIND_CHANGED ------------------------------------------------------------------------
    pytest.param(
        p3("message Order { Line line = 1; }\nmessage Line { string sku = 1; }"),
        p3("message Order { Line line = 1; }\nmessage Line { string sku = 1; int32 qty = 2; }"),
        [],
        id="kind-same",
    ),
    pytest.param(  # varint where a length-delimited message is expected
        p3("message Order { int32 line = 1; }\nmessage Line { string sku = 1; }"),
        p3("message Order { Line line = 1; }\nmessage Line { string sku = 1; }"),
        ["FIELD_KIND_CHANGED"],
        id="scalar-to-message",
    ),
    pytest.param(  # wire-equal, but Confluent treats scalar <-> enum as a kind change
        p3("message Order { int32 state = 1; }\nenum State { NEW = 0; }"),
        p3("message Order { State state = 1; }\nenum State { NEW = 0; }"),
        ["FIELD_KIND_CHANGED"],
        id="scalar-to-enum",
    ),
    pytest.param(
        p3("message Order { map<string, int32> counts = 1; }"),
        p3("message Order { repeated string counts = 1; }"),
        ["FIELD_KIND_CHANGED"],
        id="map-to-repeated-scalar",
    ),
    pytest.param(  # start-group/end-group vs length-delimited
        p2("message Order { optional group Line = 1 { optional string sku = 2; } }"),
        p2("message Order { optional Line line = 1; }\nmessage Line { optional string sku = 2; }"),
        ["FIELD_KIND_CHANGED"],
        id="group-to-message",
    ),
    # --- FIELD_SCALAR_KIND_CHANGED -----------------------------------------------------------------
    pytest.param(
        p3(
            "message M { int32 a = 1; uint32 b = 2; bool c = 3; sint32 d = 4; fixed32 e = 5; "
            "fixed64 f = 6; string g = 7; }"
        ),
        p3(
            "message M { int64 a = 1; uint64 b = 2; int32 c = 3; sint64 d = 4; sfixed32 e = 5; "
            "sfixed64 f = 6; bytes g = 7; }"
        ),
        [],
        id="scalar-same-group",
    ),
    pytest.param(  # zigzag: varint 2 reads as 1
        p3("message M { int32 a = 1; }"),
        p3("message M { sint32 a = 1; }"),
        ["FIELD_SCALAR_KIND_CHANGED"],
        id="int32-to-sint32",
    ),
    pytest.param(  # wire type 0 vs 5
        p3("message M { int32 a = 1; }"),
        p3("message M { fixed32 a = 1; }"),
        ["FIELD_SCALAR_KIND_CHANGED"],
        id="int32-to-fixed32",
    ),
    pytest.param(  # wire type 5 vs 1
        p3("message M { float a = 1; }"),
        p3("message M { double a = 1; }"),
        ["FIELD_SCALAR_KIND_CHANGED"],
        id="float-to-double",
    ),
    pytest.param(  # wire type 2 vs 0
        p3("message M { string a = 1; }"),
        p3("message M { int64 a = 1; }"),
        ["FIELD_SCALAR_KIND_CHANGED"],
        id="string-to-int64",
    ),
    # --- FIELD_NAMED_TYPE_CHANGED ------------------------------------------------------------------
    pytest.param(
        p3("message Order { Line line = 1; }\nmessage Line { string sku = 1; }"),
        p3("message Order { .shop.Line line = 1; }\nmessage Line { string sku = 1; }"),
        [],
        id="named-type-same-spelled-differently",
    ),
    pytest.param(
        p3("message Order { Line line = 1; }\nmessage Line {}\nmessage Item {}"),
        p3("message Order { Item line = 1; }\nmessage Line {}\nmessage Item {}"),
        ["FIELD_NAMED_TYPE_CHANGED"],
        id="message-type-changed",
    ),
    pytest.param(
        p3("message Order { A s = 1; }\nenum A { X = 0; }\nenum B { Y = 0; }"),
        p3("message Order { B s = 1; }\nenum A { X = 0; }\nenum B { Y = 0; }"),
        ["FIELD_NAMED_TYPE_CHANGED"],
        id="enum-type-changed",
    ),
    # --- FIELD_NUMERIC_LABEL_CHANGED (and the compatible string/bytes/message label change) -------
    pytest.param(  # last value wins / messages merge
        p3("message M { string a = 1; bytes b = 2; Sub c = 3; }\nmessage Sub {}"),
        p3(
            "message M { repeated string a = 1; repeated bytes b = 2; repeated Sub c = 3; }"
            "\nmessage Sub {}"
        ),
        [],
        id="string-bytes-message-label-changed",
    ),
    pytest.param(  # packed repeated ints arrive length-delimited
        p3("message M { repeated int32 a = 1; }"),
        p3("message M { int32 a = 1; }"),
        ["FIELD_NUMERIC_LABEL_CHANGED"],
        id="numeric-repeated-to-singular",
    ),
    pytest.param(
        p3("message M { E e = 1; }\nenum E { Z = 0; }"),
        p3("message M { repeated E e = 1; }\nenum E { Z = 0; }"),
        ["FIELD_NUMERIC_LABEL_CHANGED"],
        id="enum-singular-to-repeated",
    ),
    # --- REQUIRED_FIELD_ADDED / REQUIRED_FIELD_REMOVED ---------------------------------------------
    pytest.param(
        p2("message M { required int64 id = 1; }"),
        p2("message M { required int64 id = 1; optional string note = 2; }"),
        [],
        id="required-kept-optional-added",
    ),
    pytest.param(  # old data lacks field 2: the new parser fails on a missing required field
        p2("message M { required int64 id = 1; }"),
        p2("message M { required int64 id = 1; required string note = 2; }"),
        ["REQUIRED_FIELD_ADDED"],
        id="required-field-added",
    ),
    pytest.param(
        p2("message M { optional int64 id = 1; }"),
        p2("message M { required int64 id = 1; }"),
        ["REQUIRED_FIELD_ADDED"],
        id="optional-made-required",
    ),
    pytest.param(
        p2("message M { required int64 id = 1; required string note = 2; }"),
        p2("message M { required int64 id = 1; }"),
        ["REQUIRED_FIELD_REMOVED"],
        id="required-field-removed",
    ),
    # --- ONEOF_FIELD_REMOVED -----------------------------------------------------------------------
    pytest.param(
        p3("message M { oneof pay { string card = 1; string iban = 2; } }"),
        p3("message M { oneof pay { string card = 1; string iban = 2; string cash = 3; } }"),
        [],
        id="oneof-field-added",
    ),
    pytest.param(  # the whole oneof gone: its fields are just unknown fields
        p3("message M { oneof pay { string card = 1; string iban = 2; } int32 n = 3; }"),
        p3("message M { int32 n = 3; }"),
        [],
        id="oneof-removed",
    ),
    pytest.param(  # a value set in `iban` reads as "pay not set"
        p3("message M { oneof pay { string card = 1; string iban = 2; } }"),
        p3("message M { oneof pay { string card = 1; } }"),
        ["ONEOF_FIELD_REMOVED"],
        id="oneof-field-removed",
    ),
    # --- MULTIPLE_FIELDS_MOVED_TO_ONEOF / FIELD_MOVED_TO_EXISTING_ONEOF ----------------------------
    pytest.param(  # one field alone can never be set together with another of the oneof
        p3("message M { string card = 1; string iban = 2; }"),
        p3("message M { oneof pay { string card = 1; } string iban = 2; }"),
        [],
        id="one-field-moved-to-new-oneof",
    ),
    pytest.param(  # old writers may set both; the reader keeps only the last one
        p3("message M { string card = 1; string iban = 2; }"),
        p3("message M { oneof pay { string card = 1; string iban = 2; } }"),
        ["MULTIPLE_FIELDS_MOVED_TO_ONEOF"],
        id="two-fields-moved-to-new-oneof",
    ),
    pytest.param(
        p3("message M { oneof a { int32 x = 1; } oneof b { int32 y = 2; } }"),
        p3("message M { oneof a { int32 x = 1; int32 y = 2; } }"),
        ["MULTIPLE_FIELDS_MOVED_TO_ONEOF"],
        id="two-oneofs-merged",
    ),
    pytest.param(
        p3("message M { oneof pay { string card = 1; } string iban = 2; }"),
        p3("message M { oneof pay { string card = 1; string iban = 2; } }"),
        ["FIELD_MOVED_TO_EXISTING_ONEOF"],
        id="field-moved-to-existing-oneof",
    ),
    pytest.param(  # proto3 `optional` makes a synthetic oneof: not a real one
        p3("message M { optional string card = 1; optional string iban = 2; }"),
        p3("message M { string card = 1; string iban = 2; }"),
        [],
        id="proto3-optional-dropped",
    ),
    # --- enums: constants may come and go (unknown numbers are kept or skipped, never fatal) -----
    pytest.param(
        p3("message M { E e = 1; }\nenum E { Z = 0; A = 1; B = 2; }"),
        p3("message M { E e = 1; }\nenum E { Z = 0; A = 1; C = 3; }"),
        [],
        id="enum-const-removed-and-added",
    ),
    pytest.param(
        p3("message M { int32 a = 1; }\nenum E { Z = 0; }"),
        p3("message M { int32 a = 1; }"),
        [],
        id="enum-removed",
    ),
    # --- maps --------------------------------------------------------------------------------------
    pytest.param(
        p3("message M { map<int32, string> m = 1; }"),
        p3("message M { map<int64, bytes> m = 1; }"),
        [],
        id="map-key-and-value-same-group",
    ),
    pytest.param(
        p3("message M { map<string, int32> m = 1; }"),
        p3("message M { map<string, string> m = 1; }"),
        ["FIELD_SCALAR_KIND_CHANGED"],
        id="map-value-changed",
    ),
]


@pytest.mark.parametrize(("writer", "reader", "expected"), CASES)
def test_rules(writer: ParsedSchema, reader: ParsedSchema, expected: list[str]) -> None:
    assert rules(reader, writer) == expected


def test_messages_name_rule_and_path() -> None:
    writer = p3("message Order { int32 qty = 3; message Line { int32 n = 1; } }")
    reader = p3("message Order { sint32 qty = 3; message Line { string n = 1; } }")
    assert protobuf_incompatibilities(reader, writer) == [
        "FIELD_SCALAR_KIND_CHANGED at #/Order/fields/3: field 'qty' changed from int32 to "
        "sint32, which is not wire-compatible",
        "FIELD_SCALAR_KIND_CHANGED at #/Order/Line/fields/1: field 'n' changed from int32 to "
        "string, which is not wire-compatible",
    ]


def test_paths() -> None:
    writer = p3("message M { map<int32, int32> m = 1; oneof o { int32 a = 2; int32 b = 3; } }")
    reader = p3("message M { map<sint32, int32> m = 1; oneof o { int32 a = 2; } }", "other")
    assert paths(reader, writer) == ["#/", "#/M/fields/1/key", "#/M/oneofs/o"]
    gone = p3("message M { message N { message O {} } }")
    assert paths(p3("message M { message N {} }"), gone) == ["#/M/N/O"]


def test_package_change_is_reported_once() -> None:
    writer = p3("message A { B b = 1; }\nmessage B {}", package="one")
    reader = p3("message A { B b = 1; }\nmessage B {}", package="two")
    assert rules(reader, writer) == ["PACKAGE_CHANGED"]


def test_named_types_from_references() -> None:
    money = ("money.proto", 'syntax = "proto3"; package fin; message Money { int64 c = 1; }')
    cash = ("cash.proto", 'syntax = "proto3"; package fin; message Cash { int64 c = 1; }')
    refs = [money, cash]
    head = 'syntax = "proto3"; package shop; import "money.proto"; import "cash.proto";\n'
    writer = proto(head + "message Order { fin.Money total = 1; }", refs)
    assert rules(proto(head + "message Order { .fin.Money total = 1; }", refs), writer) == []
    changed = proto(head + "message Order { fin.Cash total = 1; }", refs)
    assert rules(changed, writer) == ["FIELD_NAMED_TYPE_CHANGED"]


def test_identical_and_reformatted_schemas_are_compatible() -> None:
    text = """
    syntax = "proto2"; package p;
    message A { required int32 n = 1; repeated int64 xs = 2 [packed = true];
      oneof o { string s = 3; group G = 4 { optional int32 v = 5; } }
      map<string, A> children = 6; extensions 100 to 200; }
    enum E { Z = 0; }
    """
    one = proto(text)
    two = proto(one.canonical)
    assert rules(one, two) == [] and rules(two, one) == []


# --- through compatibility.incompatibilities -------------------------------------------------------

V1 = p3("message Order { int64 id = 1; int32 qty = 2; }\nmessage Line { string sku = 1; }")
V2 = p3("message Order { int64 id = 1; }\nmessage Line { string sku = 1; }")  # qty removed
V3 = p3("message Order { int64 id = 1; string qty = 2; }\nmessage Line { string sku = 1; }")
DROP_LINE = p3("message Order { int64 id = 1; int32 qty = 2; }")


@pytest.mark.parametrize(
    ("level", "new", "previous", "ok"),
    [
        # a removed message: new readers are fine with old data only if nothing was removed
        (L.BACKWARD, DROP_LINE, [V1], False),
        (L.FORWARD, DROP_LINE, [V1], True),
        (L.FULL, DROP_LINE, [V1], False),
        (L.NONE, DROP_LINE, [V1], True),
        # a field re-added with another type: fine against the latest, not against version 1
        (L.FULL, V3, [V1, V2], True),
        (L.BACKWARD_TRANSITIVE, V3, [V1, V2], False),
        (L.FULL_TRANSITIVE, V3, [V1, V2], False),
        (L.FULL_TRANSITIVE, V2, [V1], True),
    ],
)
def test_levels(
    level: CompatibilityLevel, new: ParsedSchema, previous: list[ParsedSchema], ok: bool
) -> None:
    assert (incompatibilities(level, new, previous) == []) is ok


def test_forward_message_removed_is_not_reported() -> None:
    (message,) = incompatibilities(L.BACKWARD, DROP_LINE, [V1])
    assert message == "MESSAGE_REMOVED at #/Line: message 'Line' is missing from the new schema"
    assert incompatibilities(L.FORWARD, V1, [DROP_LINE]) == [message]


def test_full_transitive_messages_name_version_and_direction() -> None:
    found = incompatibilities(L.FULL_TRANSITIVE, V3, [V1, V2], versions=[1, 2])
    assert found == [
        "version 1: backward: FIELD_SCALAR_KIND_CHANGED at #/Order/fields/2: field 'qty' "
        "changed from int32 to string, which is not wire-compatible",
        "version 1: forward: FIELD_SCALAR_KIND_CHANGED at #/Order/fields/2: field 'qty' "
        "changed from string to int32, which is not wire-compatible",
    ]


def test_required_field_added_breaks_both_directions() -> None:
    old = p2("message M { optional int32 a = 1; }")
    new = p2("message M { optional int32 a = 1; required int32 b = 2; }")
    assert [m.split(" at ")[0] for m in incompatibilities(L.FULL, new, [old])] == [
        "backward: REQUIRED_FIELD_ADDED",
        "forward: REQUIRED_FIELD_REMOVED",
    ]
