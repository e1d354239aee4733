"""JSON Schema serializer and deserializer in the Confluent wire format."""

from __future__ import annotations

import json
import threading

from jsonschema import validators
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator

from strom.serde.client import RegisteredSchema, SchemaRegistry
from strom.serde.errors import SerializationError
from strom.serde.naming import SubjectNameStrategy, topic_name_strategy
from strom.serde.wire import frame, unframe

SCHEMA_TYPE = "JSON"


def make_validator(schema: str) -> Validator:
    """A jsonschema validator for the schema text, of the draft its ``$schema`` names."""
    try:
        document = json.loads(schema)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"JSON schema is not valid JSON: {exc}") from exc
    if not isinstance(document, dict | bool):
        raise SerializationError("a JSON schema must be an object or a boolean")
    cls = validators.validator_for(document)
    try:
        cls.check_schema(document)
    except SchemaError as exc:
        raise SerializationError(f"invalid JSON schema: {exc.message}") from exc
    return cls(document)


def validate_json(validator: Validator, obj: object) -> None:
    """Raise SerializationError with the most relevant message if ``obj`` does not conform."""
    error = best_match(validator.iter_errors(obj))
    if error is not None:
        raise SerializationError(
            f"JSON schema validation failed at {error.json_path}: {error.message}"
        )


def schema_title(schema: str) -> str | None:
    """The schema's ``title``, which the record-name strategies use as the record name."""
    try:
        document = json.loads(schema)
    except json.JSONDecodeError:
        return None
    title = document.get("title") if isinstance(document, dict) else None
    return title if isinstance(title, str) else None


class JSONSerializer:
    """Serialize objects as JSON, validated against a JSON schema registered for the subject.

    Call as ``serializer(obj, topic)``; None passes through (tombstones).
    """

    def __init__(
        self,
        client: SchemaRegistry,
        schema: str,
        *,
        subject_name_strategy: SubjectNameStrategy = topic_name_strategy,
        auto_register: bool = True,
        use_latest: bool = False,
        validate: bool = True,
        is_key: bool = False,
        normalize: bool = False,
    ) -> None:
        self._client = client
        self._schema = schema
        self._validator = make_validator(schema)
        self._record_name = schema_title(schema)
        self._strategy = subject_name_strategy
        self._auto_register = auto_register
        self._use_latest = use_latest
        self._validate = validate
        self._is_key = is_key
        self._normalize = normalize
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._validators: dict[int, Validator] = {}

    def __call__(self, obj: object, topic: str) -> bytes | None:
        if obj is None:
            return None
        subject = self._strategy(topic, self._is_key, self._record_name)
        if self._use_latest:
            latest = self._client.latest(subject)
            schema_id, validator = latest.id, self._validator_for(latest)
        else:
            schema_id, validator = self._schema_id(subject), self._validator
        if self._validate:
            validate_json(validator, obj)
        try:
            payload = json.dumps(obj).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"cannot encode the object as JSON: {exc}") from exc
        return frame(schema_id, payload)

    def _schema_id(self, subject: str) -> int:
        schema_id = self._ids.get(subject)
        if schema_id is not None:
            return schema_id
        with self._lock:
            schema_id = self._ids.get(subject)
            if schema_id is None:
                schema_id = self._ids[subject] = self._fetch_id(subject)
        return schema_id

    def _fetch_id(self, subject: str) -> int:
        if self._auto_register:
            return self._client.register(
                subject, self._schema, SCHEMA_TYPE, normalize=self._normalize
            )
        found = self._client.lookup(subject, self._schema, SCHEMA_TYPE, normalize=self._normalize)
        if found is None:
            raise SerializationError(
                f"the schema is not registered under subject {subject!r} and auto_register is off"
            )
        return found.id

    def _validator_for(self, registered: RegisteredSchema) -> Validator:
        return _cached_validator(self._validators, self._lock, registered)


class JSONDeserializer:
    """Deserialize Confluent-framed JSON, validated against ``schema`` or the writer's schema.

    Call as ``deserializer(data, topic)``; None passes through. With ``validate=False`` the
    registry is never asked.
    """

    def __init__(
        self, client: SchemaRegistry, schema: str | None = None, validate: bool = True
    ) -> None:
        self._client = client
        self._validator = make_validator(schema) if schema is not None else None
        self._validate = validate
        self._lock = threading.Lock()
        self._validators: dict[int, Validator] = {}

    def __call__(self, data: bytes | None, topic: str) -> object:
        if data is None:
            return None
        schema_id, payload = unframe(data)
        try:
            obj = json.loads(bytes(payload))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SerializationError(
                f"message with schema id {schema_id} from {topic!r} is not valid JSON: {exc}"
            ) from exc
        if self._validate:
            validator = self._validator
            if validator is None:
                validator = self._validators.get(schema_id)
            if validator is None:
                registered = self._client.schema_by_id(schema_id)
                validator = _cached_validator(self._validators, self._lock, registered)
            validate_json(validator, obj)
        return obj


def _cached_validator(
    cache: dict[int, Validator], lock: threading.Lock, registered: RegisteredSchema
) -> Validator:
    validator = cache.get(registered.id)
    if validator is None:
        if registered.schema_type != SCHEMA_TYPE:
            raise SerializationError(
                f"schema id {registered.id} is {registered.schema_type}, not {SCHEMA_TYPE}"
            )
        validator = make_validator(registered.schema)
        with lock:
            validator = cache.setdefault(registered.id, validator)
    return validator
