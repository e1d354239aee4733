"""Tests for the .proto parser (strom.registry.proto) and PROTOBUF schemas in parse_schema."""

from __future__ import annotations

import pytest

from strom.registry.proto import (
    Enum,
    Message,
    ProtoError,
    ProtoFile,
    builtin_files,
    parse_proto,
)
from strom.registry.schemas import InvalidSchemaError, parse_schema


def msg(f: ProtoFile, full_name: str) -> Message:
    t = f.types[full_name]
    assert isinstance(t, Message)
    return t


def types_of(m: Message) -> dict[str, str]:
    """field name -> resolved type (map fields as map<K,V>)."""
    out = {}
    for fld in m.fields:
        name = fld.type.full_name
        out[fld.name] = f"map<{fld.map_key},{name}>" if fld.map_key else name
    return out


def error(text: str, imports: dict[str, ProtoFile] | None = None) -> str:
    with pytest.raises(ProtoError) as err:
        parse_proto(text, imports)
    return err.value.message


# --- valid files, one feature at a time ----------------------------------------------------------


def test_proto3_file_with_the_common_features() -> None:
    f = parse_proto(
        """
        // leading comment
        syntax = "proto3";
        package acme.shop;   /* block
                                comment */
        import "google/protobuf/timestamp.proto";
        option java_package = "com.acme.shop";
        option optimize_for = SPEED;

        message Order {
          option deprecated = true;
          int64 id = 1;
          repeated string tags = 2 [deprecated = true, json_name = "labels"];
          map<string, Item> items = 3;
          google.protobuf.Timestamp at = 4;
          optional Status status = 5;
          oneof payment {
            string card = 6;
            bytes token = 7;
          }
          message Item { uint32 count = 1; double price = 2; }
          enum Status { STATUS_UNKNOWN = 0; PAID = 1 [deprecated = true]; }
          reserved 8, 10 to 12, 100 to max;
          reserved "old", "older";
        }
        """
    )
    assert (f.syntax, f.package) == ("proto3", "acme.shop")
    assert [(i.path, i.modifier) for i in f.imports] == [("google/protobuf/timestamp.proto", None)]
    assert {o.name: o.value for o in f.options} == {
        "java_package": '"com.acme.shop"',
        "optimize_for": "SPEED",
    }
    order = msg(f, "acme.shop.Order")
    assert types_of(order) == {
        "id": "int64",
        "tags": "string",
        "items": "map<string,.acme.shop.Order.Item>",
        "at": ".google.protobuf.Timestamp",
        "status": ".acme.shop.Order.Status",
        "card": "string",
        "token": "bytes",
    }
    by_name = {fld.name: fld for fld in order.fields}
    assert by_name["tags"].repeated and by_name["tags"].label == "repeated"
    assert [o.name for o in by_name["tags"].options] == ["deprecated", "json_name"]
    assert by_name["items"].kind == "map" and by_name["status"].kind == "enum"
    assert by_name["status"].proto3_optional
    assert [(o.name, o.synthetic, [x.name for x in o.fields]) for o in order.oneofs] == [
        ("payment", False, ["card", "token"]),
        ("_status", True, ["status"]),
    ]
    assert order.reserved_ranges == [(8, 8), (10, 12), (100, 536870911)]
    assert order.reserved_names == ["old", "older"]
    assert isinstance(f.types["acme.shop.Order.Status"], Enum)
    assert [m.full_name for m in f.all_messages()] == ["acme.shop.Order", "acme.shop.Order.Item"]


