"""The registry's operations, as Confluent's REST API defines them: each reads the state, or
decides the records to write and waits until the log has applied them."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from strom.registry import errors as err
from strom.registry import records as rec
from strom.registry.compatibility import CompatibilityLevel, incompatibilities
from strom.registry.records import Reference, SchemaValue
from strom.registry.schemas import InvalidSchemaError, ParsedSchema, SchemaType, parse_schema
from strom.registry.state import RegistryState

DEFAULT_LEVEL = CompatibilityLevel.BACKWARD.value
MODES = ("READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT")
MAX_VERSION = 2**31 - 1
MAX_ID = 2**31 - 1
PARSED_CACHE = 10_000  # stored schemas kept parsed


class SchemaLog(Protocol):
    """Where the state comes from and where writes go (the `_schemas` topic)."""

    state: RegistryState
    lock: threading.RLock  # held while records are applied; readers of `state` take it too

    def write(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Append the records and return once the state has applied them (RegistryError
        50001/50002 if the log cannot)."""

    def sync(self) -> None:
        """Return once the state has applied everything in the log as of now."""


@dataclass(frozen=True)
class SchemaRequest:
    """The body of a register, lookup or compatibility request."""

    schema: str
    schema_type: str = "AVRO"
    references: tuple[Reference, ...] = ()
    id: int | None = None
    version: int | None = None

    @staticmethod
    def from_json(body: object) -> SchemaRequest:
        if not isinstance(body, dict):
            raise err.RegistryError(422, 422, "The request body must be a JSON object")
        schema = body.get("schema")
        if not isinstance(schema, str):
            raise err.RegistryError(422, 422, 'The request body needs "schema" as a string')
        schema_type = body.get("schemaType") or "AVRO"
        if not isinstance(schema_type, str):
            raise err.RegistryError(422, 422, '"schemaType" must be a string')
        references = body.get("references") or []
        if not isinstance(references, list):
            raise err.RegistryError(422, 422, '"references" must be a list')
        refs = []
        for r in references:
            try:
                refs.append(Reference(str(r["name"]), str(r["subject"]), int(r["version"])))
            except (KeyError, TypeError, ValueError, OverflowError):  # int(1e400) overflows
                raise err.RegistryError(
                    422, 422, f"A reference needs name, subject and version: {r!r}"
                ) from None
        schema_id = body.get("id")
        version = body.get("version")
        for name, value in (("id", schema_id), ("version", version)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise err.RegistryError(422, 422, f'"{name}" must be an integer')
        # what IMPORT keeps as given: ids are 4 bytes in Confluent's wire format
        if schema_id is not None and not 1 <= schema_id <= MAX_ID:
            raise err.RegistryError(422, 422, f'"id" must be between 1 and 2^31-1: {schema_id}')
        if version is not None and not 1 <= version <= MAX_VERSION:
            raise err.invalid_version(version)
        return SchemaRequest(schema, schema_type.upper(), tuple(refs), schema_id, version)


def _level(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in CompatibilityLevel.__members__:
        raise err.invalid_compatibility(value)
    return value.upper()


def parse_version(version: str | int, allow_latest: bool = True) -> int:
    """A version path segment: 1..2^31-1, or "latest" / -1 (returned as -1)."""
    if isinstance(version, str):
        if allow_latest and version.lower() == "latest":
            return -1
        try:
            number = int(version)
        except ValueError:
            raise err.invalid_version(version) from None
    else:
        number = version
    if number == -1 and allow_latest:
        return -1
    if not 1 <= number <= MAX_VERSION:
        raise err.invalid_version(version)
    return number


def version_json(v: SchemaValue) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": v.subject, "version": v.version, "id": v.id}
    if v.schema_type != "AVRO":
        out["schemaType"] = v.schema_type
    if v.references:
        out["references"] = [r.to_json() for r in v.references]
    out["schema"] = v.schema
    return out


def schema_json(v: SchemaValue) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if v.schema_type != "AVRO":
        out["schemaType"] = v.schema_type
    out["schema"] = v.schema
    if v.references:
        out["references"] = [r.to_json() for r in v.references]
    return out


class RegistryService:
    """Confluent's operations over one `SchemaLog`; writes are serialized by a lock."""

    def __init__(self, log: SchemaLog) -> None:
        self.log = log
        self._write_lock = threading.Lock()
        #: stored schemas parsed once (registering compares with every version of a subject)
        self._parsed: OrderedDict[tuple, ParsedSchema] = OrderedDict()

    @property
    def state(self) -> RegistryState:
        return self.log.state

    # -- schemas ---------------------------------------------------------------------------

    def _resolve(self, refs: Sequence[Reference], seen: frozenset = frozenset()) -> list:
        """(name, text) of every schema the references reach, dependencies first."""
        out: list[tuple[str, str]] = []
        for r in refs:
            if (r.subject, r.version) in seen:
                raise err.invalid_schema(f"reference cycle through {r.subject} {r.version}")
            target = self._find_version(r.subject, r.version, deleted=True, strict=False)
            if target is None:
                raise err.invalid_schema(
                    f"reference {r.name} to subject {r.subject} version {r.version} not found"
                )
            deeper = self._resolve(target.references, seen | {(r.subject, r.version)})
            for item in deeper:
                if item not in out:
                    out.append(item)
            out.append((r.name, target.schema))
        return out

    def _parse(
        self, schema_type: str, text: str, refs: Sequence[Reference], normalize: bool = False
    ) -> ParsedSchema:
        if schema_type not in SchemaType.__members__:
            raise err.RegistryError(422, 42201, f"Invalid schema type {schema_type}")
        try:
            return parse_schema(schema_type, text, self._resolve(refs), normalize=normalize)
        except InvalidSchemaError as e:
            raise err.invalid_schema(e.message) from None

    def _parse_stored(self, v: SchemaValue) -> ParsedSchema:
        key = (v.schema_type, v.schema, v.references)
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = self._parsed[key] = self._parse(v.schema_type, v.schema, v.references)
            if len(self._parsed) > PARSED_CACHE:
                self._parsed.popitem(last=False)
        return parsed

    @staticmethod
    def _stored_text(parsed: ParsedSchema, normalize: bool) -> str:
        """What is kept: the normalized form if asked, else the given text without the
        whitespace between JSON tokens (as Confluent keeps it); Protobuf as given."""
        if normalize:
            return parsed.canonical
        if parsed.schema_type == SchemaType.PROTOBUF:
            return parsed.text
        return json.dumps(json.loads(parsed.text), separators=(",", ":"), ensure_ascii=False)

    def _find_version(
        self, subject: str, version: int, deleted: bool = False, strict: bool = True
    ) -> SchemaValue | None:
        versions = self.state.versions(subject, deleted)
        if not versions:
            if strict:
                raise err.subject_not_found(subject)
            return None
        if version == -1:
            return versions[-1]
        for v in versions:
            if v.version == version:
                return v
        if strict:
            raise err.version_not_found(subject, version)
        return None

    def _same_schema(
        self, subject: str, parsed: ParsedSchema, text: str, req: SchemaRequest, deleted: bool
    ) -> SchemaValue | None:
        """The subject's version holding this schema, if any (same type, references and
        text, or the same canonical form)."""
        for v in reversed(self.state.versions(subject, deleted)):
            if v.schema_type != req.schema_type or v.references != req.references:
                continue
            if v.schema == text or v.schema == req.schema:
                return v
            try:
                if self._parse_stored(v).canonical == parsed.canonical:
                    return v
            except err.RegistryError:
                continue
        return None

    def register(self, subject: str, body: object, normalize: bool = False) -> dict[str, Any]:
        req = SchemaRequest.from_json(body)
        with self._write_lock:
            self.log.sync()
            with self.log.lock:
                mode = self.mode_of(subject)
                if mode in ("READONLY", "READONLY_OVERRIDE"):
                    raise err.operation_not_permitted(f"Subject {subject} is in read-only mode")
                if req.id is not None and mode != "IMPORT":
                    raise err.operation_not_permitted(
                        "Overwrite new schema with id is not permitted outside IMPORT mode"
                    )
                parsed = self._parse(req.schema_type, req.schema, req.references, normalize)
                text = self._stored_text(parsed, normalize)
                existing = self._same_schema(subject, parsed, text, req, deleted=False)
                if existing is not None and (req.id is None or req.id == existing.id):
                    return {"id": existing.id}
                value = self._new_version(subject, req, parsed, text, mode)
            self.log.write(
                [(rec.schema_key(subject, value.version), rec.encode_value(value.to_json()))]
            )
        return {"id": value.id}

    def _new_version(
        self, subject: str, req: SchemaRequest, parsed: ParsedSchema, text: str, mode: str
    ) -> SchemaValue:
        state = self.state
        version = state.next_version(subject)
        if mode == "IMPORT":
            if req.id is None:
                raise err.RegistryError(422, 42205, "IMPORT mode needs the schema's id")
            taken = state.schemas.get(req.id)
            if taken is not None and (
                taken.schema != text
                or taken.schema_type != req.schema_type
                or taken.references != req.references
            ):
                raise err.RegistryError(
                    422, 42207, f"Schema id {req.id} is already used by another schema"
                )
            if req.version is not None:
                if req.version in state.subjects.get(subject, {}):
                    raise err.RegistryError(
                        422, 42207, f"Version {req.version} of {subject} already exists"
                    )
                version = req.version
            schema_id = req.id
        else:
            level = CompatibilityLevel(self.level_of(subject))
            problems = self._problems(level, parsed, state.versions(subject))
            if problems:
                raise err.incompatible(subject, problems)
            key = (req.schema_type, text, req.references)
            schema_id = state.ids.get(key) or state.max_id + 1
        return SchemaValue(subject, version, schema_id, text, req.schema_type, req.references)

    def _problems(
        self, level: CompatibilityLevel, parsed: ParsedSchema, against: list[SchemaValue]
    ) -> list[str]:
        previous = [self._parse_stored(v) for v in against]
        return incompatibilities(level, parsed, previous, [v.version for v in against])

    def lookup(
        self, subject: str, body: object, deleted: bool = False, normalize: bool = False
    ) -> dict[str, Any]:
        req = SchemaRequest.from_json(body)
        with self.log.lock:
            if not self.state.versions(subject, deleted):
                raise err.subject_not_found(subject)
            parsed = self._parse(req.schema_type, req.schema, req.references, normalize)
            text = self._stored_text(parsed, normalize)
            found = self._same_schema(subject, parsed, text, req, deleted)
            if found is None:
                raise err.schema_not_found()
            return version_json(found)

    def check(
        self, subject: str, version: str | None, body: object, verbose: bool, normalize: bool
    ) -> dict[str, Any]:
        """Would this schema be compatible: against one version, or (version None) against
        the versions the subject's level looks at."""
        req = SchemaRequest.from_json(body)
        with self.log.lock:
            parsed = self._parse(req.schema_type, req.schema, req.references, normalize)
            level = CompatibilityLevel(self.level_of(subject))
            if version is None:
                against = self.state.versions(subject)
            else:
                found = self._find_version(subject, parse_version(version))
                assert found is not None
                against = [found]
                if level.value.endswith("_TRANSITIVE"):
                    level = CompatibilityLevel(level.value[: -len("_TRANSITIVE")])
            problems = self._problems(level, parsed, against)
        out: dict[str, Any] = {"is_compatible": not problems}
        if verbose:
            out["messages"] = problems
        return out

    # -- reading ---------------------------------------------------------------------------

    def subjects(self, deleted: bool = False, prefix: str | None = None) -> list[str]:
        with self.log.lock:
            names = self.state.subject_names(deleted)
        return [s for s in names if not prefix or s.startswith(prefix)]

    def versions(self, subject: str, deleted: bool = False) -> list[int]:
        with self.log.lock:
            found = self.state.versions(subject, deleted)
        if not found:
            raise err.subject_not_found(subject)
        return [v.version for v in found]

    def version(self, subject: str, version: str, deleted: bool = False) -> SchemaValue:
        number = parse_version(version)
        with self.log.lock:
            found = self._find_version(subject, number, deleted)
        assert found is not None
        return found

    def referenced_by(self, subject: str, version: str) -> list[int]:
        found = self.version(subject, version)
        with self.log.lock:
            return self.state.referenced_by(subject, found.version)

    def schema_by_id(self, schema_id: int, subject: str | None = None) -> SchemaValue:
        with self.log.lock:
            uses = self.state.uses_of(schema_id, deleted=True)
            if subject:
                uses = [v for v in uses if v.subject == subject]
            found = uses[0] if uses else (None if subject else self.state.schemas.get(schema_id))
        if found is None:
            raise err.schema_not_found()
        return found

    def id_versions(self, schema_id: int, deleted: bool = False) -> list[dict[str, Any]]:
        self.schema_by_id(schema_id)
        with self.log.lock:
            uses = self.state.uses_of(schema_id, deleted)
        return [{"subject": v.subject, "version": v.version} for v in uses]

    def id_subjects(self, schema_id: int, deleted: bool = False) -> list[str]:
        return sorted({u["subject"] for u in self.id_versions(schema_id, deleted)})

    # -- deleting --------------------------------------------------------------------------

    def _check_writable(self, subject: str) -> None:
        if self.mode_of(subject) in ("READONLY", "READONLY_OVERRIDE"):
            raise err.operation_not_permitted(f"Subject {subject} is in read-only mode")

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        with self._write_lock:
            self.log.sync()
            with self.log.lock:
                self._check_writable(subject)
                every = self.state.versions(subject, deleted=True)
                if not every:
                    raise err.subject_not_found(subject)
                live = [v for v in every if not v.deleted]
                for v in every:
                    if self.state.referenced_by(subject, v.version):
                        raise err.reference_exists(
                            f"One or more references exist to the schema "
                            f"{{subject={subject},version={v.version}}}"
                        )
                if permanent:
                    if live:
                        raise err.RegistryError(
                            404,
                            40405,
                            f"Subject '{subject}' was not deleted first before being "
                            "permanently deleted",
                        )
                    records = [(rec.schema_key(subject, v.version), None) for v in every]
                    records.append((rec.subject_key(rec.CONFIG, subject), None))
                    records.append((rec.subject_key(rec.MODE, subject), None))
                    gone = [v.version for v in every]
                else:
                    records = [
                        (
                            rec.schema_key(subject, v.version),
                            rec.encode_value({**v.to_json(), "deleted": True}),
                        )
                        for v in live
                    ]
                    gone = [v.version for v in live]
            self.log.write(records)
        return gone

    def delete_version(self, subject: str, version: str, permanent: bool = False) -> int:
        number = parse_version(version)
        with self._write_lock:
            self.log.sync()
            with self.log.lock:
                self._check_writable(subject)
                found = self._find_version(subject, number, deleted=permanent)
                assert found is not None
                if self.state.referenced_by(subject, found.version):
                    raise err.reference_exists()
                key = rec.schema_key(subject, found.version)
                if permanent:
                    if not found.deleted:
                        raise err.RegistryError(
                            404,
                            40407,
                            f"Subject '{subject}' Version {found.version} was not deleted "
                            "first before being permanently deleted",
                        )
                    records = [(key, None)]
                else:
                    records = [(key, rec.encode_value({**found.to_json(), "deleted": True}))]
            self.log.write(records)
        return found.version

    # -- config and mode -------------------------------------------------------------------

    def level_of(self, subject: str | None) -> str:
        state = self.state
        if subject is not None and subject in state.configs:
            return state.configs[subject]
        return state.global_config or DEFAULT_LEVEL

    def get_config(self, subject: str | None, default_to_global: bool = False) -> dict[str, str]:
        with self.log.lock:
            if subject is None or default_to_global:
                return {"compatibilityLevel": self.level_of(subject)}
            level = self.state.configs.get(subject)
        if level is None:
            raise err.RegistryError(
                404,
                40408,
                f"Subject '{subject}' does not have subject-level compatibility configured",
            )
        return {"compatibilityLevel": level}

    def set_config(self, subject: str | None, body: object) -> dict[str, str]:
        level = _level(body.get("compatibility") if isinstance(body, dict) else None)
        self._write_setting(rec.CONFIG, subject, {"compatibilityLevel": level})
        return {"compatibility": level}

    def delete_config(self, subject: str | None) -> dict[str, str]:
        previous = self.get_config(subject)
        self._write_setting(rec.CONFIG, subject, None)
        return previous

    def mode_of(self, subject: str | None) -> str:
        state = self.state
        if subject is not None and subject in state.modes:
            return state.modes[subject]
        return state.global_mode or "READWRITE"

    def get_mode(self, subject: str | None, default_to_global: bool = False) -> dict[str, str]:
        with self.log.lock:
            if subject is None or default_to_global:
                return {"mode": self.mode_of(subject)}
            mode = self.state.modes.get(subject)
        if mode is None:
            raise err.RegistryError(
                404, 40409, f"Subject '{subject}' does not have subject-level mode configured"
            )
        return {"mode": mode}

    def set_mode(self, subject: str | None, body: object, force: bool = False) -> dict[str, str]:
        mode = body.get("mode") if isinstance(body, dict) else None
        if not isinstance(mode, str) or mode.upper() not in MODES:
            raise err.invalid_mode(mode)
        mode = mode.upper()
        if mode == "IMPORT" and not force:
            with self.log.lock:
                names = [subject] if subject else self.state.subject_names()
                if any(self.state.versions(s) for s in names):
                    raise err.operation_not_permitted("Cannot import since found existing subjects")
        self._write_setting(rec.MODE, subject, {"mode": mode})
        return {"mode": mode}

    def delete_mode(self, subject: str) -> dict[str, str]:
        previous = self.get_mode(subject)
        self._write_setting(rec.MODE, subject, None)
        return previous

    def _write_setting(self, keytype: str, subject: str | None, value: dict | None) -> None:
        with self._write_lock:
            self.log.write([(rec.subject_key(keytype, subject), rec.encode_value(value))])
