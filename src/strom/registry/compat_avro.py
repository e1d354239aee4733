"""Avro schema compatibility: can a reader schema read what a writer schema wrote."""

from __future__ import annotations

from dataclasses import dataclass

import avro.schema

from strom.registry.schemas import ParsedSchema

__all__ = ["AvroIncompatibility", "avro_incompatibilities", "check_avro"]

# (writer type, reader type) pairs the Avro spec lets a reader promote.
_PROMOTIONS = frozenset(
    [
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    ]
)
_PRIMITIVES = frozenset(["null", "boolean", "int", "long", "float", "double", "bytes", "string"])

READER_FIELD_MISSING_DEFAULT_VALUE = "READER_FIELD_MISSING_DEFAULT_VALUE"
TYPE_MISMATCH = "TYPE_MISMATCH"
NAME_MISMATCH = "NAME_MISMATCH"
MISSING_ENUM_SYMBOLS = "MISSING_ENUM_SYMBOLS"
MISSING_UNION_BRANCH = "MISSING_UNION_BRANCH"
FIXED_SIZE_MISMATCH = "FIXED_SIZE_MISMATCH"


@dataclass(frozen=True)
class AvroIncompatibility:
    """One reason a reader cannot read a writer's data, named like Avro's Java checker."""

    error_type: str
    path: str
    description: str
    additional_info: str

    def __str__(self) -> str:
        return (
            f"{{errorType:'{self.error_type}', description:'{self.description}', "
            f"additionalInfo:'{self.additional_info}'}}"
        )


def avro_incompatibilities(reader: ParsedSchema, writer: ParsedSchema) -> list[str]:
    """Messages saying why `reader` cannot read data written with `writer`; [] if it can."""
    return [str(i) for i in check_avro(reader.parsed, writer.parsed)]


def check_avro(reader: avro.schema.Schema, writer: avro.schema.Schema) -> list[AvroIncompatibility]:
    """Apply the Avro spec's schema resolution rules to a reader and a writer schema.

    Written here rather than taken from `avro.compatibility`, whose checker (avro 1.12)
    ignores the namespace of relative aliases, treats a reader field missing from the writer
    as readable when its type is an enum with a default, and merges its findings into sets
    that lose which message goes with which path.

    Rules: records, enums and fixed match when their unqualified names are equal or the
    writer's unqualified name is the unqualified part of one of the reader's aliases;
    a reader field is matched to the writer field of the same name, else of one of its
    aliases, and must have a default if there is none; writer fields the reader lacks are
    skipped; an enum symbol of the writer missing from the reader is an error unless the
    reader enum has a default; fixed sizes must be equal; int promotes to long, float and
    double, long to float and double, float to double, string and bytes to each other; a
    writer union needs every branch readable by the reader (by some branch, if the reader
    is a union too); a reader union needs some branch that reads a non-union writer.
    Logical types are ignored: schemas are compared by their underlying types, as Avro's
    and Confluent's checkers do (so a decimal's precision or scale may change). Recursive
    types are assumed compatible where the same pair is met again while being checked.
    """
    return _Checker().check(reader, writer, ())


def _kind(schema: avro.schema.Schema) -> str:
    return "record" if schema.type == "error" else schema.type


def _path(segments: tuple[str, ...]) -> str:
    return "/" + "/".join(segments)


def _unqualified(name: object) -> object:
    return name.rsplit(".", 1)[-1] if isinstance(name, str) else name


def _names_match(reader: avro.schema.NamedSchema, writer: avro.schema.NamedSchema) -> bool:
    wanted = _unqualified(writer.fullname)
    if _unqualified(reader.fullname) == wanted:
        return True
    aliases = reader.props.get("aliases")
    return isinstance(aliases, list) and any(_unqualified(a) == wanted for a in aliases)


def _writer_field(
    writer: avro.schema.RecordSchema, reader_field: avro.schema.Field
) -> avro.schema.Field | None:
    found = writer.fields_dict.get(reader_field.name)
    if found is not None:
        return found
    aliases = reader_field.props.get("aliases")
    if isinstance(aliases, list):
        for alias in aliases:
            if isinstance(alias, str) and alias in writer.fields_dict:
                return writer.fields_dict[alias]
    return None


def _type_name(schema: avro.schema.Schema) -> str:
    return _kind(schema).upper()


