"""Parsing, validation and normalization of Avro, JSON Schema and Protobuf schemas."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import avro.errors
import avro.name
import avro.schema
import jsonschema.exceptions
import jsonschema.validators

from strom.registry.proto import ProtoError, ProtoFile, parse_proto

__all__ = ["InvalidSchemaError", "ParsedSchema", "SchemaType", "parse_schema"]


class SchemaType(StrEnum):
    """The schema types the registry knows (Confluent's `schemaType`)."""

    AVRO = "AVRO"
    JSON = "JSON"
    PROTOBUF = "PROTOBUF"


class InvalidSchemaError(Exception):
    """A schema that cannot be parsed; the REST layer answers 42201 with `message`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ParsedSchema:
    """A schema that parsed: its text, its normalized form and the parsed object.

    `text` is the schema as given, or its normalized form when parsing asked to normalize.
    `canonical` is always the normalized form: two schemas that mean the same have equal
    canonical forms. `parsed` is an `avro.schema.Schema` (AVRO), the decoded JSON document
    (JSON) or a `strom.registry.proto.ProtoFile` (PROTOBUF). `references` are (reference
    name, schema text) pairs, dependencies first.
    """

    schema_type: SchemaType
    text: str
    canonical: str
    parsed: object = field(compare=False)
    references: tuple[tuple[str, str], ...] = ()


def parse_schema(
    schema_type: str | None,
    text: str,
    references: Sequence[tuple[str, str]] = (),
    normalize: bool = False,
) -> ParsedSchema:
    """Parse and validate `text` as a schema of `schema_type` (None or "" means AVRO).

    `references` are (name, schema text) pairs the schema may use, dependencies first.
    Raises InvalidSchemaError for an unknown type or a schema that is not valid.
    """
    kind = _schema_type(schema_type)
    refs = tuple((str(name), str(ref_text)) for name, ref_text in references)
    if not isinstance(text, str):
        raise InvalidSchemaError(f"Invalid {kind.value} schema: the schema must be a string")
    _check_unicode(kind, text)
    if kind is SchemaType.AVRO:
        parsed, canonical = _parse_avro(text, refs)
    elif kind is SchemaType.JSON:
        parsed, canonical = _parse_json(text, refs)
    else:
        parsed, canonical = _parse_protobuf(text, refs)
    return ParsedSchema(
        schema_type=kind,
        text=canonical if normalize else text,
        canonical=canonical,
        parsed=parsed,
        references=refs,
    )


def _schema_type(schema_type: str | None) -> SchemaType:
    if schema_type is None or schema_type == "":
        return SchemaType.AVRO
    try:
        return SchemaType(str(schema_type).upper())
    except ValueError:
        raise InvalidSchemaError(f"Unknown schema type: {schema_type}") from None


def _check_unicode(kind: SchemaType, text: str) -> None:
    """The schema must be Unicode text once decoded: a lone UTF-16 surrogate (a JSON \\u
    escape such as \\ud800, in a JSON-based schema) cannot be kept or answered as UTF-8.
    Text that is not JSON is left to the parser to refuse."""
    decoded = text
    if kind is not SchemaType.PROTOBUF and "\\u" in text:
        try:
            decoded = json.dumps(json.loads(text), ensure_ascii=False)
        except (ValueError, RecursionError):
            return
    try:
        decoded.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidSchemaError(
            f"Invalid {kind.value} schema: it holds a lone surrogate "
            f"({decoded[e.start : e.end]!r}), not a Unicode character"
        ) from None


# --- Avro -----------------------------------------------------------------------------------

_AVRO_PRIMITIVES = frozenset(
    ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
)
_NAMED_KEYS = ("type", "name", "namespace", "aliases", "doc")
_LOGICAL_KEYS = ("logicalType", "precision", "scale")
_FIELD_KEYS = ("name", "type", "default", "order", "aliases", "doc")
_SPECIAL_FLOATS = frozenset(["NaN", "Infinity", "-Infinity"])
_PARSE_ERRORS = (
    avro.errors.AvroException,
    TypeError,
    ValueError,
    AttributeError,
    KeyError,
    IndexError,
    RecursionError,
)


def _parse_avro(
    text: str, references: tuple[tuple[str, str], ...]
) -> tuple[avro.schema.Schema, str]:
    """Parse an Avro schema with its references into one names table.

    Each reference is parsed first, in the given order, so the schema (and later references)
    can use the named types it defines by name. Field defaults are checked against their types
    (the `avro` package does not), a union's default against its first branch as the Avro
    spec before 1.12 and Avro's Java parser require.

    The normalized form is compact JSON (no whitespace) where every named type carries its
    full name in "name" and no "namespace" key; named types defined by a reference, and
    later uses of a type defined earlier in the schema, are written as their full name;
    primitive types without properties are bare strings; keys come in a fixed order (type,
    name, doc, aliases, then fields / symbols, default / size / items / values, then
    logicalType, precision, scale, then other properties sorted), field keys in the order
    name, type, default, order, aliases, doc, then others sorted; aliases are fully qualified
    and sorted; keys inside default values and custom properties are sorted. Docs, defaults,
    aliases, logical types and custom properties are kept.
    """
    names = avro.name.Names()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ref_name, ref_text in references:
            try:
                ref_schema = _make_avro(ref_text, names)
                _check_avro_defaults(ref_schema)
            except InvalidSchemaError as e:
                raise InvalidSchemaError(
                    f"Invalid AVRO schema reference '{ref_name}': {e.message}"
                ) from None
        defined_by_refs = set(names.names)
        schema = _make_avro(text, names)
    _check_avro_defaults(schema)
    normal = _avro_normal(schema, defined_by_refs)
    return schema, json.dumps(normal, separators=(",", ":"), ensure_ascii=False)


def _make_avro(text: str, names: avro.name.Names) -> avro.schema.Schema:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise InvalidSchemaError(f"Invalid AVRO schema: not valid JSON: {e}") from None
    try:
        if isinstance(data, str) and data not in _AVRO_PRIMITIVES:
            # A whole schema that is the name of a type defined by a reference.
            named = names.get_name(data, None)
            if named is None:
                raise InvalidSchemaError(f"Invalid AVRO schema: unknown type name '{data}'")
            return named
        return avro.schema.make_avsc_object(data, names)
    except _PARSE_ERRORS as e:
        raise InvalidSchemaError(f"Invalid AVRO schema: {e}") from None


def _kind(schema: avro.schema.Schema) -> str:
    return "record" if schema.type == "error" else schema.type


def _check_avro_defaults(schema: avro.schema.Schema) -> None:
    """Raise InvalidSchemaError if a field default does not fit its field's type."""
    seen: set[int] = set()
    stack = [schema]
    while stack:
        s = stack.pop()
        if id(s) in seen:
            continue
        seen.add(id(s))
        kind = _kind(s)
        if kind == "record":
            for f in s.fields:
                if f.has_default and not _default_fits(f.type, f.default):
                    raise InvalidSchemaError(
                        f"Invalid AVRO schema: invalid default for field '{f.name}' of "
                        f"'{s.fullname}': {json.dumps(f.default)} is not a valid "
                        f"{_type_label(f.type)}"
                    )
                stack.append(f.type)
        elif kind == "array":
            stack.append(s.items)
        elif kind == "map":
            stack.append(s.values)
        elif kind == "union":
            stack.extend(s.schemas)


def _type_label(schema: avro.schema.Schema) -> str:
    if _kind(schema) == "union":
        return "[" + ",".join(_type_label(b) for b in schema.schemas) + "]"
    if isinstance(schema, avro.schema.NamedSchema):
        return f"{schema.type} {schema.fullname}"
    return schema.type


def _is_integer(value: object, bits: int) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)


