"""Protobuf schema compatibility: can a reader schema read what a writer schema wrote.

``protobuf_incompatibilities(reader, writer)`` compares two parsed .proto files (see
`strom.registry.proto`) and returns one message per problem, ``"RULE at #/path: why"``, or
``[]``. Under BACKWARD the reader is the new schema; under FORWARD the old one. Rule names are
Confluent's; only the kinds of change Confluent counts as incompatible are reported (adding
or removing a field, message, enum, enum constant or oneof, and renaming a field, are
compatible: a parser skips unknown fields and keeps unknown enum numbers).

Messages are matched by name relative to their file's package (so a package change is
reported once, as PACKAGE_CHANGED, rather than as every message removed); fields by number.
Named types are compared by full name, with a type in a file's own package compared by its
package-relative name. Paths: ``#/`` for the file, ``#/Outer/Inner`` for a message,
``#/Order/fields/3`` for field 3 of ``Order``, ``.../fields/3/key`` and ``.../value`` inside a
map field, ``#/Order/oneofs/choice`` for a oneof.

Rules
  * PACKAGE_CHANGED: the packages differ.
  * MESSAGE_REMOVED: a message of the writer, top-level or nested (groups excepted: they go
    with their field), has no reader message of the same name. Checked at every level, as
    a nested message may be the type of a field other schemas or clients use.
  * FIELD_KIND_CHANGED: a field's kind differs: scalar, enum, message, group (start/end group
    on the wire, unlike a length-delimited message) or map (a map is not matched with the
    repeated entry message it is wire-equal to).
  * FIELD_SCALAR_KIND_CHANGED: two scalar types outside one wire-compatible group. The
    groups are those of the Protobuf language guide ("Updating a message type"), which
    Confluent's documentation follows: {int32, uint32, int64, uint64, bool} (varints;
    values may be truncated), {sint32, sint64} (zigzag varints), {fixed32, sfixed32},
    {fixed64, sfixed64}, {string, bytes}; float and double are each alone (float and
    fixed32 share a wire type but not a meaning).
  * FIELD_NAMED_TYPE_CHANGED: a message, group or enum field (or map value) whose type has
    another full name.
  * FIELD_NUMERIC_LABEL_CHANGED: repeated <-> singular for a numeric scalar, bool or enum
    field: packed repeated values (proto3's default) arrive length-delimited where a
    singular reader expects a varint or fixed value. The same change for string, bytes,
    message and group fields is compatible (the last value wins, or messages merge), as
    Confluent's FIELD_STRING_OR_BYTES_LABEL_CHANGED is.
  * REQUIRED_FIELD_ADDED: a reader field is required (proto2 `required`, or editions'
    LEGACY_REQUIRED) and the writer's field of that number is absent or not required: the
    writer's data may lack it. REQUIRED_FIELD_REMOVED: a writer field is required and the
    reader's field of that number is absent or not required. Reading such data is harmless,
    but Confluent reports it (a required field is forever), so this does too.
  * ONEOF_FIELD_REMOVED: a writer oneof still exists in the reader (same name) without one
    of its fields (by number): a value the writer set in the oneof reads as "not set".
  * MULTIPLE_FIELDS_MOVED_TO_ONEOF: a reader oneof holds two or more fields that were
    ordinary (non-oneof) fields in the writer, or fields of two or more writer oneofs: the
    writer could set them together and the reader keeps only the last. Moving one field
    into a new oneof is compatible.
  * FIELD_MOVED_TO_EXISTING_ONEOF: a reader oneof holds a field that was ordinary in the
    writer together with fields of a writer oneof.
  Synthetic oneofs (proto3 `optional`) count as ordinary fields. Enums, enum constants,
  services, options and extensions (`extend` fields) are not compared. Types defined in
  references are compared by name only (they are checked as their own subjects).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from strom.registry.proto import Field, Message, ProtoFile
from strom.registry.schemas import ParsedSchema

__all__ = ["ProtobufIncompatibility", "check_protobuf", "protobuf_incompatibilities"]

PACKAGE_CHANGED = "PACKAGE_CHANGED"
MESSAGE_REMOVED = "MESSAGE_REMOVED"
FIELD_KIND_CHANGED = "FIELD_KIND_CHANGED"
FIELD_SCALAR_KIND_CHANGED = "FIELD_SCALAR_KIND_CHANGED"
FIELD_NAMED_TYPE_CHANGED = "FIELD_NAMED_TYPE_CHANGED"
FIELD_NUMERIC_LABEL_CHANGED = "FIELD_NUMERIC_LABEL_CHANGED"
REQUIRED_FIELD_ADDED = "REQUIRED_FIELD_ADDED"
REQUIRED_FIELD_REMOVED = "REQUIRED_FIELD_REMOVED"
ONEOF_FIELD_REMOVED = "ONEOF_FIELD_REMOVED"
MULTIPLE_FIELDS_MOVED_TO_ONEOF = "MULTIPLE_FIELDS_MOVED_TO_ONEOF"
FIELD_MOVED_TO_EXISTING_ONEOF = "FIELD_MOVED_TO_EXISTING_ONEOF"

_SCALAR_GROUPS = (
    frozenset(["int32", "uint32", "int64", "uint64", "bool"]),
    frozenset(["sint32", "sint64"]),
    frozenset(["fixed32", "sfixed32"]),
    frozenset(["fixed64", "sfixed64"]),
    frozenset(["string", "bytes"]),
    frozenset(["float"]),
    frozenset(["double"]),
)
_LENGTH_DELIMITED_SCALARS = frozenset(["string", "bytes"])


@dataclass(frozen=True)
class ProtobufIncompatibility:
    """One reason a reader cannot read a writer's data."""

    rule: str
    path: str
    description: str

    def __str__(self) -> str:
        return f"{self.rule} at {self.path}: {self.description}"