class _Checker:
    """One compatibility walk; remembers the pairs being checked to stop on recursion."""

    def __init__(self) -> None:
        self._active: set[tuple[int, int]] = set()

    def check(
        self, reader: avro.schema.Schema, writer: avro.schema.Schema, at: tuple[str, ...]
    ) -> list[AvroIncompatibility]:
        key = (id(reader), id(writer))
        if key in self._active:
            return []
        self._active.add(key)
        try:
            return self._check(reader, writer, at)
        finally:
            self._active.discard(key)

    def _check(
        self, reader: avro.schema.Schema, writer: avro.schema.Schema, at: tuple[str, ...]
    ) -> list[AvroIncompatibility]:
        rk, wk = _kind(reader), _kind(writer)
        if wk == "union":
            return self._writer_union(reader, writer, at)
        if rk == "union":
            if any(not self.check(branch, writer, at) for branch in reader.schemas):
                return []
            return [_missing_branch(writer, at)]
        if rk != wk:
            if (wk, rk) in _PROMOTIONS:
                return []
            return [_type_mismatch(reader, writer, at)]
        if rk in _PRIMITIVES:
            return []
        if rk == "array":
            return self.check(reader.items, writer.items, (*at, "items"))
        if rk == "map":
            return self.check(reader.values, writer.values, (*at, "values"))
        found = [] if _names_match(reader, writer) else [_name_mismatch(writer, at)]
        if rk == "record":
            found.extend(self._record(reader, writer, at))
        elif rk == "enum":
            found.extend(_enum_symbols(reader, writer, at))
        elif rk == "fixed" and reader.size != writer.size:
            found.append(_fixed_size(reader, writer, at))
        return found

    def _writer_union(
        self, reader: avro.schema.Schema, writer: avro.schema.UnionSchema, at: tuple[str, ...]
    ) -> list[AvroIncompatibility]:
        found: list[AvroIncompatibility] = []
        for i, branch in enumerate(writer.schemas):
            branch_at = (*at, str(i))
            if _kind(reader) == "union":
                if not any(not self.check(r, branch, branch_at) for r in reader.schemas):
                    found.append(_missing_branch(branch, branch_at))
            else:
                found.extend(self.check(reader, branch, branch_at))
        return found

    def _record(
        self,
        reader: avro.schema.RecordSchema,
        writer: avro.schema.RecordSchema,
        at: tuple[str, ...],
    ) -> list[AvroIncompatibility]:
        found: list[AvroIncompatibility] = []
        for i, reader_field in enumerate(reader.fields):
            field_at = (*at, "fields", str(i))
            writer_field = _writer_field(writer, reader_field)
            if writer_field is not None:
                found.extend(self.check(reader_field.type, writer_field.type, (*field_at, "type")))
            elif not reader_field.has_default:
                found.append(
                    AvroIncompatibility(
                        READER_FIELD_MISSING_DEFAULT_VALUE,
                        _path(field_at),
                        f"The field '{reader_field.name}' at path '{_path(field_at)}' in the "
                        "reader schema has no default value and is missing in the writer schema",
                        reader_field.name,
                    )
                )
        return found


def _type_mismatch(
    reader: avro.schema.Schema, writer: avro.schema.Schema, at: tuple[str, ...]
) -> AvroIncompatibility:
    return AvroIncompatibility(
        TYPE_MISMATCH,
        _path(at),
        f"The type (path '{_path(at)}') of a field in the reader schema does not match "
        "with the writer schema",
        f"reader type: {_type_name(reader)} not compatible with writer type: {_type_name(writer)}",
    )


def _missing_branch(writer: avro.schema.Schema, at: tuple[str, ...]) -> AvroIncompatibility:
    return AvroIncompatibility(
        MISSING_UNION_BRANCH,
        _path(at),
        f"The reader schema is missing a type inside a union field at path '{_path(at)}' "
        "in the writer schema",
        f"reader union lacking writer type: {_type_name(writer)}",
    )


def _name_mismatch(writer: avro.schema.NamedSchema, at: tuple[str, ...]) -> AvroIncompatibility:
    name_at = _path((*at, "name"))
    return AvroIncompatibility(
        NAME_MISMATCH,
        name_at,
        f"The name of the schema has changed (path '{name_at}')",
        f"expected: {writer.fullname}",
    )


def _enum_symbols(
    reader: avro.schema.EnumSchema, writer: avro.schema.EnumSchema, at: tuple[str, ...]
) -> list[AvroIncompatibility]:
    reader_symbols = set(reader.symbols)
    missing = [s for s in writer.symbols if s not in reader_symbols]
    if not missing or reader.props.get("default") in reader_symbols:
        return []
    symbols_at = _path((*at, "symbols"))
    listed = "[" + ", ".join(missing) + "]"
    return [
        AvroIncompatibility(
            MISSING_ENUM_SYMBOLS,
            symbols_at,
            f"The reader schema is missing enum symbols '{listed}' at path '{symbols_at}' "
            "in the writer schema",
            listed,
        )
    ]


def _fixed_size(
    reader: avro.schema.FixedSchema, writer: avro.schema.FixedSchema, at: tuple[str, ...]
) -> AvroIncompatibility:
    size_at = _path((*at, "size"))
    return AvroIncompatibility(
        FIXED_SIZE_MISMATCH,
        size_at,
        f"The size of FIXED type field at path '{size_at}' in the reader schema does not "
        "match with the writer schema",
        f"expected: {writer.size}, found: {reader.size}",
    )
