"""The records of the `_schemas` topic, in the format Confluent's registry and Karapace use.

Keys and values are JSON. The key says what a record is about (its `keytype`) and, the topic
being compacted, a later record with the same key bytes replaces an earlier one; so keys are
written with the field order and compact separators those registries use. A null value (a
tombstone) removes what the key names: a schema version for good, or a config or mode.

    SCHEMA          {"keytype":"SCHEMA","subject":s,"version":v,"magic":1}
                    {"subject","version","id","schema","deleted"[,"schemaType"][,"references"]}
    CONFIG          {"keytype":"CONFIG","subject":s|null,"magic":0}   {"compatibilityLevel": L}
    MODE            {"keytype":"MODE","subject":s|null,"magic":0}     {"mode": M}
    DELETE_SUBJECT  {"keytype":"DELETE_SUBJECT","subject":s,"magic":0} {"subject": s, "version": v}
    CLEAR_SUBJECT   {"keytype":"CLEAR_SUBJECT","subject":s,"magic":0}  {"subject": s}
    NOOP            {"keytype":"NOOP","magic":0}                      null
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "SCHEMA"
CONFIG = "CONFIG"
MODE = "MODE"
DELETE_SUBJECT = "DELETE_SUBJECT"
CLEAR_SUBJECT = "CLEAR_SUBJECT"
NOOP = "NOOP"


@dataclass(frozen=True)
class Reference:
    """A named reference from one schema to a version of another subject."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True)
class SchemaValue:
    """One version of a subject (the value of a SCHEMA record)."""

    subject: str
    version: int
    id: int
    schema: str
    schema_type: str = "AVRO"
    references: tuple[Reference, ...] = ()
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "subject": self.subject,
            "version": self.version,
            "id": self.id,
            "schema": self.schema,
            "deleted": self.deleted,
        }
        if self.schema_type != "AVRO":
            out["schemaType"] = self.schema_type
        if self.references:
            out["references"] = [r.to_json() for r in self.references]
        return out


@dataclass(frozen=True)
class Record:
    """A decoded `_schemas` record: what kind, about which subject, and its value (None for a
    tombstone)."""

    keytype: str
    subject: str | None = None
    version: int | None = None
    value: dict[str, Any] | None = field(default=None, compare=False)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def schema_key(subject: str, version: int) -> bytes:
    return _dumps({"keytype": SCHEMA, "subject": subject, "version": version, "magic": 1})


def subject_key(keytype: str, subject: str | None) -> bytes:
    """The key of a CONFIG, MODE, DELETE_SUBJECT or CLEAR_SUBJECT record (subject None: the
    global config or mode)."""
    return _dumps({"keytype": keytype, "subject": subject, "magic": 0})


def noop_key() -> bytes:
    return _dumps({"keytype": NOOP, "magic": 0})


def encode_value(value: dict[str, Any] | None) -> bytes | None:
    return None if value is None else _dumps(value)


class MalformedRecord(ValueError):
    """A `_schemas` record this registry cannot read (skipped, and logged, by the reader)."""


def decode(key: bytes | None, value: bytes | None) -> Record:
    """Decode one record; raise MalformedRecord for keys or values that are not the format."""
    if key is None:
        raise MalformedRecord("record without a key")
    try:
        k = json.loads(key)
        v = None if value is None else json.loads(value)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedRecord(f"not JSON: {e}") from None
    if not isinstance(k, dict) or not isinstance(k.get("keytype"), str):
        raise MalformedRecord(f"key without a keytype: {key[:100]!r}")
    if v is not None and not isinstance(v, dict):
        raise MalformedRecord(f"value is not an object: {value[:100]!r}")
    keytype = k["keytype"]
    subject = k.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise MalformedRecord(f"subject is not a string: {subject!r}")
    version = k.get("version")
    if keytype == SCHEMA and not (isinstance(version, int) and isinstance(subject, str)):
        raise MalformedRecord(f"SCHEMA key without subject and version: {key[:100]!r}")
    return Record(keytype, subject, version, v)


def schema_value(v: dict[str, Any]) -> SchemaValue:
    """The SchemaValue of a SCHEMA record's value; MalformedRecord if a field is missing."""
    try:
        refs = tuple(
            Reference(str(r["name"]), str(r["subject"]), int(r["version"]))
            for r in v.get("references") or ()
        )
        return SchemaValue(
            subject=str(v["subject"]),
            version=int(v["version"]),
            id=int(v["id"]),
            schema=str(v["schema"]),
            schema_type=str(v.get("schemaType") or "AVRO"),
            references=refs,
            deleted=bool(v.get("deleted", False)),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedRecord(f"SCHEMA value without {e}") from None