def test_proto2_labels_defaults_groups_extensions() -> None:
    f = parse_proto(
        """
        syntax = "proto2";
        package p;
        message Search {
          required string query = 1;
          optional int32 page = 2 [default = 10];
          repeated group Result = 3 {
            required string url = 4;
            optional string title = 5;
          }
          extensions 100 to 199, 500;
          extensions 1000 to max [declaration = { number: 1000 full_name: ".p.x" }];
        }
        extend Search { optional int32 rank = 100; repeated string notes = 101; }
        message Holder { extend Search { optional Holder holder = 500; } }
        """
    )
    search = msg(f, "p.Search")
    fields = {fld.name: fld for fld in search.fields}
    assert fields["query"].required and not fields["page"].required
    assert fields["page"].options[0].value == "10"
    result = fields["result"]
    assert result.kind == "group" and result.type.full_name == ".p.Search.Result"
    assert result.group is not None and [x.name for x in result.group.fields] == ["url", "title"]
    assert msg(f, "p.Search.Result").is_group
    assert [(lo, hi) for lo, hi, _ in search.extension_ranges] == [
        (100, 199),
        (500, 500),
        (1000, 536870911),
    ]
    assert [fld.name for fld in f.extends[0].fields] == ["rank", "notes"]
    assert f.extends[0].extendee.full_name == ".p.Search"
    (nested_ext,) = msg(f, "p.Holder").extends
    assert nested_ext.fields[0].type.full_name == ".p.Holder"


def test_no_syntax_means_proto2_and_labels_may_be_left_out() -> None:
    f = parse_proto("message M { int32 a = 1; optional string b = 2; }")
    assert f.syntax == "proto2" and not f.syntax_given
    assert [fld.label for fld in msg(f, "M").fields] == [None, "optional"]


def test_editions() -> None:
    f = parse_proto(
        """
        edition = "2023";
        package e;
        option features.field_presence = IMPLICIT;
        message M {
          int32 a = 1 [features.field_presence = LEGACY_REQUIRED];
          string b = 2;
          reserved foo, bar;
        }
        """
    )
    assert (f.syntax, f.edition) == ("editions", "2023")
    m = msg(f, "e.M")
    assert m.fields[0].required and not m.fields[1].required
    assert m.reserved_names == ["foo", "bar"]


def test_enums_with_alias_negative_values_and_reserved() -> None:
    f = parse_proto(
        """
        enum E {
          option allow_alias = true;
          ZERO = 0;
          NONE = 0 [deprecated = true];
          MINUS = -1;
          BIG = 0x7fffffff;
          reserved 5, 7 to 9, -10 to -5;
          reserved "GONE";
        }
        """
    )
    e = f.types["E"]
    assert isinstance(e, Enum)
    assert [(v.name, v.number) for v in e.values] == [
        ("ZERO", 0),
        ("NONE", 0),
        ("MINUS", -1),
        ("BIG", 2147483647),
    ]
    assert e.reserved_ranges == [(5, 5), (7, 9), (-10, -5)]
    assert e.reserved_names == ["GONE"]


def test_services_and_streams() -> None:
    f = parse_proto(
        """
        syntax = "proto3";
        package svc;
        import "google/protobuf/empty.proto";
        message Req {} message Resp {}
        service Api {
          option deprecated = true;
          rpc Get (Req) returns (Resp);
          rpc Watch (Req) returns (stream Resp) { option deprecated = true; }
          rpc Upload (stream .svc.Req) returns (google.protobuf.Empty) {}
          rpc Chat (stream Req) returns (stream Resp);
        }
        """
    )
    (api,) = f.services
    assert [
        (m.name, m.input.full_name, m.client_streaming, m.output.full_name, m.server_streaming)
        for m in api.methods
    ] == [
        ("Get", ".svc.Req", False, ".svc.Resp", False),
        ("Watch", ".svc.Req", False, ".svc.Resp", True),
        ("Upload", ".svc.Req", True, ".google.protobuf.Empty", False),
        ("Chat", ".svc.Req", True, ".svc.Resp", True),
    ]
    assert [o.name for o in api.methods[1].options] == ["deprecated"]