def _default_fits(schema: avro.schema.Schema, value: object) -> bool:
    """Whether a JSON default value is valid for a schema (Avro spec, field defaults)."""
    kind = _kind(schema)
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "int":
        return _is_integer(value, 32)
    if kind == "long":
        return _is_integer(value, 64)
    if kind in ("float", "double"):
        if isinstance(value, str):
            return value in _SPECIAL_FLOATS
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("string", "bytes", "fixed"):
        return isinstance(value, str)
    if kind == "enum":
        return isinstance(value, str) and value in schema.symbols
    if kind == "array":
        return isinstance(value, list) and all(_default_fits(schema.items, v) for v in value)
    if kind == "map":
        return isinstance(value, dict) and all(
            _default_fits(schema.values, v) for v in value.values()
        )
    if kind == "union":
        return bool(schema.schemas) and _default_fits(schema.schemas[0], value)
    if kind == "record":
        if not isinstance(value, dict):
            return False
        for f in schema.fields:
            if f.name in value:
                if not _default_fits(f.type, value[f.name]):
                    return False
            elif not f.has_default:
                return False
        return True
    return False


def _full_alias(alias: object, namespace: str | None) -> object:
    if isinstance(alias, str) and "." not in alias and namespace:
        return f"{namespace}.{alias}"
    return alias


def _sorted_json(value: object) -> object:
    if isinstance(value, dict):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(v) for v in value]
    return value


def _sorted_aliases(aliases: object) -> object:
    if isinstance(aliases, list) and all(isinstance(a, str) for a in aliases):
        return sorted(set(aliases))
    return _sorted_json(aliases)


