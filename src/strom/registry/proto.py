"""A small parser for .proto files (proto2, proto3 and editions), with type resolution.

`parse_proto(text, imports)` tokenizes and parses one file, checks it the way protoc would
for the things a schema registry cares about, and resolves every type name to its fully
qualified form. `imports` maps import paths to files already parsed (the registry's
references); the Google well-known types (google/protobuf/*.proto: Timestamp, Duration, Any,
Struct/Value/ListValue/NullValue, Empty, FieldMask, the wrappers, descriptor.proto's option
messages), a few google/type/*.proto files and Confluent's confluent/meta.proto and
confluent/type/decimal.proto are built in and need no reference.

Covered: `syntax` / `edition`, `package`, `import` (plain, public, weak), options on files,
messages, fields, oneofs, enums, enum values, extension ranges, services and methods, with
constants of every form (identifiers, signed integers and floats, inf/nan, concatenated
strings, text-format aggregates `{ ... }`); messages with nested messages and enums, fields
with or without a label, scalar and named types, `map<K, V>`, `oneof`, proto2 groups,
`reserved` ranges and names, `extensions` ranges, `extend` blocks; enums (values, aliases,
reserved); services and rpcs (with `stream`). Comments `//` and `/* */` are skipped.

Checked (an error is a `ProtoError` whose message starts with "line L:C:"): syntax; field
numbers (1..536870911 and not 19000..19999), duplicate field numbers and names, numbers and
names that are reserved, numbers inside an extension range; duplicate definitions in a scope;
map key types; labels (proto3 has no `required`, no groups and no `default`; oneof members
and maps take no label); enum values (int32, unique numbers unless `allow_alias = true`,
proto3's first value is 0); imports that are neither a reference nor built in; type names
that do not resolve (or resolve to something other than a message or an enum). A proto2 field
without a label is accepted (as optional), as Square Wire's parser (used by Confluent) does.

Type names resolve as protoc does: a name with a leading dot is absolute; otherwise its first
component is looked up from the innermost scope (the enclosing message, then outer messages,
then the package and its parents) outward, and the rest of the name must be found inside what
the first component names. Visible types are the file's own, those of the files it imports and
those those files import publicly.

`ProtoFile.normalized()` renders the parsed file deterministically (see there).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache

__all__ = [
    "SCALAR_TYPES",
    "Enum",
    "EnumValue",
    "Extend",
    "Field",
    "Import",
    "Message",
    "Method",
    "Oneof",
    "Option",
    "ProtoError",
    "ProtoFile",
    "Service",
    "TypeRef",
    "builtin_files",
    "parse_proto",
]

SCALAR_TYPES = frozenset(
    [
        "double",
        "float",
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
        "bool",
        "string",
        "bytes",
    ]
)
_MAP_KEY_TYPES = SCALAR_TYPES - {"double", "float", "bytes"}
_LABELS = frozenset(["optional", "required", "repeated"])
MAX_FIELD_NUMBER = 536870911
_IMPL_RESERVED = (19000, 19999)
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_EDITIONS = frozenset(["2023", "2024"])


class ProtoError(ValueError):
    """A .proto file that does not parse or does not check; `message` says where and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- Model -------------------------------------------------------------------------------------


@dataclass
class Option:
    """`option name = value;` (or a `[name = value]` field option); `value` is canonical text."""

    name: str
    value: str
    line: int = 0


@dataclass
class TypeRef:
    """A type as written and, once resolved, its kind ("scalar", "message", "enum") and name
    (the scalar's name, or the fully qualified name with a leading dot)."""

    written: str
    kind: str = ""
    full_name: str = ""


@dataclass
class Field:
    """A field; a map field has `map_key` (a scalar) and its value type in `type`; a group
    field has `group` (its message) and a `type` of kind "group"."""

    name: str
    number: int
    label: str | None
    type: TypeRef
    line: int
    options: list[Option] = field(default_factory=list)
    oneof: str | None = None
    map_key: str | None = None
    group: Message | None = None
    proto3_optional: bool = False

    @property
    def kind(self) -> str:
        """The field's kind: "scalar", "message", "enum", "group" or "map"."""
        if self.map_key is not None:
            return "map"
        return self.type.kind

    @property
    def repeated(self) -> bool:
        return self.label == "repeated"

    @property
    def required(self) -> bool:
        if self.label == "required":
            return True
        return any(
            o.name == "features.field_presence" and o.value == "LEGACY_REQUIRED"
            for o in self.options
        )


@dataclass
class Oneof:
    """A oneof; `synthetic` for the one protoc makes for a proto3 `optional` field."""

    name: str
    line: int
    fields: list[Field] = field(default_factory=list)
    options: list[Option] = field(default_factory=list)
    synthetic: bool = False


@dataclass
class Extend:
    """`extend Type { fields }` in a file or a message."""

    extendee: TypeRef
    line: int
    fields: list[Field] = field(default_factory=list)


@dataclass
class Message:
    name: str
    full_name: str
    line: int
    fields: list[Field] = field(default_factory=list)
    oneofs: list[Oneof] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    enums: list[Enum] = field(default_factory=list)
    extends: list[Extend] = field(default_factory=list)
    options: list[Option] = field(default_factory=list)
    reserved_ranges: list[tuple[int, int]] = field(default_factory=list)
    reserved_names: list[str] = field(default_factory=list)
    extension_ranges: list[tuple[int, int, tuple[Option, ...]]] = field(default_factory=list)
    is_group: bool = False

    def field_by_number(self) -> dict[int, Field]:
        return {f.number: f for f in self.fields}


@dataclass
class EnumValue:
    name: str
    number: int
    line: int
    options: list[Option] = field(default_factory=list)


@dataclass
class Enum:
    name: str
    full_name: str
    line: int
    values: list[EnumValue] = field(default_factory=list)
    options: list[Option] = field(default_factory=list)
    reserved_ranges: list[tuple[int, int]] = field(default_factory=list)
    reserved_names: list[str] = field(default_factory=list)


@dataclass
class Method:
    name: str
    input: TypeRef
    output: TypeRef
    line: int
    client_streaming: bool = False
    server_streaming: bool = False
    options: list[Option] = field(default_factory=list)


@dataclass
class Service:
    name: str
    full_name: str
    line: int
    methods: list[Method] = field(default_factory=list)
    options: list[Option] = field(default_factory=list)


@dataclass
class Import:
    path: str
    modifier: str | None  # None, "public" or "weak"
    line: int