def test_option_constants_of_every_form() -> None:
    f = parse_proto(
        r"""
        import "google/protobuf/descriptor.proto";
        extend google.protobuf.FileOptions { optional string s = 50000; }
        option (s) = "a" 'b' "\x41\101\n";
        option (i) = -0x10;
        option (o) = 017;
        option (fl) = 1.50e1;
        option (n) = -inf;
        option (id) = FOO.BAR;
        option (.pkg.ext).field.(other) = true;
        option (agg) = { a: 1 b { c: "x" } d: [1, 2] e < f: FOO > [ext.name]: 3; g: -2.5 };
        message M {}
        """
    )
    assert {o.name: o.value for o in f.options} == {
        "(s)": '"abAA\\n"',
        "(i)": "-16",
        "(o)": "15",
        "(fl)": "15.0",
        "(n)": "-inf",
        "(id)": "FOO.BAR",
        "(.pkg.ext).field.(other)": "true",
        "(agg)": '{a:1 b{c:"x"} d:[1,2] e{f:FOO} [ext.name]:3 g:-2.5}',
    }


# --- type resolution -------------------------------------------------------------------------------


def test_names_resolve_from_the_innermost_scope_outward() -> None:
    f = parse_proto(
        """
        package a.b;
        message Foo {}
        message Outer {
          message Foo {}
          message Inner {
            Foo near = 1;        // Outer.Foo shadows a.b.Foo
            .a.b.Foo absolute = 2;
            b.Foo via_package = 3;
            Outer.Foo dotted = 4;
            Inner self = 5;
          }
        }
        message Other { Foo far = 1; Outer.Inner inner = 2; }
        """
    )
    assert types_of(msg(f, "a.b.Outer.Inner")) == {
        "near": ".a.b.Outer.Foo",
        "absolute": ".a.b.Foo",
        "via_package": ".a.b.Foo",
        "dotted": ".a.b.Outer.Foo",
        "self": ".a.b.Outer.Inner",
    }
    assert types_of(msg(f, "a.b.Other")) == {"far": ".a.b.Foo", "inner": ".a.b.Outer.Inner"}


def test_first_component_binds_like_protoc() -> None:
    # `B.C` finds `B` in X first (X.B) and then fails: protoc does not go on to the outer B.
    text = """
        package a;
        message B { message C {} }
        message X { message B {} B.C c = 1; }
    """
    assert "'B.C' is not defined" in error(text)
    assert "line 4" in error(text)


def test_types_from_a_parent_package() -> None:
    dep = parse_proto("package a.c; message T {}", name="dep.proto")
    f = parse_proto('package a.b; import "dep.proto"; message M { c.T t = 1; }', {"dep.proto": dep})
    assert types_of(msg(f, "a.b.M")) == {"t": ".a.c.T"}


def test_types_from_references_and_public_imports() -> None:
    base = parse_proto("package base; message T {} enum E { Z = 0; }", name="base.proto")
    public = parse_proto('import public "base.proto";', {"base.proto": base}, name="pub.proto")
    private = parse_proto('import "base.proto";', {"base.proto": base}, name="priv.proto")
    files = {"base.proto": base, "pub.proto": public, "priv.proto": private}
    f = parse_proto('import "pub.proto"; message M { base.T t = 1; base.E e = 2; }', files)
    assert types_of(msg(f, "M")) == {"t": ".base.T", "e": ".base.E"}
    assert "'base.T' is not defined" in error(
        'import "priv.proto"; message M { base.T t = 1; }', files
    )
    # without the import the type is not visible even though the file is known
    assert "'base.T' is not defined" in error("message M { base.T t = 1; }", files)


def test_well_known_types_are_built_in() -> None:
    wkt = {
        "google/protobuf/timestamp.proto": "google.protobuf.Timestamp",
        "google/protobuf/duration.proto": "google.protobuf.Duration",
        "google/protobuf/any.proto": "google.protobuf.Any",
        "google/protobuf/struct.proto": "google.protobuf.Struct",
        "google/protobuf/empty.proto": "google.protobuf.Empty",
        "google/protobuf/field_mask.proto": "google.protobuf.FieldMask",
        "google/protobuf/wrappers.proto": "google.protobuf.StringValue",
        "google/type/date.proto": "google.type.Date",
        "confluent/type/decimal.proto": "confluent.type.Decimal",
    }
    for path, type_name in wkt.items():
        f = parse_proto(f'syntax = "proto3"; import "{path}"; message M {{ {type_name} x = 1; }}')
        assert msg(f, "M").fields[0].type.full_name == "." + type_name
    assert {"Value", "ListValue", "NullValue"} <= {
        t.rsplit(".", 1)[-1] for t in builtin_files()["google/protobuf/struct.proto"].types
    }


