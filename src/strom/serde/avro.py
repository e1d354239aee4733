"""Avro serializer and deserializer in the Confluent wire format, with schema references."""

from __future__ import annotations

import io
import json
import struct
import threading
from collections.abc import Sequence
from typing import Any

import fastavro
from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException

from strom.serde.client import RegisteredSchema, SchemaRegistry, as_references
from strom.serde.errors import SerializationError
from strom.serde.naming import SubjectNameStrategy, topic_name_strategy
from strom.serde.wire import HEADER_SIZE, MAGIC_BYTE, frame, unframe

_NAMED_TYPES = ("record", "error", "enum", "fixed")
_SCHEMA_ID = struct.Struct(">I")
_ENCODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error)
_DECODE_ERRORS = (SchemaResolutionError, EOFError, ValueError, TypeError, KeyError, IndexError)


def parse_avro(
    client: SchemaRegistry,
    schema: str,
    references: Sequence[tuple[str, str, int]] = (),
) -> Any:
    """Parse an Avro schema text with fastavro, first loading the named types it references.

    Each reference's subject/version is fetched from the registry, its own references first
    (dependencies before dependents), and parsed into one ``named_schemas`` map.
    """
    named: dict[str, Any] = {}
    _load_references(client, as_references(references), named, set())
    return _parse(schema, named)


def record_name(parsed: Any) -> str | None:
    """The full name of a parsed named Avro type (record, enum, fixed), else None."""
    if isinstance(parsed, dict) and parsed.get("type") in _NAMED_TYPES:
        return str(parsed["name"])
    return None


def _load_references(
    client: SchemaRegistry,
    references: Sequence[tuple[str, str, int]],
    named: dict[str, Any],
    seen: set[tuple[str, int]],
) -> None:
    for _name, subject, version in references:
        key = (subject, int(version))
        if key in seen:
            continue
        seen.add(key)
        dependency = client.version(subject, version)
        if dependency.schema_type != "AVRO":
            raise SerializationError(
                f"reference {subject!r} version {version} is {dependency.schema_type}, not AVRO"
            )
        _load_references(client, dependency.references, named, seen)
        _parse(dependency.schema, named)


def _parse(schema: str, named: dict[str, Any]) -> Any:
    try:
        return fastavro.parse_schema(json.loads(schema), named_schemas=named)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"Avro schema is not valid JSON: {exc}") from exc
    except (SchemaParseException, ValueError, TypeError, KeyError) as exc:
        raise SerializationError(f"invalid Avro schema: {exc}") from exc