@dataclass
class ProtoFile:
    """A parsed, resolved .proto file."""

    name: str
    syntax: str  # "proto2", "proto3" or "editions"
    syntax_given: bool = False
    edition: str | None = None
    package: str = ""
    imports: list[Import] = field(default_factory=list)
    options: list[Option] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    enums: list[Enum] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    extends: list[Extend] = field(default_factory=list)
    # full name (no leading dot) -> Message or Enum, for every type the file defines
    types: dict[str, Message | Enum] = field(default_factory=dict)

    def all_messages(self) -> Iterator[Message]:
        """Every message of the file, nested ones (and groups) after their parent."""
        stack = list(reversed(self.messages))
        while stack:
            m = stack.pop()
            yield m
            stack.extend(reversed(m.messages))

    def all_enums(self) -> Iterator[Enum]:
        yield from self.enums
        for m in self.all_messages():
            yield from m.enums

    def normalized(self) -> str:
        """The file rendered deterministically, without comments or formatting.

        `syntax` (or `edition`) when the text had it, `package`, imports sorted, file options
        sorted by name, then messages, enums, services and extends, each in declaration order.
        In a message: options sorted, fields in number order (a oneof sits where its lowest
        numbered field would and lists its fields in number order; a group's body follows its
        field), reserved ranges (sorted, merged only when equal) and names (sorted), extension
        ranges, nested messages, nested enums, extends. Enum values keep their order (the
        first is the proto2 default), methods theirs. Named types are written fully qualified
        with a leading dot; constants canonically (decimal integers, shortest float form,
        double-quoted strings with canonical escapes). Tokens are joined without spaces except
        between two words.
        """
        return _join(_Renderer(self).file())


# --- Tokenizer ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n\f\v]+)
    | (?P<comment>//[^\n]*|/\*.*?\*/)
    | (?P<string>"(?:[^"\\\n]|\\[^\n])*"|'(?:[^'\\\n]|\\[^\n])*')
    | (?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
    | (?P<int>0[xX][0-9A-Fa-f]+|\d+)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[{}()\[\];=,<>:.+\-/])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # "ident", "int", "float", "string", "punct", "eof"
    text: str
    line: int
    col: int


def _tokenize(text: str) -> list[_Tok]:
    newlines = [i for i, c in enumerate(text) if c == "\n"]

    def where(pos: int) -> tuple[int, int]:
        n = bisect.bisect_right(newlines, pos - 1)
        return n + 1, pos - (newlines[n - 1] if n else -1)

    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is not None and m.lastgroup == "punct" and text.startswith("/*", pos):
            m = None  # a block comment without its end
        if m is None:
            line, col = where(pos)
            if text.startswith("/*", pos):
                what = "unterminated comment"
            elif text[pos] in "\"'":
                what = "unterminated string"
            else:
                what = f"unexpected character {text[pos]!r}"
            raise ProtoError(f"line {line}:{col}: {what}")
        kind = m.lastgroup or ""
        if kind in ("int", "float") and m.end() < len(text):
            nxt = text[m.end()]
            if nxt.isalnum() or nxt in "_.":
                line, col = where(pos)
                raise ProtoError(f"line {line}:{col}: invalid number {text[pos : m.end() + 1]!r}")
        if kind not in ("space", "comment"):
            line, col = where(pos)
            tokens.append(_Tok(kind, m.group(), line, col))
        pos = m.end()
    line, col = where(len(text))
    tokens.append(_Tok("eof", "", line, col))
    return tokens


_SIMPLE_ESCAPES = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    "'": 39,
    '"': 34,
    "?": 63,
}