def test_confluent_meta_options() -> None:
    f = parse_proto(
        """
        syntax = "proto3";
        import "confluent/meta.proto";
        message M { string a = 1 [(confluent.field_meta) = { doc: "the a", params: [{key: "k", value: "v"}] }]; }
        """
    )
    assert msg(f, "M").fields[0].options[0].name == "(confluent.field_meta)"


def test_references_through_parse_schema() -> None:
    dep = 'syntax = "proto3"; package dep; message Money { int64 cents = 1; }'
    text = 'syntax = "proto3"; import "dep.proto"; message Order { dep.Money total = 1; }'
    parsed = parse_schema("PROTOBUF", text, [("dep.proto", dep)])
    assert isinstance(parsed.parsed, ProtoFile)
    assert "dep.Money total=1" in parsed.canonical
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema("PROTOBUF", text)
    assert err.value.message.startswith("Invalid PROTOBUF schema: line 1")
    assert "dep.proto" in err.value.message
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema("PROTOBUF", text, [("dep.proto", "message {")])
    assert err.value.message.startswith("Invalid PROTOBUF schema reference 'dep.proto': line 1")


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("message M {\n  int32 a = 1\n}", "line 3:1: expected ';', found '}'"),
        ("message M { int32 a = 1;", "expected '}', found end of file"),
        ('syntax = "proto4"; message M {}', "line 1:10: unknown syntax 'proto4'"),
        ('message M {}\nsyntax = "proto3";', "line 2:1: syntax must be the first statement"),
        ('edition = "1999"; message M {}', "unknown edition '1999'"),
        ("message M { int32 a = 1; } #", "line 1:28: unexpected character '#'"),
        ("message M {}\n/* open", "line 2:1: unterminated comment"),
        ('message M { string a = 1 [default = "x]; }', "unterminated string"),
        ("message M { int32 a = 1x; }", "invalid number"),
        ('message M { string a = 1 [default = "\\q"]; }', "invalid escape"),
        ("package a; package b; message M {}", "line 1:12: multiple package statements"),
        ("message M { int32 a = 1; }\nmessage M { }", "line 2: message 'M' is already defined"),
        ("message M {\n int32 a = 1;\n int64 b = 1;\n}", "line 3: field number 1 of 'b'"),
        ("message M {\n int32 a = 1;\n int64 a = 2;\n}", "line 3: field 'M.a' is already defined"),
        ("message M { int32 a = 0; }", "field number 0 out of range 1..536870911"),
        ("message M { int32 a = 536870912; }", "field number 536870912 out of range"),
        ("message M { int32 a = -1; }", "expected a field number"),
        ("message M { int32 a = 19000; }", "field number 19000 is reserved"),
        ("message M { int32 a = 19999; }", "field number 19999 is reserved"),
        ("message M {\n  Missing a = 1;\n}", "line 2: type 'Missing' is not defined"),
        ("package p; message M { .M a = 1; }", "type '.M' is not defined"),
        ("message M { map<float, int32> m = 1; }", "map key type must be an integral or string"),
        ("message M { repeated map<string, int32> m = 1; }", "map fields take no label"),
        ("message M { oneof o { map<string, int32> m = 1; } }", "map fields cannot be in a oneof"),
        ("message M { oneof o { repeated int32 a = 1; } }", "fields in a oneof take no label"),
        ("message M { oneof o { } }", "oneof 'o' has no fields"),
        ('syntax = "proto3"; message M { required int32 a = 1; }', "required fields are not"),
        ('syntax = "proto3"; message M { int32 a = 1 [default = 2]; }', "default values"),
        ('syntax = "proto3"; message M { optional group G = 1 {} }', "groups are not allowed"),
        ('syntax = "proto3"; message M { extensions 10 to 20; }', "extension ranges are not"),
        ("message M { optional group g = 1 {} }", "must start with a capital letter"),
        ('edition = "2023"; message M { optional int32 a = 1; }', "label 'optional' is not"),
        ("message M { reserved 2; int32 a = 2; }", "uses reserved number 2"),
        ('message M { reserved "a"; int32 a = 2; }', "field name 'a' is reserved"),
        ("message M { reserved 5 to 3; }", "invalid range 5 to 3"),
        ("message M { extensions 10 to 20; int32 a = 15; }", "inside an extension range"),
        ("message M { extensions 10 to 20; } extend M { optional int32 x = 30; }", "no extension"),
        ("message M {} extend M { optional int32 x = 30; }", "no extension range"),
        ("enum E { A = 0; } extend E { optional int32 x = 1; }", "'E' is not a message type"),
        ("enum E { A = 0; B = 0; }", "reuses number 0 of 'A'"),
        ("enum E { option allow_alias = true; A = 0; B = 1; }", "has no aliases"),
        ("enum E { A = 0; A = 1; }", "enum value 'A' is already defined"),
        ("enum E { A = 2147483648; }", "out of int32 range"),
        ("enum E { reserved 1; A = 1; }", "uses reserved number 1"),
        ("enum E { }", "enum 'E' has no values"),
        ('syntax = "proto3"; enum E { A = 1; }', "first value of proto3 enum 'E' must be 0"),
        ("enum E { A = 0; } enum F { A = 1; }", "enum value 'A' is already defined"),
        ("message M { E e = 1; } enum E { X = 0; } message E {}", "'E' is already defined"),
        ('import "nowhere.proto"; message M {}', "line 1: import 'nowhere.proto' not found"),
        (
            'import "google/protobuf/any.proto";\nimport "google/protobuf/any.proto";\nmessage M {}',
            "line 2: import 'google/protobuf/any.proto' is listed twice",
        ),
        ("service S { rpc Get (Req) returns (Resp); }", "type 'Req' is not defined"),
        ("enum E { A = 0; } service S { rpc Get (E) returns (E); }", "'E' is not a message type"),
        ("message M { int32 a = 1; } service S { rpc Get (M) returns M; }", "expected '('"),
        ("message M {} option (x) = ;", "expected a constant"),
        ("message M {} option (x) = { a 1 };", "expected ':'"),
    ],
)
def test_errors(text: str, expected: str) -> None:
    assert expected in error(text)