def protobuf_incompatibilities(reader: ParsedSchema, writer: ParsedSchema) -> list[str]:
    """Messages saying why `reader` cannot read data written with `writer`; [] if it can."""
    return [str(i) for i in check_protobuf(reader.parsed, writer.parsed)]


def check_protobuf(reader: object, writer: object) -> list[ProtobufIncompatibility]:
    """Apply the rules of this module's docstring to two parsed files."""
    if not isinstance(reader, ProtoFile) or not isinstance(writer, ProtoFile):
        raise TypeError("check_protobuf needs two strom.registry.proto.ProtoFile objects")
    return list(_Checker(reader, writer).run())


def _scalar_group(name: str) -> frozenset[str]:
    for group in _SCALAR_GROUPS:
        if name in group:
            return group
    return frozenset([name])


def _relative(full_name: str, package: str) -> str:
    """A message's name inside its package, e.g. "Order.Item"."""
    if package and full_name.startswith(package + "."):
        return full_name[len(package) + 1 :]
    return full_name


def _oneof_of(f: Field, m: Message) -> str | None:
    """The real (not synthetic) oneof a field is in."""
    if f.oneof is None:
        return None
    for o in m.oneofs:
        if o.name == f.oneof:
            return None if o.synthetic else o.name
    return None


class _Checker:
    def __init__(self, reader: ProtoFile, writer: ProtoFile) -> None:
        self.reader = reader
        self.writer = writer

    def type_name(self, f: ProtoFile, full_name: str) -> str:
        """A named type as compared: package-relative in the file's own package."""
        name = full_name.lstrip(".")
        if f.package and name.startswith(f.package + "."):
            return name[len(f.package) + 1 :]
        return "." + name

    def messages(self, f: ProtoFile) -> dict[str, Message]:
        return {_relative(m.full_name, f.package): m for m in f.all_messages()}

    def run(self) -> Iterator[ProtobufIncompatibility]:
        if self.reader.package != self.writer.package:
            yield ProtobufIncompatibility(
                PACKAGE_CHANGED,
                "#/",
                f"the package changed from '{self.writer.package}' to '{self.reader.package}'",
            )
        readers = self.messages(self.reader)
        for name, wm in self.messages(self.writer).items():
            path = "#/" + name.replace(".", "/")
            rm = readers.get(name)
            if rm is None:
                if not wm.is_group:
                    yield ProtobufIncompatibility(
                        MESSAGE_REMOVED, path, f"message '{name}' is missing from the new schema"
                    )
                continue
            yield from self.message(rm, wm, path)

    def message(self, rm: Message, wm: Message, path: str) -> Iterator[ProtobufIncompatibility]:
        rfields = rm.field_by_number()
        wfields = wm.field_by_number()
        for number in sorted(set(rfields) | set(wfields)):
            rf, wf = rfields.get(number), wfields.get(number)
            fpath = f"{path}/fields/{number}"
            if rf is not None and wf is not None:
                yield from self.field(rf, wf, fpath)
            if rf is not None and rf.required and (wf is None or not wf.required):
                yield ProtobufIncompatibility(
                    REQUIRED_FIELD_ADDED,
                    fpath,
                    f"field '{rf.name}' is required in the new schema but "
                    + ("absent" if wf is None else "not required")
                    + " in the old one",
                )
            if wf is not None and wf.required and (rf is None or not rf.required):
                yield ProtobufIncompatibility(
                    REQUIRED_FIELD_REMOVED,
                    fpath,
                    f"required field '{wf.name}' of the old schema is "
                    + ("absent" if rf is None else "not required")
                    + " in the new one",
                )
        yield from self.oneofs(rm, wm, wfields, path)

    def field(self, rf: Field, wf: Field, path: str) -> Iterator[ProtobufIncompatibility]:
        rkind, wkind = rf.kind, wf.kind
        if rkind != wkind:
            yield ProtobufIncompatibility(
                FIELD_KIND_CHANGED,
                path,
                f"field '{rf.name}' is a {rkind} field in the new schema, "
                f"a {wkind} field in the old one",
            )
            return
        if rkind == "map":
            if _scalar_group(rf.map_key or "") != _scalar_group(wf.map_key or ""):
                yield ProtobufIncompatibility(
                    FIELD_SCALAR_KIND_CHANGED,
                    path + "/key",
                    f"map key of field '{rf.name}' changed from {wf.map_key} to {rf.map_key}",
                )
            yield from self.value_type(rf, wf, path + "/value", "map value of field")
            return
        yield from self.value_type(rf, wf, path, "field")
        if rf.repeated != wf.repeated and (
            rkind == "enum"
            or (rkind == "scalar" and rf.type.full_name not in _LENGTH_DELIMITED_SCALARS)
        ):
            yield ProtobufIncompatibility(
                FIELD_NUMERIC_LABEL_CHANGED,
                path,
                f"field '{rf.name}' is "
                + ("repeated" if rf.repeated else "singular")
                + " in the new schema, "
                + ("repeated" if wf.repeated else "singular")
                + " in the old one",
            )

    def value_type(
        self, rf: Field, wf: Field, path: str, what: str
    ) -> Iterator[ProtobufIncompatibility]:
        """Compare the types of two fields (or map values) of the same field kind."""
        rt, wt = rf.type, wf.type
        if rt.kind != wt.kind:
            yield ProtobufIncompatibility(
                FIELD_KIND_CHANGED,
                path,
                f"{what} '{rf.name}' is of kind {rt.kind} in the new schema, "
                f"{wt.kind} in the old one",
            )
        elif rt.kind == "scalar":
            if _scalar_group(rt.full_name) != _scalar_group(wt.full_name):
                yield ProtobufIncompatibility(
                    FIELD_SCALAR_KIND_CHANGED,
                    path,
                    f"{what} '{rf.name}' changed from {wt.full_name} to {rt.full_name}, "
                    "which is not wire-compatible",
                )
        else:
            rname = self.type_name(self.reader, rt.full_name)
            wname = self.type_name(self.writer, wt.full_name)
            if rname != wname:
                yield ProtobufIncompatibility(
                    FIELD_NAMED_TYPE_CHANGED,
                    path,
                    f"{what} '{rf.name}' changed type from '{wt.full_name.lstrip('.')}' "
                    f"to '{rt.full_name.lstrip('.')}'",
                )

    def oneofs(
        self,
        rm: Message,
        wm: Message,
        wfields: dict[int, Field],
        path: str,
    ) -> Iterator[ProtobufIncompatibility]:
        real_reader = {o.name: o for o in rm.oneofs if not o.synthetic}
        for wo in wm.oneofs:
            ro = real_reader.get(wo.name)
            if wo.synthetic or ro is None:
                continue
            kept = {f.number for f in ro.fields}
            for f in sorted(wo.fields, key=lambda f: f.number):
                if f.number not in kept:
                    yield ProtobufIncompatibility(
                        ONEOF_FIELD_REMOVED,
                        f"{path}/oneofs/{wo.name}",
                        f"field '{f.name}' ({f.number}) of oneof '{wo.name}' is missing from "
                        "that oneof in the new schema",
                    )
        for ro in real_reader.values():
            ordinary: list[Field] = []
            writer_oneofs: set[str] = set()
            for f in sorted(ro.fields, key=lambda f: f.number):
                wf = wfields.get(f.number)
                if wf is None:
                    continue
                wo_name = _oneof_of(wf, wm)
                if wo_name is None:
                    ordinary.append(wf)
                else:
                    writer_oneofs.add(wo_name)
            opath = f"{path}/oneofs/{ro.name}"
            if ordinary and writer_oneofs:
                for wf in ordinary:
                    yield ProtobufIncompatibility(
                        FIELD_MOVED_TO_EXISTING_ONEOF,
                        opath,
                        f"field '{wf.name}' ({wf.number}) moved into oneof '{ro.name}', which "
                        f"holds fields of the old schema's oneof "
                        + ", ".join(f"'{n}'" for n in sorted(writer_oneofs)),
                    )
            elif len(ordinary) >= 2:
                yield ProtobufIncompatibility(
                    MULTIPLE_FIELDS_MOVED_TO_ONEOF,
                    opath,
                    "fields "
                    + ", ".join(f"'{f.name}' ({f.number})" for f in ordinary)
                    + f" moved into oneof '{ro.name}' (the old schema could set them together)",
                )
            if len(writer_oneofs) >= 2:
                yield ProtobufIncompatibility(
                    MULTIPLE_FIELDS_MOVED_TO_ONEOF,
                    opath,
                    f"oneof '{ro.name}' merges the old schema's oneofs "
                    + ", ".join(f"'{n}'" for n in sorted(writer_oneofs)),
                )
