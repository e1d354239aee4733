"""An HTTP client of the Confluent Schema Registry REST API, with caches."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote

import httpx

from strom.serde.errors import RegistryError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
ACCEPT = f"{CONTENT_TYPE}, application/json"

SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403


class SchemaReference(NamedTuple):
    """A named type that a schema takes from another subject's version."""

    name: str
    subject: str
    version: int


@dataclass(frozen=True)
class RegisteredSchema:
    """A schema as the registry knows it; subject and version when it was asked by subject."""

    id: int
    schema: str
    schema_type: str = "AVRO"
    references: tuple[SchemaReference, ...] = ()
    subject: str | None = None
    version: int | None = None


class SchemaRegistry(Protocol):
    """What the serializers need of a registry; RegistryClient is the real one."""

    def register(
        self,
        subject: str,
        schema: str,
        schema_type: str = "AVRO",
        references: Sequence[tuple[str, str, int]] = (),
        normalize: bool = False,
    ) -> int: ...

    def lookup(
        self,
        subject: str,
        schema: str,
        schema_type: str = "AVRO",
        references: Sequence[tuple[str, str, int]] = (),
        normalize: bool = False,
    ) -> RegisteredSchema | None: ...

    def schema_by_id(self, schema_id: int) -> RegisteredSchema: ...

    def latest(self, subject: str) -> RegisteredSchema: ...

    def version(self, subject: str, version: int | str) -> RegisteredSchema: ...


def as_references(references: Iterable[tuple[str, str, int]]) -> tuple[SchemaReference, ...]:
    """Normalize (name, subject, version) triples into SchemaReference tuples."""
    return tuple(SchemaReference(str(n), str(s), int(v)) for n, s, v in references)


@dataclass
class _Caches:
    by_id: dict[int, RegisteredSchema]
    ids: dict[tuple[Any, ...], int]
    lookups: dict[tuple[Any, ...], RegisteredSchema]
    versions: dict[tuple[str, int], RegisteredSchema]
    latest: dict[str, tuple[float, RegisteredSchema]]