def _avro_normal(schema: avro.schema.Schema, defined: set[str]) -> object:
    """The normalized JSON value of a schema (see `_parse_avro`); `defined` grows as it goes."""
    kind = _kind(schema)
    props = schema.props
    if kind == "union":
        return [_avro_normal(b, defined) for b in schema.schemas]
    out: dict[str, object] = {"type": schema.type}
    handled = {"type"}
    if isinstance(schema, avro.schema.NamedSchema):
        if schema.fullname in defined:
            return schema.fullname
        defined.add(schema.fullname)
        out["name"] = schema.fullname
        if "doc" in props:
            out["doc"] = props["doc"]
        if "aliases" in props:
            aliases = props["aliases"]
            if isinstance(aliases, list):
                aliases = [_full_alias(a, schema.namespace) for a in aliases]
            out["aliases"] = _sorted_aliases(aliases)
        handled.update(_NAMED_KEYS)
    if kind == "record":
        out["fields"] = [_avro_field_normal(f, defined) for f in schema.fields]
        handled.add("fields")
    elif kind == "enum":
        out["symbols"] = list(schema.symbols)
        if "default" in props:
            out["default"] = props["default"]
        handled.update(("symbols", "default"))
    elif kind == "fixed":
        out["size"] = schema.size
        handled.add("size")
    elif kind == "array":
        out["items"] = _avro_normal(schema.items, defined)
        handled.add("items")
    elif kind == "map":
        out["values"] = _avro_normal(schema.values, defined)
        handled.add("values")
    for key in _LOGICAL_KEYS:
        if key in props:
            out[key] = props[key]
    handled.update(_LOGICAL_KEYS)
    for key in sorted(k for k in props if k not in handled):
        out[key] = _sorted_json(props[key])
    if kind in _AVRO_PRIMITIVES and len(out) == 1:
        return schema.type
    return out


def _avro_field_normal(f: avro.schema.Field, defined: set[str]) -> dict[str, object]:
    props = f.props
    out: dict[str, object] = {"name": f.name, "type": _avro_normal(f.type, defined)}
    if f.has_default:
        out["default"] = _sorted_json(f.default)
    if "order" in props:
        out["order"] = props["order"]
    if "aliases" in props:
        out["aliases"] = _sorted_aliases(props["aliases"])
    if "doc" in props:
        out["doc"] = props["doc"]
    for key in sorted(k for k in props if k not in _FIELD_KEYS):
        out[key] = _sorted_json(props[key])
    return out


# --- JSON Schema ----------------------------------------------------------------------------


def _load_json_schema(text: str, what: str) -> object:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise InvalidSchemaError(f"Invalid JSON schema{what}: not valid JSON: {e}") from None
    if not isinstance(data, dict | bool):
        raise InvalidSchemaError(f"Invalid JSON schema{what}: must be a JSON object or a boolean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            jsonschema.validators.validator_for(data).check_schema(data)
        except jsonschema.exceptions.SchemaError as e:
            path = "/" + "/".join(str(p) for p in e.absolute_path)
            raise InvalidSchemaError(
                f"Invalid JSON schema{what}: {e.message} (at '{path}')"
            ) from None
        except RecursionError:
            raise InvalidSchemaError(f"Invalid JSON schema{what}: nested too deeply") from None
    return data


def _parse_json(text: str, references: tuple[tuple[str, str], ...]) -> tuple[object, str]:
    """Parse a JSON Schema and check it against its meta-schema.

    References are checked the same way; a `$ref` may name them, the compatibility checker
    resolves them from `ParsedSchema.references`. The normalized form is the document dumped
    with sorted keys and no whitespace.
    """
    for ref_name, ref_text in references:
        _load_json_schema(ref_text, f" reference '{ref_name}'")
    data = _load_json_schema(text, "")
    return data, json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- Protobuf -------------------------------------------------------------------------------


def _parse_protobuf(text: str, references: tuple[tuple[str, str], ...]) -> tuple[ProtoFile, str]:
    """Parse a .proto file with `strom.registry.proto`, its references first.

    Each reference is parsed in the given order with the references before it importable by
    their names, so the schema (and later references) can `import` a reference by its name
    and use its types; Google's well-known types and Confluent's meta/decimal files are
    built in. The schema must define at least one message, enum or service. The normalized
    form is `ProtoFile.normalized()`: no comments or formatting, imports and options sorted,
    fields in number order, type names fully qualified.
    """
    files: dict[str, ProtoFile] = {}
    for ref_name, ref_text in references:
        try:
            files[ref_name] = parse_proto(ref_text, files, name=ref_name)
        except ProtoError as e:
            raise InvalidSchemaError(
                f"Invalid PROTOBUF schema reference '{ref_name}': {e.message}"
            ) from None
    try:
        parsed = parse_proto(text, files)
    except ProtoError as e:
        raise InvalidSchemaError(f"Invalid PROTOBUF schema: {e.message}") from None
    if not (parsed.messages or parsed.enums or parsed.services):
        raise InvalidSchemaError("Invalid PROTOBUF schema: no message, enum or service definition")
    return parsed, parsed.normalized()
