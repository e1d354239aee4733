"""Compatibility levels and the check of a new schema against a subject's earlier versions."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from strom.registry.compat_avro import avro_incompatibilities
from strom.registry.schemas import ParsedSchema, SchemaType

__all__ = ["CompatibilityLevel", "incompatibilities"]


class CompatibilityLevel(StrEnum):
    """Confluent's compatibility levels (a subject's or the global `compatibilityLevel`)."""

    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"


_BACKWARD = frozenset(
    [
        CompatibilityLevel.BACKWARD,
        CompatibilityLevel.BACKWARD_TRANSITIVE,
        CompatibilityLevel.FULL,
        CompatibilityLevel.FULL_TRANSITIVE,
    ]
)
_FORWARD = frozenset(
    [
        CompatibilityLevel.FORWARD,
        CompatibilityLevel.FORWARD_TRANSITIVE,
        CompatibilityLevel.FULL,
        CompatibilityLevel.FULL_TRANSITIVE,
    ]
)
_TRANSITIVE = frozenset(
    [
        CompatibilityLevel.BACKWARD_TRANSITIVE,
        CompatibilityLevel.FORWARD_TRANSITIVE,
        CompatibilityLevel.FULL_TRANSITIVE,
    ]
)


def incompatibilities(
    level: CompatibilityLevel,
    new: ParsedSchema,
    previous: Sequence[ParsedSchema],
    versions: Sequence[int] | None = None,
) -> list[str]:
    """Why `new` breaks `level` against `previous` (the subject's live versions, oldest first).

    [] means compatible. BACKWARD: `new` reads data written with the latest previous schema;
    FORWARD: the latest previous schema reads data written with `new`; FULL: both; the
    *_TRANSITIVE levels check against every previous version, newest first, and prefix each
    message with "version N: " (N from `versions`, parallel to `previous`, else the 1-based
    position). FULL levels also say which direction failed ("backward"/"forward"). A
    previous schema of another type than `new` is incompatible. NONE is always compatible.
    """
    level = CompatibilityLevel(level)
    if level is CompatibilityLevel.NONE or not previous:
        return []
    transitive = level in _TRANSITIVE
    full = level in _BACKWARD and level in _FORWARD
    indexes = range(len(previous) - 1, -1, -1) if transitive else [len(previous) - 1]
    found: list[str] = []
    for i in indexes:
        old = previous[i]
        version = versions[i] if versions is not None else i + 1
        prefix = f"version {version}: " if transitive else ""
        if old.schema_type is not new.schema_type:
            found.append(
                f"{prefix}the new schema is of type {new.schema_type.value}, "
                f"the previous schema of type {old.schema_type.value}"
            )
            continue
        if level in _BACKWARD:
            direction = "backward: " if full else ""
            found.extend(prefix + direction + m for m in _reader_writer(new, old))
        if level in _FORWARD:
            direction = "forward: " if full else ""
            found.extend(prefix + direction + m for m in _reader_writer(old, new))
    return found


def _reader_writer(reader: ParsedSchema, writer: ParsedSchema) -> list[str]:
    """Why `reader` cannot read data written with `writer`, by the schemas' type.

    Protobuf schemas follow Confluent's Protobuf rules (see `compat_protobuf`).
    """
    if reader.schema_type is SchemaType.AVRO:
        return avro_incompatibilities(reader, writer)
    if reader.schema_type is SchemaType.JSON:
        from strom.registry.compat_json import json_incompatibilities

        return json_incompatibilities(reader, writer)
    from strom.registry.compat_protobuf import protobuf_incompatibilities

    return protobuf_incompatibilities(reader, writer)