class RegistryClient:
    """A thread-safe client of a Confluent-compatible schema registry at ``url``.

    Schemas by id are cached forever (ids are immutable), registered ids per
    (subject, schema, type, references), versions by number, and the latest version of a
    subject for ``latest_ttl_s`` seconds.
    """

    def __init__(self, url: str, timeout: float = 10.0, *, latest_ttl_s: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            timeout=timeout,
            headers={"Accept": ACCEPT},
        )
        self._latest_ttl_s = latest_ttl_s
        self._lock = threading.Lock()
        self._caches = _Caches(by_id={}, ids={}, lookups={}, versions={}, latest={})

    # -- the REST calls -------------------------------------------------------------------

    def register(
        self,
        subject: str,
        schema: str,
        schema_type: str = "AVRO",
        references: Sequence[tuple[str, str, int]] = (),
        normalize: bool = False,
    ) -> int:
        """Register ``schema`` under ``subject`` (or find it there); return its global id."""
        refs = as_references(references)
        key = (subject, schema, schema_type, refs)
        with self._lock:
            cached = self._caches.ids.get(key)
        if cached is not None:
            return cached
        body = self._request(
            "POST",
            f"/subjects/{_quote(subject)}/versions",
            json=_schema_body(schema, schema_type, refs),
            params={"normalize": "true"} if normalize else None,
        )
        schema_id = int(body["id"])
        with self._lock:
            self._caches.ids[key] = schema_id
            self._caches.by_id.setdefault(
                schema_id, RegisteredSchema(schema_id, schema, schema_type, refs)
            )
        return schema_id

    def lookup(
        self,
        subject: str,
        schema: str,
        schema_type: str = "AVRO",
        references: Sequence[tuple[str, str, int]] = (),
        normalize: bool = False,
    ) -> RegisteredSchema | None:
        """The version of ``subject`` holding ``schema``, or None if it is not registered there."""
        refs = as_references(references)
        key = (subject, schema, schema_type, refs)
        with self._lock:
            cached = self._caches.lookups.get(key)
        if cached is not None:
            return cached
        try:
            body = self._request(
                "POST",
                f"/subjects/{_quote(subject)}",
                json=_schema_body(schema, schema_type, refs),
                params={"normalize": "true"} if normalize else None,
            )
        except RegistryError as exc:
            if exc.error_code in (SUBJECT_NOT_FOUND, SCHEMA_NOT_FOUND):
                return None
            raise
        found = _parse_schema(body, subject=subject)
        with self._lock:
            self._caches.lookups[key] = found
            self._caches.ids[key] = found.id
            self._caches.by_id.setdefault(found.id, _without_subject(found))
        return found

    def schema_by_id(self, schema_id: int) -> RegisteredSchema:
        """The schema with global id ``schema_id`` (subject and version are None)."""
        with self._lock:
            cached = self._caches.by_id.get(schema_id)
        if cached is not None:
            return cached
        body = self._request("GET", f"/schemas/ids/{int(schema_id)}")
        found = _parse_schema({**body, "id": schema_id})
        with self._lock:
            return self._caches.by_id.setdefault(schema_id, found)

    def latest(self, subject: str) -> RegisteredSchema:
        """The latest version of ``subject``, cached for ``latest_ttl_s`` seconds."""
        now = time.monotonic()
        with self._lock:
            entry = self._caches.latest.get(subject)
        if entry is not None and now - entry[0] < self._latest_ttl_s:
            return entry[1]
        found = self._fetch_version(subject, "latest")
        with self._lock:
            self._caches.latest[subject] = (now, found)
        return found

    def version(self, subject: str, version: int | str) -> RegisteredSchema:
        """Version ``version`` of ``subject`` (a number, or "latest")."""
        if str(version) in ("latest", "-1"):
            return self.latest(subject)
        number = int(version)
        with self._lock:
            cached = self._caches.versions.get((subject, number))
        if cached is not None:
            return cached
        found = self._fetch_version(subject, number)
        with self._lock:
            return self._caches.versions.setdefault((subject, number), found)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers --------------------------------------------------------------------------

    def _fetch_version(self, subject: str, version: int | str) -> RegisteredSchema:
        body = self._request("GET", f"/subjects/{_quote(subject)}/versions/{version}")
        found = _parse_schema(body, subject=subject)
        with self._lock:
            self._caches.by_id.setdefault(found.id, _without_subject(found))
            if found.version is not None:
                self._caches.versions.setdefault((subject, found.version), found)
        return found

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = {"Content-Type": CONTENT_TYPE} if json is not None else None
        try:
            response = self._http.request(method, path, json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(0, 0, f"{method} {path} failed: {exc}") from exc
        if response.is_success:
            try:
                body = response.json()
            except ValueError as exc:
                raise RegistryError(
                    response.status_code, 0, f"{method} {path}: the answer is not JSON"
                ) from exc
            if not isinstance(body, dict):
                raise RegistryError(
                    response.status_code, 0, f"{method} {path}: expected a JSON object"
                )
            return body
        raise _error_from(response)


def _quote(subject: str) -> str:
    return quote(subject, safe="")


def _schema_body(
    schema: str, schema_type: str, references: tuple[SchemaReference, ...]
) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": schema}
    if schema_type != "AVRO":
        body["schemaType"] = schema_type
    if references:
        body["references"] = [r._asdict() for r in references]
    return body


def _parse_schema(body: dict[str, Any], subject: str | None = None) -> RegisteredSchema:
    try:
        refs = tuple(
            SchemaReference(r["name"], r["subject"], int(r["version"]))
            for r in body.get("references") or ()
        )
        version = body.get("version")
        return RegisteredSchema(
            id=int(body["id"]),
            schema=str(body["schema"]),
            schema_type=str(body.get("schemaType") or "AVRO"),
            references=refs,
            subject=body.get("subject", subject),
            version=int(version) if version is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(200, 0, f"malformed schema in the registry's answer: {exc!r}") from exc


def _without_subject(found: RegisteredSchema) -> RegisteredSchema:
    return RegisteredSchema(found.id, found.schema, found.schema_type, found.references)


def _error_from(response: httpx.Response) -> RegistryError:
    try:
        body = response.json()
        code = int(body["error_code"])
        message = str(body.get("message", ""))
    except (ValueError, KeyError, TypeError):
        code = response.status_code
        message = response.text.strip() or response.reason_phrase
    return RegistryError(response.status_code, code, message)