class AvroSerializer:
    """Serialize objects with an Avro schema, registered under the strategy's subject.

    Call as ``serializer(obj, topic)``; None passes through (tombstones). With ``use_latest``
    the subject's latest registered schema is used instead of registering ``schema``.
    """

    def __init__(
        self,
        client: SchemaRegistry,
        schema: str | None = None,
        *,
        subject_name_strategy: SubjectNameStrategy = topic_name_strategy,
        auto_register: bool = True,
        use_latest: bool = False,
        normalize: bool = False,
        is_key: bool = False,
        references: Sequence[tuple[str, str, int]] = (),
    ) -> None:
        if schema is None and not use_latest:
            raise ValueError("AvroSerializer needs a schema unless use_latest is set")
        self._client = client
        self._schema = schema
        self._strategy = subject_name_strategy
        self._auto_register = auto_register
        self._use_latest = use_latest
        self._normalize = normalize
        self._is_key = is_key
        self._references = as_references(references)
        self._lock = threading.Lock()
        self._parsed: Any = None
        self._ids: dict[str, int] = {}
        self._parsed_by_id: dict[int, Any] = {}
        #: topic -> (the 5-byte frame header, parsed schema), once known (not with use_latest)
        self._by_topic: dict[str, tuple[bytes, Any]] = {}

    def __call__(self, obj: object, topic: str) -> bytes | None:
        if obj is None:
            return None
        known = self._by_topic.get(topic)
        if known is None:
            schema_id, parsed = self._writer_for(topic)
            known = (frame(schema_id, b""), parsed)
            if not self._use_latest:
                self._by_topic[topic] = known
        header, parsed = known
        buf = io.BytesIO()
        buf.write(header)  # framed in place: no second copy of the payload
        try:
            fastavro.schemaless_writer(buf, parsed, obj)
        except _ENCODE_ERRORS as exc:
            raise SerializationError(f"cannot encode the object for {topic!r}: {exc}") from exc
        return buf.getvalue()

    def _writer_for(self, topic: str) -> tuple[int, Any]:
        own = self._own_schema() if self._schema is not None else None
        subject = self._strategy(topic, self._is_key, record_name(own))
        if self._use_latest:
            latest = self._client.latest(subject)
            return latest.id, self._parse_registered(latest)
        schema_id = self._ids.get(subject)
        if schema_id is None:
            with self._lock:
                schema_id = self._ids.get(subject)
                if schema_id is None:
                    schema_id = self._ids[subject] = self._schema_id(subject)
        return schema_id, own

    def _schema_id(self, subject: str) -> int:
        assert self._schema is not None
        if self._auto_register:
            return self._client.register(
                subject, self._schema, "AVRO", self._references, self._normalize
            )
        found = self._client.lookup(
            subject, self._schema, "AVRO", self._references, self._normalize
        )
        if found is None:
            raise SerializationError(
                f"the schema is not registered under subject {subject!r} and auto_register is off"
            )
        return found.id

    def _own_schema(self) -> Any:
        if self._parsed is None:
            with self._lock:
                if self._parsed is None:
                    assert self._schema is not None
                    self._parsed = parse_avro(self._client, self._schema, self._references)
        return self._parsed

    def _parse_registered(self, registered: RegisteredSchema) -> Any:
        parsed = self._parsed_by_id.get(registered.id)
        if parsed is None:
            if registered.schema_type != "AVRO":
                raise SerializationError(
                    f"schema {registered.id} is {registered.schema_type}, not AVRO"
                )
            parsed = parse_avro(self._client, registered.schema, registered.references)
            with self._lock:
                parsed = self._parsed_by_id.setdefault(registered.id, parsed)
        return parsed


class AvroDeserializer:
    """Deserialize Confluent-framed Avro, resolving the writer's schema to ``reader_schema``.

    Call as ``deserializer(data, topic)``; None passes through. Without a reader schema the
    data is decoded as written.
    """

    def __init__(
        self,
        client: SchemaRegistry,
        reader_schema: str | None = None,
        *,
        reader_references: Sequence[tuple[str, str, int]] = (),
    ) -> None:
        self._client = client
        self._reader_schema = reader_schema
        self._reader_references = as_references(reader_references)
        self._lock = threading.Lock()
        self._reader: Any = None
        self._writers: dict[int, Any] = {}

    def __call__(self, data: bytes | None, topic: str) -> object:
        if data is None:
            return None
        if type(data) is bytes and len(data) >= HEADER_SIZE and data[0] == MAGIC_BYTE:
            # the common case, without a view or a copy of the payload
            schema_id = _SCHEMA_ID.unpack_from(data, 1)[0]
            buf = io.BytesIO(data)
            buf.seek(HEADER_SIZE)
        else:
            schema_id, payload = unframe(data)
            buf = io.BytesIO(payload)
        writer = self._writers.get(schema_id) or self._writer(schema_id)
        reader = self._reader if self._reader is not None else self._reader_parsed()
        try:
            return fastavro.schemaless_reader(buf, writer, reader)
        except _DECODE_ERRORS as exc:
            raise SerializationError(
                f"cannot decode Avro data with schema id {schema_id} from {topic!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _writer(self, schema_id: int) -> Any:
        parsed = self._writers.get(schema_id)
        if parsed is None:
            registered = self._client.schema_by_id(schema_id)
            if registered.schema_type != "AVRO":
                raise SerializationError(
                    f"schema id {schema_id} is {registered.schema_type}, not AVRO"
                )
            parsed = parse_avro(self._client, registered.schema, registered.references)
            with self._lock:
                parsed = self._writers.setdefault(schema_id, parsed)
        return parsed

    def _reader_parsed(self) -> Any:
        if self._reader_schema is None:
            return None
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    self._reader = parse_avro(
                        self._client, self._reader_schema, self._reader_references
                    )
        return self._reader