def test_builtin_type_clash_with_an_import() -> None:
    text = 'import "google/protobuf/empty.proto"; package google.protobuf; message Empty {}'
    assert "'google.protobuf.Empty' is already defined" in error(text)


def test_parse_schema_errors_start_with_the_type_and_have_line_numbers() -> None:
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema(
            "PROTOBUF", 'syntax = "proto3";\nmessage M {\n  int32 a = 1;\n  int32 b = 1;\n}'
        )
    assert err.value.message.startswith("Invalid PROTOBUF schema: line 4: field number 1")


@pytest.mark.parametrize(
    "text",
    ['syntax = "proto3";', 'syntax = "proto3"; package p; import "google/protobuf/any.proto";'],
)
def test_a_schema_needs_a_definition(text: str) -> None:
    with pytest.raises(InvalidSchemaError) as err:
        parse_schema("PROTOBUF", text)
    assert "no message, enum or service" in err.value.message


# --- normalized form -------------------------------------------------------------------------------

BASE = """
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


def canonical(text: str, refs: list[tuple[str, str]] | None = None) -> str:
    return parse_schema("PROTOBUF", text, refs or []).canonical


def test_normalized_form_of_a_simple_file() -> None:
    assert canonical(BASE) == (
        'syntax="proto3";package acme;message Person{string name=1;'
        "repeated string emails=2[deprecated=true];map<string,int32>scores=3;"
        "string url=4;}"
    )
    assert parse_schema("PROTOBUF", BASE, normalize=True).text == canonical(BASE)


def test_normalized_form_is_a_fixed_point() -> None:
    text = """
    syntax = "proto2";
    package p.q;
    import "google/protobuf/descriptor.proto";
    import public "google/protobuf/timestamp.proto";
    option java_multiple_files = true;
    extend google.protobuf.FieldOptions { optional string tag = 50001; }
    message A {
      oneof pick { string x = 5; Sub y = 2 [(tag) = "t"]; }
      required int32 n = 1 [default = 0x10];
      optional group G = 3 { optional string s = 1; }
      map<int64, google.protobuf.Timestamp> times = 9;
      extensions 100 to max;
      reserved 20 to 30, 40;
      reserved "z";
      message Sub { optional E e = 1 [default = B]; }
      enum E { A = 0; B = 1; }
    }
    service S { rpc Call (A) returns (stream A.Sub) { option deprecated = true; } }
    """
    once = canonical(text)
    assert canonical(once) == once
    assert once == (
        'syntax="proto2";package p.q;import "google/protobuf/descriptor.proto";'
        'import public "google/protobuf/timestamp.proto";option java_multiple_files=true;'
        "message A{required int32 n=1[default=16];"
        'oneof pick{.p.q.A.Sub y=2[(tag)="t"];string x=5;}'
        "optional group G=3{optional string s=1;}"
        "map<int64,.google.protobuf.Timestamp>times=9;"
        'reserved 20 to 30,40;reserved "z";extensions 100 to max;'
        "message Sub{optional .p.q.A.E e=1[default=B];}enum E{A=0;B=1;}}"
        "service S{rpc Call(.p.q.A)returns(stream .p.q.A.Sub){option deprecated=true;}}"
        "extend .google.protobuf.FieldOptions{optional string tag=50001;}"
    )


def test_formatting_comments_and_order_do_not_change_the_normalized_form() -> None:
    one = """
    syntax = "proto3";
    package shop;
    import "google/protobuf/timestamp.proto";
    import "google/protobuf/empty.proto";
    option java_package = "a.b";
    option go_package = "x";
    message Order {
      int64 id = 1 [deprecated = true, json_name = "ID"];
      google.protobuf.Timestamp at = 2;
      Line line = 3;
      message Line { string sku = 1; }
    }
    """
    two = """syntax='proto3';package shop;
    // comments and a different order of imports, options and fields
    import "google/protobuf/empty.proto"; import "google/protobuf/timestamp.proto";
    option go_package = 'x'; option java_package = "a" ".b";
    message Order { /* x */ .shop.Order.Line line = 0x3; .google.protobuf.Timestamp at = 2;
      int64 id = 1 [json_name = "ID", deprecated = true]; message Line { string sku = 1; } }
    """
    assert canonical(one) == canonical(two)


def test_meaningful_changes_change_the_normalized_form() -> None:
    base = canonical('syntax = "proto3"; message M { int32 a = 1; }')
    for other in [
        'syntax = "proto3"; message M { int64 a = 1; }',
        'syntax = "proto3"; message M { int32 b = 1; }',
        'syntax = "proto3"; message M { int32 a = 2; }',
        'syntax = "proto3"; message M { repeated int32 a = 1; }',
        'syntax = "proto3"; package p; message M { int32 a = 1; }',
        'syntax = "proto2"; message M { int32 a = 1; }',
    ]:
        assert canonical(other) != base, other


def test_message_order_is_kept() -> None:
    # the first message is the default record type of Confluent's serializers
    assert canonical("message A {} message B {}") != canonical("message B {} message A {}")


def test_strings_are_written_canonically() -> None:
    text = 'option go_package = "a//b /* c */";\nenum E { A = 0; }'
    assert canonical(text) == 'option go_package="a//b /* c */";enum E{A=0;}'
    assert canonical("option (x) = 'it\\'s \\\"q\\\" \\t';\nenum E { A = 0; }") == (
        'option (x)="it\'s \\"q\\" \\t";enum E{A=0;}'
    )
    assert canonical('option (x) = "\\xff\\x00";\nenum E { A = 0; }') == (
        'option (x)="\\377\\000";enum E{A=0;}'
    )
    assert canonical('option (x) = "\\u00e9";\nenum E { A = 0; }') == canonical(
        'option (x) = "é";\nenum E { A = 0; }'
    )
