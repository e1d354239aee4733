"""Confluent Schema Registry's REST API on FastAPI: routes, JSON bodies and error answers.

Every answer is JSON with Confluent's content type; every failure is `{"error_code",
"message"}` with Confluent's codes; nothing escapes as an unhandled 500."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from strom.registry import errors as err
from strom.registry.election import PrimaryElection
from strom.registry.service import RegistryService, schema_json, version_json

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SCHEMA_TYPES = ["JSON", "PROTOBUF", "AVRO"]
ACCEPTED_TYPES = frozenset(
    [
        CONTENT_TYPE,
        "application/vnd.schemaregistry+json",
        "application/json",
        "application/octet-stream",
    ]
)
FORWARD_WAIT_S = 15.0  # how long a write waits for a primary to be elected before 50003
MAX_BODY = 8 << 20  # bytes of a request body; a schema larger than this is refused (413)
FORWARDED = "X-Strom-Forwarded"  # set on a write one registry process forwards to the primary


BODY_TYPES = (CONTENT_TYPE, "application/json")  # described in the OpenAPI; more are accepted


def _json_body(schema: dict, examples: dict[str, Any]) -> dict:
    """An OpenAPI request body (for `openapi_extra`): the routes read the raw request, so
    FastAPI would otherwise describe none."""
    media = {"schema": schema, "examples": {k: {"value": v} for k, v in examples.items()}}
    return {"requestBody": {"required": True, "content": {t: dict(media) for t in BODY_TYPES}}}


_REFERENCE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "subject": {"type": "string"},
        "version": {"type": "integer"},
    },
    "required": ["name", "subject", "version"],
}
_AVRO_EXAMPLE = json.dumps(
    {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": 0}]}
)
SCHEMA_BODY = _json_body(
    {
        "type": "object",
        "properties": {
            "schema": {"type": "string"},
            "schemaType": {"type": "string"},
            "references": {"type": "array", "items": _REFERENCE},
            "id": {"type": "integer"},
            "version": {"type": "integer"},
        },
        "required": ["schema"],
    },
    {
        "avro": {"schema": _AVRO_EXAMPLE},
        "json": {"schemaType": "JSON", "schema": '{"type":"object","properties":{}}'},
        "protobuf": {"schemaType": "PROTOBUF", "schema": 'syntax = "proto3"; message M {}'},
    },
)
CONFIG_BODY = _json_body(
    {"type": "object", "properties": {"compatibility": {"type": "string"}}},
    {"full": {"compatibility": "FULL"}},
)
MODE_BODY = _json_body(
    {"type": "object", "properties": {"mode": {"type": "string"}}},
    {"readwrite": {"mode": "READWRITE"}},
)


class RegistryResponse(JSONResponse):
    media_type = CONTENT_TYPE

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:  # a lone surrogate (say, echoed in a message): escape it
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


def _error(status: int, code: int, message: str) -> RegistryResponse:
    return RegistryResponse({"error_code": code, "message": message}, status_code=status)


async def _body(request: Request) -> Any:
    """The JSON body of a request: of an accepted content type, at most MAX_BODY bytes
    (read no further than that, whatever Content-Length says)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in ACCEPTED_TYPES:
        raise err.RegistryError(415, 415, f"HTTP 415 Unsupported Media Type: {ctype}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    request.state.raw_body = raw  # the stream is consumed: a forward sends these bytes
    if not raw.strip():
        raise err.RegistryError(422, 422, "The request needs a JSON body")
    try:
        body = json.loads(raw)
        # JSON's \u escapes (and json.loads of bytes, which lets surrogates pass) can give
        # lone UTF-16 surrogates, which no UTF-8 text (an answer, a record) can hold
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise err.RegistryError(
            422, 422, "The request body has a string that is not valid Unicode (a lone surrogate)"
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise err.RegistryError(400, 400, f"Malformed JSON: {e}") from None
    except RecursionError:
        raise err.RegistryError(400, 400, "Malformed JSON: nested too deeply") from None
    return body


def _too_large() -> err.RegistryError:
    return err.RegistryError(413, 413, f"The request body is larger than {MAX_BODY} bytes")


def make_app(service: RegistryService, election: PrimaryElection | None = None) -> FastAPI:
    """The registry's HTTP application over one service (the OpenAPI description is served
    at /openapi.json and /docs). With an election, a process that is not the primary forwards
    writes to the one that is, and answers once it has read the result back."""
    app = FastAPI(
        title="Strom schema registry",
        description="Confluent Schema Registry's REST API, schemas kept in the _schemas topic.",
        default_response_class=RegistryResponse,
    )

    async def write(request: Request, fn: Any, *args: Any) -> Response:
        if election is None or election.is_primary or request.headers.get(FORWARDED):
            return RegistryResponse(await _in_thread(fn, *args))
        return await _forward(request, election, service, write, fn, *args)

    @app.exception_handler(err.RegistryError)
    async def registry_error(_request: Request, e: err.RegistryError) -> Response:
        return _error(e.status, e.code, e.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, e: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in x.get('loc', ()))}: {x.get('msg')}" for x in e.errors()
        )
        return _error(422, 422, f"Unprocessable request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, e: StarletteHTTPException) -> Response:
        return _error(e.status_code, e.status_code, f"HTTP {e.status_code} {e.detail}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception) -> Response:
        log.exception("registry: %s %s failed", request.method, request.url.path)
        return _error(500, 50001, f"Error in the registry: {type(e).__name__}: {e}")

    # -- root and schemas --------------------------------------------------------------------

    @app.get("/")
    def root() -> dict:
        return {}

    @app.get("/schemas/types")
    def schema_types() -> list[str]:
        return SCHEMA_TYPES

    @app.get("/schemas")
    def schemas(
        subjectPrefix: str | None = None,  # noqa: N803 - Confluent's parameter names
        deleted: bool = False,
        latestOnly: bool = False,  # noqa: N803
    ) -> list[dict]:
        out = []
        for subject in service.subjects(deleted, subjectPrefix):
            versions = service.versions(subject, deleted)
            if latestOnly:
                versions = versions[-1:]
            out += [version_json(service.version(subject, str(v), deleted)) for v in versions]
        return out

    @app.get("/schemas/ids/{schema_id}")
    def schema_by_id(schema_id: int, subject: str | None = None) -> dict:
        return schema_json(service.schema_by_id(schema_id, subject))

    @app.get("/schemas/ids/{schema_id}/schema")
    def raw_schema_by_id(schema_id: int, subject: str | None = None) -> Response:
        return Response(service.schema_by_id(schema_id, subject).schema, media_type=CONTENT_TYPE)

    @app.get("/schemas/ids/{schema_id}/subjects")
    def id_subjects(schema_id: int, deleted: bool = False) -> list[str]:
        return service.id_subjects(schema_id, deleted)

    @app.get("/schemas/ids/{schema_id}/versions")
    def id_versions(schema_id: int, deleted: bool = False) -> list[dict]:
        return service.id_versions(schema_id, deleted)

    # -- subjects ----------------------------------------------------------------------------

    @app.get("/subjects")
    def subjects(
        subjectPrefix: str | None = None,  # noqa: N803
        deleted: bool = False,
    ) -> list[str]:
        return service.subjects(deleted, subjectPrefix)

    @app.get("/subjects/{subject}/versions")
    def versions(subject: str, deleted: bool = False) -> list[int]:
        return service.versions(subject, deleted)

    @app.post("/subjects/{subject}/versions", openapi_extra=SCHEMA_BODY)
    async def register(request: Request, subject: str, normalize: bool = False) -> Response:
        body = await _body(request)
        return await write(request, service.register, subject, body, normalize)

    @app.post("/subjects/{subject}", openapi_extra=SCHEMA_BODY)
    async def lookup(
        request: Request, subject: str, normalize: bool = False, deleted: bool = False
    ) -> Response:
        body = await _body(request)
        return RegistryResponse(await _in_thread(service.lookup, subject, body, deleted, normalize))

    @app.get("/subjects/{subject}/versions/{version}")
    def version(subject: str, version: str, deleted: bool = False) -> dict:
        return version_json(service.version(subject, version, deleted))

    @app.get("/subjects/{subject}/versions/{version}/schema")
    def raw_version(subject: str, version: str, deleted: bool = False) -> Response:
        return Response(service.version(subject, version, deleted).schema, media_type=CONTENT_TYPE)

    @app.get("/subjects/{subject}/versions/{version}/referencedby")
    def referenced_by(subject: str, version: str) -> list[int]:
        return service.referenced_by(subject, version)

    @app.delete("/subjects/{subject}")
    async def delete_subject(request: Request, subject: str, permanent: bool = False) -> Response:
        return await write(request, service.delete_subject, subject, permanent)

    @app.delete("/subjects/{subject}/versions/{version}")
    async def delete_version(
        request: Request, subject: str, version: str, permanent: bool = False
    ) -> Response:
        return await write(request, service.delete_version, subject, version, permanent)

    # -- compatibility -----------------------------------------------------------------------

    @app.post("/compatibility/subjects/{subject}/versions/{version}", openapi_extra=SCHEMA_BODY)
    async def check_version(
        request: Request, subject: str, version: str, verbose: bool = False, normalize: bool = False
    ) -> Response:
        body = await _body(request)
        result = await _in_thread(service.check, subject, version, body, verbose, normalize)
        return RegistryResponse(result)

    @app.post("/compatibility/subjects/{subject}/versions", openapi_extra=SCHEMA_BODY)
    async def check_all(
        request: Request, subject: str, verbose: bool = False, normalize: bool = False
    ) -> Response:
        body = await _body(request)
        result = await _in_thread(service.check, subject, None, body, verbose, normalize)
        return RegistryResponse(result)

    # -- config and mode ---------------------------------------------------------------------

    @app.get("/config")
    def get_global_config() -> dict:
        return service.get_config(None)

    @app.put("/config", openapi_extra=CONFIG_BODY)
    async def put_global_config(request: Request) -> Response:
        body = await _body(request)
        return await write(request, service.set_config, None, body)

    @app.delete("/config")
    async def delete_global_config(request: Request) -> Response:
        return await write(request, service.delete_config, None)

    @app.get("/config/{subject}")
    def get_config(subject: str, defaultToGlobal: bool = False) -> dict:  # noqa: N803
        return service.get_config(subject, defaultToGlobal)

    @app.put("/config/{subject}", openapi_extra=CONFIG_BODY)
    async def put_config(request: Request, subject: str) -> Response:
        body = await _body(request)
        return await write(request, service.set_config, subject, body)

    @app.delete("/config/{subject}")
    async def delete_config(request: Request, subject: str) -> Response:
        return await write(request, service.delete_config, subject)

    @app.get("/mode")
    def get_global_mode() -> dict:
        return service.get_mode(None)

    @app.put("/mode", openapi_extra=MODE_BODY)
    async def put_global_mode(request: Request, force: bool = False) -> Response:
        body = await _body(request)
        return await write(request, service.set_mode, None, body, force)

    @app.get("/mode/{subject}")
    def get_mode(subject: str, defaultToGlobal: bool = False) -> dict:  # noqa: N803
        return service.get_mode(subject, defaultToGlobal)

    @app.put("/mode/{subject}", openapi_extra=MODE_BODY)
    async def put_mode(request: Request, subject: str, force: bool = False) -> Response:
        body = await _body(request)
        return await write(request, service.set_mode, subject, body, force)

    @app.delete("/mode/{subject}")
    async def delete_mode(request: Request, subject: str) -> Response:
        return await write(request, service.delete_mode, subject)

    return app


async def _forward(
    request: Request,
    election: PrimaryElection,
    service: RegistryService,
    write: Any,
    fn: Any,
    *args: Any,
) -> Response:
    """Send a write to the primary, pass its answer back; then read the topic up to now, so
    what the primary wrote is visible here when the client asks next."""
    import httpx

    url = await _in_thread(election.wait_primary, FORWARD_WAIT_S)
    if url is None:
        raise err.forward_error("no registry process is the primary right now")
    if url == election.url:  # it became this one meanwhile
        return await write(request, fn, *args)
    target = url.rstrip("/") + request.url.path
    if request.url.query:
        target += "?" + request.url.query
    headers = {"Content-Type": request.headers.get("content-type", CONTENT_TYPE), FORWARDED: "1"}
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(
                request.method,
                target,
                content=getattr(request.state, "raw_body", b""),
                headers=headers,
            )
    except httpx.HTTPError as e:
        raise err.forward_error(f"{url}: {e}") from None
    if answer.status_code < 300:
        await _in_thread(service.log.sync)
    return Response(answer.content, status_code=answer.status_code, media_type=CONTENT_TYPE)


async def _in_thread(fn: Any, *args: Any) -> Any:
    """Run a blocking service call off the event loop (the sync routes do so by themselves)."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