def _unquote(tok: _Tok) -> bytes:
    """The bytes a string literal stands for (C-style escapes, as protoc reads them)."""
    body = tok.text[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        e = body[i + 1]
        i += 2
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
        elif e in "01234567":
            j = i
            while j < len(body) and j < i + 2 and body[j] in "01234567":
                j += 1
            value = int(body[i - 1 : j], 8)
            if value > 255:
                raise ProtoError(f"line {tok.line}:{tok.col}: octal escape out of range")
            out.append(value)
            i = j
        elif e in "xX":
            j = i
            while j < len(body) and j < i + 2 and body[j] in "0123456789abcdefABCDEF":
                j += 1
            if j == i:
                raise ProtoError(f"line {tok.line}:{tok.col}: \\x needs hex digits")
            out.append(int(body[i:j], 16))
            i = j
        elif e in "uU":
            width = 4 if e == "u" else 8
            digits = body[i : i + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise ProtoError(f"line {tok.line}:{tok.col}: \\{e} needs {width} hex digits")
            try:
                out += chr(int(digits, 16)).encode("utf-8")
            except (ValueError, UnicodeEncodeError):
                raise ProtoError(f"line {tok.line}:{tok.col}: invalid \\{e} escape") from None
            i += width
        else:
            raise ProtoError(f"line {tok.line}:{tok.col}: invalid escape '\\{e}'")
    return bytes(out)


_RENDER_ESCAPES = {10: "\\n", 13: "\\r", 9: "\\t", 34: '\\"', 92: "\\\\"}


def _quote(data: bytes) -> str:
    """A canonical double-quoted literal for bytes: UTF-8 text kept, other bytes escaped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    parts = ['"']
    if text is not None:
        for ch in text:
            code = ord(ch)
            if code in _RENDER_ESCAPES:
                parts.append(_RENDER_ESCAPES[code])
            elif code < 32 or code == 127:
                parts.append(f"\\{code:03o}")
            else:
                parts.append(ch)
    else:
        for b in data:
            if b in _RENDER_ESCAPES:
                parts.append(_RENDER_ESCAPES[b])
            elif 32 <= b < 127:
                parts.append(chr(b))
            else:
                parts.append(f"\\{b:03o}")
    parts.append('"')
    return "".join(parts)


def _int_value(text: str) -> int:
    if text[:2] in ("0x", "0X"):
        return int(text, 16)
    if len(text) > 1 and text[0] == "0":
        return int(text, 8)
    return int(text)


def _float_text(text: str) -> str:
    return repr(float(text))


# --- Parser ------------------------------------------------------------------------------------


@dataclass
class _Scope:
    """Where declarations go while parsing: a file or a message."""

    full_name: str  # "" for a file without package
    message: Message | None


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0
        self.file = ProtoFile(name=name, syntax="proto2")

    # token helpers

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def at(self, text: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind in ("punct", "ident") and tok.text == text

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.i += 1
            return True
        return False

    def fail(self, message: str, tok: _Tok | None = None) -> ProtoError:
        tok = tok or self.peek()
        return ProtoError(f"line {tok.line}:{tok.col}: {message}")

    def unexpected(self, wanted: str) -> ProtoError:
        tok = self.peek()
        found = "end of file" if tok.kind == "eof" else repr(tok.text)
        return self.fail(f"expected {wanted}, found {found}", tok)

    def expect(self, text: str) -> _Tok:
        if not self.at(text):
            raise self.unexpected(repr(text))
        return self.next()

    def ident(self, what: str = "an identifier") -> _Tok:
        if self.peek().kind != "ident":
            raise self.unexpected(what)
        return self.next()

    def full_ident(self, leading_dot: bool = False) -> str:
        parts = []
        if leading_dot and self.accept("."):
            parts.append("")
        parts.append(self.ident().text)
        while self.at("."):
            self.next()
            parts.append(self.ident().text)
        return ".".join(parts)

    def string(self) -> bytes:
        if self.peek().kind != "string":
            raise self.unexpected("a string")
        data = b""
        while self.peek().kind == "string":
            data += _unquote(self.next())
        return data

    def text_string(self) -> str:
        tok = self.peek()
        data = self.string()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("string is not valid UTF-8", tok) from None

    def integer(self, what: str, signed: bool = False) -> int:
        sign = 1
        if signed and self.at("-"):
            self.next()
            sign = -1
        elif signed and self.at("+"):
            self.next()
        if self.peek().kind != "int":
            raise self.unexpected(what)
        return sign * _int_value(self.next().text)

    # constants

    def constant(self) -> str:
        """An option value, as canonical text."""
        tok = self.peek()
        if tok.kind == "string":
            return _quote(self.string())
        if self.at("{"):
            return self.aggregate()
        if tok.kind == "ident":
            return self.full_ident()
        if self.at("-") or self.at("+"):
            sign = "-" if self.next().text == "-" else ""
            return sign + self.number()
        if tok.kind in ("int", "float"):
            return self.number()
        raise self.unexpected("a constant")

    def number(self) -> str:
        tok = self.peek()
        if tok.kind == "int":
            return str(_int_value(self.next().text))
        if tok.kind == "float":
            return _float_text(self.next().text)
        if tok.kind == "ident" and tok.text.lower() in ("inf", "infinity", "nan"):
            return self.next().text.lower().replace("infinity", "inf")
        raise self.unexpected("a number")

    def aggregate(self) -> str:
        """A text-format message `{ ... }` or `< ... >`, as canonical text."""
        close = "}" if self.next().text == "{" else ">"
        parts = []
        while not self.at(close):
            if self.peek().kind == "eof":
                raise self.unexpected(repr(close))
            if self.at("["):
                self.next()
                name = "[" + self.extension_name() + "]"
                self.expect("]")
            else:
                name = self.ident("a field name").text
            if self.at("{") or self.at("<"):
                parts.append(name + self.aggregate())
            else:
                self.expect(":")
                parts.append(name + ":" + self.text_value())
            if not self.accept(","):
                self.accept(";")
        self.next()
        return "{" + " ".join(parts) + "}"

    def extension_name(self) -> str:
        out = self.full_ident()
        if self.accept("/"):
            out += "/" + self.full_ident()
        return out

    def text_value(self) -> str:
        if self.at("{") or self.at("<"):
            return self.aggregate()
        if self.at("["):
            self.next()
            items = []
            while not self.at("]"):
                items.append(self.text_value())
                if not self.accept(","):
                    break
            self.expect("]")
            return "[" + ",".join(items) + "]"
        return self.constant()

    def option_name(self) -> str:
        parts = []
        while True:
            if self.accept("("):
                parts.append("(" + self.full_ident(leading_dot=True) + ")")
                self.expect(")")
            else:
                parts.append(self.ident("an option name").text)
            if not self.accept("."):
                return ".".join(parts)

    def option_statement(self) -> Option:
        line = self.expect("option").line
        name = self.option_name()
        self.expect("=")
        value = self.constant()
        self.expect(";")
        return Option(name, value, line)

    def bracket_options(self) -> list[Option]:
        out: list[Option] = []
        if not self.accept("["):
            return out
        while True:
            line = self.peek().line
            name = self.option_name()
            self.expect("=")
            out.append(Option(name, self.constant(), line))
            if self.accept("]"):
                return out
            self.expect(",")

    # file

    def parse(self) -> ProtoFile:
        f = self.file
        if self.at("syntax") or self.at("edition"):
            tok = self.next()
            self.expect("=")
            value_tok = self.peek()
            value = self.text_string()
            self.expect(";")
            if tok.text == "syntax":
                if value not in ("proto2", "proto3"):
                    raise self.fail(f"unknown syntax {value!r}", value_tok)
                f.syntax = value
            else:
                if value not in _EDITIONS:
                    raise self.fail(f"unknown edition {value!r}", value_tok)
                f.syntax, f.edition = "editions", value
            f.syntax_given = True
        scope = _Scope("", None)
        package_seen = False
        while self.peek().kind != "eof":
            tok = self.peek()
            if self.accept(";"):
                continue
            if tok.text == "package" and tok.kind == "ident":
                if package_seen:
                    raise self.fail("multiple package statements", tok)
                if f.messages or f.enums or f.services or f.extends:
                    raise self.fail("package must come before definitions", tok)
                package_seen = True
                self.next()
                f.package = self.full_ident()
                self.expect(";")
                scope = _Scope(f.package, None)
            elif tok.text == "import" and tok.kind == "ident":
                self.next()
                modifier = None
                if self.at("public") or self.at("weak"):
                    modifier = self.next().text
                path = self.text_string()
                self.expect(";")
                f.imports.append(Import(path, modifier, tok.line))
            elif tok.text == "option" and tok.kind == "ident":
                f.options.append(self.option_statement())
            elif tok.text == "message" and tok.kind == "ident":
                f.messages.append(self.message(scope))
            elif tok.text == "enum" and tok.kind == "ident":
                f.enums.append(self.enum(scope))
            elif tok.text == "service" and tok.kind == "ident":
                f.services.append(self.service(scope))
            elif tok.text == "extend" and tok.kind == "ident":
                f.extends.append(self.extend(scope))
            elif tok.text in ("syntax", "edition") and tok.kind == "ident":
                raise self.fail(f"{tok.text} must be the first statement", tok)
            else:
                raise self.unexpected("a top-level statement")
        return f

    @staticmethod
    def child(scope: _Scope, name: str) -> str:
        return f"{scope.full_name}.{name}" if scope.full_name else name

    def message(self, scope: _Scope) -> Message:
        line = self.expect("message").line
        name = self.ident("a message name").text
        m = Message(name, self.child(scope, name), line)
        self.expect("{")
        self.message_body(m)
        return m

    def message_body(self, m: Message) -> None:
        scope = _Scope(m.full_name, m)
        while not self.accept("}"):
            tok = self.peek()
            if tok.kind == "eof":
                raise self.unexpected("'}'")
            if self.accept(";"):
                continue
            word = tok.text if tok.kind == "ident" else ""
            nxt = self.peek(1)
            if word in ("message", "enum") and nxt.kind == "ident" and self.at("{", 2):
                if word == "message":
                    m.messages.append(self.message(scope))
                else:
                    m.enums.append(self.enum(scope))
            elif word == "extend" and not self.at("=", 2):
                m.extends.append(self.extend(scope))
            elif word == "option":
                m.options.append(self.option_statement())
            elif word == "oneof" and nxt.kind == "ident" and self.at("{", 2):
                self.oneof(m, scope)
            elif word == "reserved" and (
                nxt.kind in ("int", "string") or (nxt.kind == "ident" and not self.at("=", 2))
            ):
                self.reserved(m.reserved_ranges, m.reserved_names, MAX_FIELD_NUMBER)
            elif word == "extensions" and nxt.kind == "int":
                self.extensions(m)
            else:
                self.field(m, scope)

    def field(
        self, m: Message, scope: _Scope, oneof: Oneof | None = None, into: list | None = None
    ) -> Field:
        """A field, group or map field of message `m` (or of an extend block: `into`)."""
        start = self.peek()
        label = None
        if start.kind == "ident" and start.text in _LABELS and not self.at("=", 2):
            label = self.next().text
            if oneof is not None:
                raise self.fail("fields in a oneof take no label", start)
        if self.at("group") and self.peek(1).kind == "ident" and self.at("=", 2):
            return self.group(m, scope, label, oneof, into)
        if self.at("map") and self.at("<", 1):
            map_tok = self.next()
            self.next()
            key_tok = self.peek()
            key = self.ident("a map key type").text
            if key not in _MAP_KEY_TYPES:
                raise self.fail(f"map key type must be an integral or string type: {key}", key_tok)
            self.expect(",")
            value = self.type_name()
            self.expect(">")
            if label is not None:
                raise self.fail("map fields take no label", start)
            if oneof is not None:
                raise self.fail("map fields cannot be in a oneof", map_tok)
            f = self.field_rest(value, None, start)
            f.map_key = key
        else:
            f = self.field_rest(self.type_name(), label, start)
        if self.file.syntax == "proto3" and f.label == "optional":
            f.proto3_optional = True
        self.add_field(m, f, oneof, into)
        return f

    def type_name(self) -> TypeRef:
        tok = self.peek()
        if tok.kind != "ident" and not self.at("."):
            raise self.unexpected("a type")
        written = self.full_ident(leading_dot=True)
        if written in SCALAR_TYPES:
            return TypeRef(written, "scalar", written)
        return TypeRef(written)

    def field_rest(self, typ: TypeRef, label: str | None, start: _Tok) -> Field:
        name_tok = self.ident("a field name")
        self.expect("=")
        number = self.field_number()
        options = self.bracket_options()
        self.expect(";")
        return Field(name_tok.text, number, label, typ, start.line, options)

    def field_number(self) -> int:
        tok = self.peek()
        number = self.integer("a field number")
        if not 1 <= number <= MAX_FIELD_NUMBER:
            raise self.fail(f"field number {number} out of range 1..{MAX_FIELD_NUMBER}", tok)
        if _IMPL_RESERVED[0] <= number <= _IMPL_RESERVED[1]:
            raise self.fail(
                f"field number {number} is reserved for the protobuf implementation "
                f"({_IMPL_RESERVED[0]}..{_IMPL_RESERVED[1]})",
                tok,
            )
        return number

    def group(
        self,
        m: Message,
        scope: _Scope,
        label: str | None,
        oneof: Oneof | None,
        into: list | None,
    ) -> Field:
        start = self.next()
        if self.file.syntax == "proto3":
            raise self.fail("groups are not allowed in proto3", start)
        name_tok = self.ident("a group name")
        name = name_tok.text
        if not name[0].isupper():
            raise self.fail(f"group name {name!r} must start with a capital letter", name_tok)
        self.expect("=")
        number = self.field_number()
        options = self.bracket_options()
        self.expect("{")
        body = Message(name, self.child(scope, name), start.line, is_group=True)
        self.message_body(body)
        m.messages.append(body)
        typ = TypeRef(name, "group", "." + body.full_name)
        f = Field(name.lower(), number, label, typ, start.line, options, group=body)
        self.add_field(m, f, oneof, into)
        return f

    def add_field(self, m: Message, f: Field, oneof: Oneof | None, into: list | None) -> None:
        if into is not None:
            into.append(f)
            return
        if oneof is not None:
            f.oneof = oneof.name
            oneof.fields.append(f)
        m.fields.append(f)

    def oneof(self, m: Message, scope: _Scope) -> None:
        line = self.expect("oneof").line
        o = Oneof(self.ident("a oneof name").text, line)
        m.oneofs.append(o)
        self.expect("{")
        while not self.accept("}"):
            if self.peek().kind == "eof":
                raise self.unexpected("'}'")
            if self.accept(";"):
                continue
            if self.at("option"):
                o.options.append(self.option_statement())
            else:
                self.field(m, scope, oneof=o)
        if not o.fields:
            raise self.fail(f"oneof {o.name!r} has no fields", self.toks[self.i - 1])

    def reserved(
        self, ranges: list[tuple[int, int]], names: list[str], maximum: int, signed: bool = False
    ) -> None:
        self.expect("reserved")
        if self.peek().kind in ("string", "ident"):
            while True:
                tok = self.peek()
                name = self.text_string() if tok.kind == "string" else self.ident().text
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise self.fail(f"reserved name {name!r} is not an identifier", tok)
                names.append(name)
                if not self.accept(","):
                    break
        else:
            ranges.extend(self.ranges(maximum, signed))
        self.expect(";")

    def ranges(self, maximum: int, signed: bool) -> list[tuple[int, int]]:
        out = []
        while True:
            tok = self.peek()
            lo = self.integer("a number", signed)
            hi = lo
            if self.accept("to"):
                if self.accept("max"):
                    hi = maximum
                else:
                    hi = self.integer("a number or 'max'", signed)
            low_bound = _INT32_MIN if signed else 1
            if lo > hi or lo < low_bound or hi > maximum:
                raise self.fail(f"invalid range {lo} to {hi}", tok)
            out.append((lo, hi))
            if not self.accept(","):
                return out

    def extensions(self, m: Message) -> None:
        tok = self.expect("extensions")
        if self.file.syntax == "proto3":
            raise self.fail("extension ranges are not allowed in proto3", tok)
        ranges = self.ranges(MAX_FIELD_NUMBER, False)
        options = tuple(self.bracket_options())
        self.expect(";")
        m.extension_ranges.extend((lo, hi, options) for lo, hi in ranges)

    def enum(self, scope: _Scope) -> Enum:
        line = self.expect("enum").line
        name = self.ident("an enum name").text
        e = Enum(name, self.child(scope, name), line)
        self.expect("{")
        while not self.accept("}"):
            tok = self.peek()
            if tok.kind == "eof":
                raise self.unexpected("'}'")
            if self.accept(";"):
                continue
            if self.at("option") and not self.at("=", 1):
                e.options.append(self.option_statement())
            elif self.at("reserved") and not self.at("=", 1):
                self.reserved(e.reserved_ranges, e.reserved_names, _INT32_MAX, signed=True)
            else:
                name_tok = self.ident("an enum value name")
                self.expect("=")
                num_tok = self.peek()
                number = self.integer("an enum value number", signed=True)
                if not _INT32_MIN <= number <= _INT32_MAX:
                    raise self.fail(f"enum value {number} out of int32 range", num_tok)
                options = self.bracket_options()
                self.expect(";")
                e.values.append(EnumValue(name_tok.text, number, name_tok.line, options))
        if not e.values:
            raise self.fail(f"enum {e.name!r} has no values", self.toks[self.i - 1])
        return e

    def service(self, scope: _Scope) -> Service:
        line = self.expect("service").line
        name = self.ident("a service name").text
        s = Service(name, self.child(scope, name), line)
        self.expect("{")
        while not self.accept("}"):
            if self.peek().kind == "eof":
                raise self.unexpected("'}'")
            if self.accept(";"):
                continue
            if self.at("option"):
                s.options.append(self.option_statement())
                continue
            rpc_line = self.expect("rpc").line
            method_name = self.ident("a method name").text
            self.expect("(")
            client = self.stream()
            input_type = self.type_name()
            self.expect(")")
            self.expect("returns")
            self.expect("(")
            server = self.stream()
            output_type = self.type_name()
            self.expect(")")
            method = Method(method_name, input_type, output_type, rpc_line, client, server)
            if self.accept("{"):
                while not self.accept("}"):
                    if self.accept(";"):
                        continue
                    method.options.append(self.option_statement())
            else:
                self.expect(";")
            s.methods.append(method)
        return s

    def stream(self) -> bool:
        if self.at("stream") and (self.peek(1).kind == "ident" or self.at(".", 1)):
            self.next()
            return True
        return False

    def extend(self, scope: _Scope) -> Extend:
        line = self.expect("extend").line
        ext = Extend(self.type_name(), line)
        self.expect("{")
        holder = scope.message or Message("", scope.full_name, line)
        while not self.accept("}"):
            if self.peek().kind == "eof":
                raise self.unexpected("'}'")
            if self.accept(";"):
                continue
            self.field(holder, scope, into=ext.fields)
        if scope.message is None:
            # groups declared in a file-level extend live in the file's scope
            self.file.messages.extend(holder.messages)
        return ext


# --- Checks and resolution ---------------------------------------------------------------------


def _fail(line: int, message: str) -> ProtoError:
    return ProtoError(f"line {line}: {message}")


class _Symbols:
    """Full names (no leading dot) visible to a file, with their kind."""

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}
        self.types: dict[str, Message | Enum] = {}

    def add_package(self, package: str) -> None:
        parts = package.split(".") if package else []
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            self.kinds.setdefault(name, "package")

    def add_file(self, f: ProtoFile) -> None:
        self.add_package(f.package)
        for name, t in f.types.items():
            self.kinds[name] = "message" if isinstance(t, Message) else "enum"
            self.types[name] = t

    def resolve(self, written: str, scope: str, line: int) -> str:
        """The full name `written` means in `scope` (protoc's rule); raises if none."""
        if written.startswith("."):
            name = written[1:]
            if self.kinds.get(name) in ("message", "enum"):
                return name
            raise _fail(line, f"type {written!r} is not defined")
        first, _, rest = written.partition(".")
        current = scope
        while True:
            candidate = f"{current}.{first}" if current else first
            kind = self.kinds.get(candidate)
            if kind is not None:
                if not rest:
                    if kind in ("message", "enum"):
                        return candidate
                else:
                    full = f"{candidate}.{rest}"
                    if self.kinds.get(full) in ("message", "enum"):
                        return full
                    if kind in ("message", "package"):
                        raise _fail(
                            line,
                            f"type {written!r} is not defined ({first!r} resolved to "
                            f"{candidate!r}, which has no {rest!r})",
                        )
            if not current:
                break
            current = current.rpartition(".")[0]
        raise _fail(line, f"type {written!r} is not defined")


def _register(f: ProtoFile) -> None:
    """Fill f.types and check for names defined twice in a scope."""
    defined: dict[str, tuple[str, int]] = {}

    def define(name: str, what: str, line: int) -> None:
        if name in defined:
            other, other_line = defined[name]
            raise _fail(
                line, f"{what} {name!r} is already defined (as {other} at line {other_line})"
            )
        defined[name] = (what, line)

    def visit_enum(e: Enum, parent: str) -> None:
        define(e.full_name, "enum", e.line)
        f.types[e.full_name] = e
        for v in e.values:
            define(f"{parent}.{v.name}" if parent else v.name, "enum value", v.line)

    def visit_message(m: Message) -> None:
        define(m.full_name, "message", m.line)
        f.types[m.full_name] = m
        for fld in m.fields:
            if fld.group is None:
                define(f"{m.full_name}.{fld.name}", "field", fld.line)
        for o in m.oneofs:
            define(f"{m.full_name}.{o.name}", "oneof", o.line)
        for nested in m.messages:
            visit_message(nested)
        for e in m.enums:
            visit_enum(e, m.full_name)

    for m in f.messages:
        visit_message(m)
    for e in f.enums:
        visit_enum(e, f.package)
    for s in f.services:
        define(s.full_name, "service", s.line)


def _check_message(f: ProtoFile, m: Message) -> None:
    by_number: dict[int, Field] = {}
    names: dict[str, Field] = {}
    for fld in m.fields:
        other = by_number.get(fld.number)
        if other is not None:
            raise _fail(
                fld.line,
                f"field number {fld.number} of {fld.name!r} in message {m.full_name!r} is "
                f"already used by {other.name!r}",
            )
        by_number[fld.number] = fld
        if fld.name in names:
            raise _fail(fld.line, f"field {fld.name!r} is defined twice in message {m.full_name!r}")
        names[fld.name] = fld
        for lo, hi in m.reserved_ranges:
            if lo <= fld.number <= hi:
                raise _fail(
                    fld.line,
                    f"field {fld.name!r} uses reserved number {fld.number} in message "
                    f"{m.full_name!r}",
                )
        if fld.name in m.reserved_names:
            raise _fail(fld.line, f"field name {fld.name!r} is reserved in message {m.full_name!r}")
        for lo, hi, _ in m.extension_ranges:
            if lo <= fld.number <= hi:
                raise _fail(
                    fld.line,
                    f"field number {fld.number} of {fld.name!r} is inside an extension range "
                    f"of message {m.full_name!r}",
                )
        _check_field(f, fld)
    if f.syntax == "proto3":
        for fld in m.fields:
            if fld.proto3_optional and fld.oneof is None:
                name = "_" + fld.name
                while any(o.name == name for o in m.oneofs):
                    name = "X" + name
                m.oneofs.append(Oneof(name, fld.line, [fld], synthetic=True))
                fld.oneof = name


def _check_field(f: ProtoFile, fld: Field) -> None:
    if f.syntax == "proto3":
        if fld.label == "required":
            raise _fail(fld.line, f"required fields are not allowed in proto3 ({fld.name!r})")
        if any(o.name == "default" for o in fld.options):
            raise _fail(fld.line, f"default values are not allowed in proto3 ({fld.name!r})")
    if f.syntax == "editions" and fld.label in ("optional", "required"):
        raise _fail(fld.line, f"label {fld.label!r} is not allowed in editions ({fld.name!r})")


def _resolve_types(f: ProtoFile, symbols: _Symbols) -> None:
    def resolve(ref: TypeRef, scope: str, line: int, messages_only: bool = False) -> None:
        if ref.kind in ("scalar", "group"):
            return
        full = symbols.resolve(ref.written, scope, line)
        kind = symbols.kinds[full]
        if messages_only and kind != "message":
            raise _fail(line, f"{ref.written!r} is not a message type")
        ref.kind, ref.full_name = kind, "." + full

    def fields(flds: list[Field], scope: str) -> None:
        for fld in flds:
            resolve(fld.type, scope, fld.line)

    def extends(exts: list[Extend], scope: str) -> None:
        for ext in exts:
            resolve(ext.extendee, scope, ext.line, messages_only=True)
            fields(ext.fields, scope)
            target = symbols.types.get(ext.extendee.full_name[1:])
            for fld in ext.fields:
                if fld.map_key is not None:
                    raise _fail(fld.line, "map fields cannot be extensions")
                if fld.label == "required":
                    raise _fail(fld.line, "extension fields cannot be required")
                if isinstance(target, Message) and not any(
                    lo <= fld.number <= hi for lo, hi, _ in target.extension_ranges
                ):
                    raise _fail(
                        fld.line,
                        f"{ext.extendee.full_name[1:]!r} has no extension range holding "
                        f"field number {fld.number}",
                    )

    for m in f.all_messages():
        fields(m.fields, m.full_name)
        extends(m.extends, m.full_name)
    extends(f.extends, f.package)
    for s in f.services:
        for method in s.methods:
            resolve(method.input, f.package, method.line, messages_only=True)
            resolve(method.output, f.package, method.line, messages_only=True)


def _check_enum(f: ProtoFile, e: Enum) -> None:
    if f.syntax == "proto3" and e.values[0].number != 0:
        raise _fail(e.values[0].line, f"the first value of proto3 enum {e.full_name!r} must be 0")
    alias = any(o.name == "allow_alias" and o.value == "true" for o in e.options)
    seen: dict[int, EnumValue] = {}
    for v in e.values:
        if v.number in seen and not alias:
            raise _fail(
                v.line,
                f"enum value {v.name!r} reuses number {v.number} of {seen[v.number].name!r} "
                f"in {e.full_name!r} (set option allow_alias = true to allow it)",
            )
        seen.setdefault(v.number, v)
        if any(lo <= v.number <= hi for lo, hi in e.reserved_ranges):
            raise _fail(v.line, f"enum value {v.name!r} uses reserved number {v.number}")
        if v.name in e.reserved_names:
            raise _fail(v.line, f"enum value name {v.name!r} is reserved in {e.full_name!r}")
    if alias and len(seen) == len(e.values):
        raise _fail(e.line, f"enum {e.full_name!r} sets allow_alias but has no aliases")


def _check(f: ProtoFile, imports: Mapping[str, ProtoFile]) -> None:
    _register(f)
    symbols = _Symbols()
    seen_imports: set[str] = set()
    for imp in f.imports:
        if imp.path in seen_imports:
            raise _fail(imp.line, f"import {imp.path!r} is listed twice")
        seen_imports.add(imp.path)
        dep = imports.get(imp.path) or builtin_files().get(imp.path)
        if dep is None:
            raise _fail(
                imp.line,
                f"import {imp.path!r} not found: it is neither a reference nor a built-in file",
            )
        for visible in _public_closure(dep, imports):
            for name in visible.types:
                if name in f.types:
                    t = f.types[name]
                    raise _fail(t.line, f"{name!r} is already defined in {visible.name!r}")
            symbols.add_file(visible)
    symbols.add_file(f)
    for m in f.all_messages():
        _check_message(f, m)
    for e in f.all_enums():
        _check_enum(f, e)
    _resolve_types(f, symbols)


def _public_closure(dep: ProtoFile, imports: Mapping[str, ProtoFile]) -> list[ProtoFile]:
    out = [dep]
    stack = [dep]
    seen = {dep.name}
    while stack:
        cur = stack.pop()
        for imp in cur.imports:
            if imp.modifier != "public" or imp.path in seen:
                continue
            nxt = imports.get(imp.path) or builtin_files().get(imp.path)
            if nxt is not None:
                seen.add(imp.path)
                out.append(nxt)
                stack.append(nxt)
    return out


def parse_proto(
    text: str, imports: Mapping[str, ProtoFile] | None = None, name: str = ""
) -> ProtoFile:
    """Parse and check one .proto file; `imports` maps import paths to parsed files.

    Raises ProtoError (message "line L[:C]: why") for text that does not parse or check.
    """
    try:
        f = _Parser(text, name).parse()
        _check(f, imports or {})
    except RecursionError:
        raise ProtoError("line 1: nested too deeply") from None
    return f


# --- Rendering ---------------------------------------------------------------------------------

_PUNCT = frozenset("{}()[];=,<>:")


def _join(tokens: list[str]) -> str:
    out: list[str] = []
    prev_word = False
    for tok in tokens:
        word = tok not in _PUNCT
        if word and prev_word:
            out.append(" ")
        out.append(tok)
        prev_word = word
    return "".join(out)


def _type_text(ref: TypeRef) -> str:
    return ref.full_name or ref.written


class _Renderer:
    def __init__(self, f: ProtoFile) -> None:
        self.f = f

    def file(self) -> list[str]:
        f = self.f
        out: list[str] = []
        if f.syntax_given:
            if f.edition is not None:
                out += ["edition", "=", _quote(f.edition.encode()), ";"]
            else:
                out += ["syntax", "=", _quote(f.syntax.encode()), ";"]
        if f.package:
            out += ["package", f.package, ";"]
        for imp in sorted(f.imports, key=lambda i: (i.path, i.modifier or "")):
            out += ["import"] + ([imp.modifier] if imp.modifier else [])
            out += [_quote(imp.path.encode()), ";"]
        out += self.option_statements(f.options)
        for m in f.messages:
            if not m.is_group:
                out += self.message(m)
        for e in f.enums:
            out += self.enum(e)
        for s in f.services:
            out += self.service(s)
        for ext in f.extends:
            out += self.extend(ext)
        return out

    @staticmethod
    def option_statements(options: list[Option]) -> list[str]:
        out: list[str] = []
        for o in sorted(options, key=lambda o: (o.name, o.value)):
            out += ["option", o.name, "=", o.value, ";"]
        return out

    @staticmethod
    def bracket(options: list[Option] | tuple[Option, ...]) -> list[str]:
        if not options:
            return []
        out = ["["]
        for i, o in enumerate(sorted(options, key=lambda o: (o.name, o.value))):
            if i:
                out.append(",")
            out += [o.name, "=", o.value]
        return out + ["]"]

    def field(self, fld: Field) -> list[str]:
        out: list[str] = []
        if fld.label is not None:
            out.append(fld.label)
        if fld.group is not None:
            out += ["group", fld.group.name, "=", str(fld.number)]
            out += self.bracket(fld.options)
            return out + self.body(fld.group)
        if fld.map_key is not None:
            out += ["map", "<", fld.map_key, ",", _type_text(fld.type), ">"]
        else:
            out.append(_type_text(fld.type))
        out += [fld.name, "=", str(fld.number)] + self.bracket(fld.options) + [";"]
        return out

    def message(self, m: Message) -> list[str]:
        return ["message", m.name] + self.body(m)

    def body(self, m: Message) -> list[str]:
        out = ["{"] + self.option_statements(m.options)
        oneofs = {o.name: o for o in m.oneofs if not o.synthetic}
        done: set[str] = set()
        for fld in sorted(m.fields, key=lambda x: x.number):
            if fld.oneof in oneofs:
                if fld.oneof in done:
                    continue
                done.add(fld.oneof)
                o = oneofs[fld.oneof]
                out += ["oneof", o.name, "{"] + self.option_statements(o.options)
                for member in sorted(o.fields, key=lambda x: x.number):
                    out += self.field(member)
                out.append("}")
            else:
                out += self.field(fld)
        out += self.reserved(m.reserved_ranges, m.reserved_names)
        for lo, hi, options in sorted(m.extension_ranges, key=lambda r: (r[0], r[1])):
            out += ["extensions"] + self.range(lo, hi, MAX_FIELD_NUMBER)
            out += self.bracket(options) + [";"]
        for nested in m.messages:
            if not nested.is_group:
                out += self.message(nested)
        for e in m.enums:
            out += self.enum(e)
        for ext in m.extends:
            out += self.extend(ext)
        return out + ["}"]

    @staticmethod
    def range(lo: int, hi: int, maximum: int) -> list[str]:
        if lo == hi:
            return [str(lo)]
        return [str(lo), "to", "max" if hi == maximum else str(hi)]

    def reserved(
        self, ranges: list[tuple[int, int]], names: list[str], maximum: int = MAX_FIELD_NUMBER
    ) -> list[str]:
        out: list[str] = []
        if ranges:
            out.append("reserved")
            for i, (lo, hi) in enumerate(sorted(set(ranges))):
                if i:
                    out.append(",")
                out += self.range(lo, hi, maximum)
            out.append(";")
        if names:
            out.append("reserved")
            for i, name in enumerate(sorted(set(names))):
                if i:
                    out.append(",")
                out.append(name if self.f.syntax == "editions" else _quote(name.encode()))
            out.append(";")
        return out

    def enum(self, e: Enum) -> list[str]:
        out = ["enum", e.name, "{"] + self.option_statements(e.options)
        for v in e.values:
            out += [v.name, "=", str(v.number)] + self.bracket(v.options) + [";"]
        out += self.reserved(e.reserved_ranges, e.reserved_names, _INT32_MAX)
        return out + ["}"]

    def service(self, s: Service) -> list[str]:
        out = ["service", s.name, "{"] + self.option_statements(s.options)
        for m in s.methods:
            out += ["rpc", m.name, "("] + (["stream"] if m.client_streaming else [])
            out += [_type_text(m.input), ")", "returns", "("]
            out += (["stream"] if m.server_streaming else []) + [_type_text(m.output), ")"]
            if m.options:
                out += ["{"] + self.option_statements(m.options) + ["}"]
            else:
                out.append(";")
        return out + ["}"]

    def extend(self, ext: Extend) -> list[str]:
        out = ["extend", _type_text(ext.extendee), "{"]
        for fld in sorted(ext.fields, key=lambda x: x.number):
            out += self.field(fld)
        return out + ["}"]


# --- Built-in files ----------------------------------------------------------------------------

_WRAPPERS = "".join(
    f"message {name}Value {{ {typ} value = 1; }}\n"
    for name, typ in [
        ("Double", "double"),
        ("Float", "float"),
        ("Int64", "int64"),
        ("UInt64", "uint64"),
        ("Int32", "int32"),
        ("UInt32", "uint32"),
        ("Bool", "bool"),
        ("String", "string"),
        ("Bytes", "bytes"),
    ]
)
_OPTIONS_MESSAGES = "".join(
    f"message {name} {{ extensions 1000 to max; }}\n"
    for name in [
        "FileOptions",
        "MessageOptions",
        "FieldOptions",
        "OneofOptions",
        "EnumOptions",
        "EnumValueOptions",
        "ServiceOptions",
        "MethodOptions",
        "ExtensionRangeOptions",
    ]
)
_GP = 'syntax = "proto3"; package google.protobuf;\n'
_GT = 'syntax = "proto3"; package google.type;\n'
_BUILTIN_SOURCES = {
    "google/protobuf/timestamp.proto": _GP
    + "message Timestamp { int64 seconds = 1; int32 nanos = 2; }",
    "google/protobuf/duration.proto": _GP
    + "message Duration { int64 seconds = 1; int32 nanos = 2; }",
    "google/protobuf/any.proto": _GP + "message Any { string type_url = 1; bytes value = 2; }",
    "google/protobuf/empty.proto": _GP + "message Empty {}",
    "google/protobuf/field_mask.proto": _GP + "message FieldMask { repeated string paths = 1; }",
    "google/protobuf/struct.proto": _GP
    + """
    message Struct { map<string, Value> fields = 1; }
    message Value {
      oneof kind {
        NullValue null_value = 1; double number_value = 2; string string_value = 3;
        bool bool_value = 4; Struct struct_value = 5; ListValue list_value = 6;
      }
    }
    enum NullValue { NULL_VALUE = 0; }
    message ListValue { repeated Value values = 1; }
    """,
    "google/protobuf/wrappers.proto": _GP + _WRAPPERS,
    "google/protobuf/descriptor.proto": 'syntax = "proto2"; package google.protobuf;\n'
    + _OPTIONS_MESSAGES,
    "google/protobuf/source_context.proto": _GP + "message SourceContext { string file_name = 1; }",
    "google/protobuf/type.proto": _GP
    + """
    import "google/protobuf/any.proto";
    import "google/protobuf/source_context.proto";
    message Type {
      string name = 1; repeated Field fields = 2; repeated string oneofs = 3;
      repeated Option options = 4; SourceContext source_context = 5; Syntax syntax = 6;
      string edition = 7;
    }
    message Field {
      enum Kind {
        TYPE_UNKNOWN = 0; TYPE_DOUBLE = 1; TYPE_FLOAT = 2; TYPE_INT64 = 3; TYPE_UINT64 = 4;
        TYPE_INT32 = 5; TYPE_FIXED64 = 6; TYPE_FIXED32 = 7; TYPE_BOOL = 8; TYPE_STRING = 9;
        TYPE_GROUP = 10; TYPE_MESSAGE = 11; TYPE_BYTES = 12; TYPE_UINT32 = 13; TYPE_ENUM = 14;
        TYPE_SFIXED32 = 15; TYPE_SFIXED64 = 16; TYPE_SINT32 = 17; TYPE_SINT64 = 18;
      }
      enum Cardinality {
        CARDINALITY_UNKNOWN = 0; CARDINALITY_OPTIONAL = 1; CARDINALITY_REQUIRED = 2;
        CARDINALITY_REPEATED = 3;
      }
      Kind kind = 1; Cardinality cardinality = 2; int32 number = 3; string name = 4;
      string type_url = 6; int32 oneof_index = 7; bool packed = 8; repeated Option options = 9;
      string json_name = 10; string default_value = 11;
    }
    message Enum {
      string name = 1; repeated EnumValue enumvalue = 2; repeated Option options = 3;
      SourceContext source_context = 4; Syntax syntax = 5; string edition = 6;
    }
    message EnumValue { string name = 1; int32 number = 2; repeated Option options = 3; }
    message Option { string name = 1; Any value = 2; }
    enum Syntax { SYNTAX_PROTO2 = 0; SYNTAX_PROTO3 = 1; SYNTAX_EDITIONS = 2; }
    """,
    "google/protobuf/api.proto": _GP
    + """
    import "google/protobuf/source_context.proto";
    import "google/protobuf/type.proto";
    message Api {
      string name = 1; repeated Method methods = 2; repeated Option options = 3;
      string version = 4; SourceContext source_context = 5; repeated Mixin mixins = 6;
      Syntax syntax = 7;
    }
    message Method {
      string name = 1; string request_type_url = 2; bool request_streaming = 3;
      string response_type_url = 4; bool response_streaming = 5; repeated Option options = 6;
      Syntax syntax = 7;
    }
    message Mixin { string name = 1; string root = 2; }
    """,
    "google/type/date.proto": _GT
    + "message Date { int32 year = 1; int32 month = 2; int32 day = 3; }",
    "google/type/timeofday.proto": _GT
    + "message TimeOfDay { int32 hours = 1; int32 minutes = 2; int32 seconds = 3; int32 nanos = 4; }",
    "google/type/latlng.proto": _GT
    + "message LatLng { double latitude = 1; double longitude = 2; }",
    "google/type/money.proto": _GT
    + "message Money { string currency_code = 1; int64 units = 2; int32 nanos = 3; }",
    "google/type/dayofweek.proto": _GT
    + """enum DayOfWeek { DAY_OF_WEEK_UNSPECIFIED = 0; MONDAY = 1; TUESDAY = 2; WEDNESDAY = 3;
    THURSDAY = 4; FRIDAY = 5; SATURDAY = 6; SUNDAY = 7; }""",
    "confluent/type/decimal.proto": 'syntax = "proto3"; package confluent.type;\n'
    + "message Decimal { bytes value = 1; uint32 precision = 2; int32 scale = 3; }",
    "confluent/meta.proto": """syntax = "proto3"; package confluent;
    import "google/protobuf/descriptor.proto";
    message Meta { string doc = 1; map<string, string> params = 2; repeated string tags = 3; }
    extend google.protobuf.FileOptions { Meta file_meta = 1088; }
    extend google.protobuf.MessageOptions { Meta message_meta = 1088; }
    extend google.protobuf.FieldOptions { Meta field_meta = 1088; }
    extend google.protobuf.EnumOptions { Meta enum_meta = 1088; }
    extend google.protobuf.EnumValueOptions { Meta enum_value_meta = 1088; }
    """,
}


@cache
def builtin_files() -> dict[str, ProtoFile]:
    """The files known without a reference, by import path."""
    out: dict[str, ProtoFile] = {}
    pending = list(_BUILTIN_SOURCES)
    while pending:  # dependencies first
        path = pending.pop(0)
        text = _BUILTIN_SOURCES[path]
        if any(f'"{dep}"' in text and dep not in out for dep in _BUILTIN_SOURCES if dep != path):
            pending.append(path)
            continue
        out[path] = parse_proto(text, out, name=path)
    return out
