"""Tests of RegistryClient against a tiny canned HTTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from strom.serde import RegisteredSchema, RegistryClient, RegistryError, SchemaReference

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SCHEMA = '{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}'


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: object


@dataclass
class FakeRegistry:
    """Canned answers by (method, raw path); records every request."""

    url: str = ""
    routes: dict[tuple[str, str], tuple[int, object]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int, body: object) -> None:
        self.routes[(method, path)] = (status, body)

    def hits(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if (r.method, r.path) == (method, path))


def _handler(fake: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            fake.requests.append(
                Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
            )
            status, body = fake.routes.get(
                (self.command, self.path),
                (404, {"error_code": 404, "message": "HTTP 404 Not Found"}),
            )
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            ctype = "text/plain" if isinstance(body, str) else CONTENT_TYPE
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    registry = FakeRegistry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        registry.url = f"http://127.0.0.1:{server.server_address[1]}/"
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def client(fake: FakeRegistry) -> Iterator[RegistryClient]:
    with RegistryClient(fake.url, timeout=5.0) as registry_client:
        yield registry_client


def test_register_path_body_and_content_type(fake: FakeRegistry, client: RegistryClient) -> None:
    path = "/subjects/team%2Forders%20v1-value/versions"
    fake.answer("POST", path, 200, {"id": 7})
    assert client.register("team/orders v1-value", SCHEMA) == 7
    assert client.register("team/orders v1-value", SCHEMA) == 7
    assert fake.hits("POST", path) == 1
    request = fake.requests[0]
    assert request.body == {"schema": SCHEMA}
    assert request.headers["content-type"] == CONTENT_TYPE
    assert CONTENT_TYPE in request.headers["accept"]
    # The registered schema is known by id without asking.
    assert client.schema_by_id(7).schema == SCHEMA
    assert len(fake.requests) == 1


def test_register_json_with_references_and_normalize(
    fake: FakeRegistry, client: RegistryClient
) -> None:
    path = "/subjects/people-value/versions?normalize=true"
    fake.answer("POST", path, 200, {"id": 3})
    refs = [("geo.City", "geo.City", 2)]
    assert client.register("people-value", '{"type":"object"}', "JSON", refs, normalize=True) == 3
    assert fake.requests[0].body == {
        "schema": '{"type":"object"}',
        "schemaType": "JSON",
        "references": [{"name": "geo.City", "subject": "geo.City", "version": 2}],
    }


def test_register_error(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.answer(
        "POST",
        "/subjects/s/versions",
        409,
        {"error_code": 409, "message": "Schema being registered is incompatible"},
    )
    with pytest.raises(RegistryError, match="incompatible") as info:
        client.register("s", SCHEMA)
    assert (info.value.status, info.value.error_code) == (409, 409)


def test_lookup_found(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.answer(
        "POST",
        "/subjects/orders-value",
        200,
        {"subject": "orders-value", "id": 5, "version": 2, "schema": SCHEMA},
    )
    found = client.lookup("orders-value", SCHEMA)
    assert found == RegisteredSchema(5, SCHEMA, "AVRO", (), "orders-value", 2)
    assert client.lookup("orders-value", SCHEMA) == found
    assert client.register("orders-value", SCHEMA) == 5
    assert len(fake.requests) == 1
    assert fake.requests[0].body == {"schema": SCHEMA}


@pytest.mark.parametrize("code", [40401, 40403])
def test_lookup_not_found_is_none(fake: FakeRegistry, client: RegistryClient, code: int) -> None:
    fake.answer("POST", "/subjects/orders-value", 404, {"error_code": code, "message": "nope"})
    assert client.lookup("orders-value", SCHEMA) is None
    # Misses are not cached: the schema may be registered later.
    assert client.lookup("orders-value", SCHEMA) is None
    assert len(fake.requests) == 2


def test_lookup_other_errors_raise(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.answer(
        "POST", "/subjects/orders-value", 500, {"error_code": 50001, "message": "store failed"}
    )
    with pytest.raises(RegistryError) as info:
        client.lookup("orders-value", SCHEMA)
    assert (info.value.status, info.value.error_code, info.value.message) == (
        500,
        50001,
        "store failed",
    )


def test_schema_by_id_is_cached(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.answer("GET", "/schemas/ids/11", 200, {"schema": SCHEMA})
    fake.answer(
        "GET",
        "/schemas/ids/12",
        200,
        {
            "schema": '{"type":"object"}',
            "schemaType": "JSON",
            "references": [{"name": "a.json", "subject": "a", "version": 1}],
        },
    )
    first = client.schema_by_id(11)
    assert first == RegisteredSchema(11, SCHEMA, "AVRO")
    assert client.schema_by_id(11) is first
    assert fake.hits("GET", "/schemas/ids/11") == 1
    other = client.schema_by_id(12)
    assert other.schema_type == "JSON"
    assert other.references == (SchemaReference("a.json", "a", 1),)
    assert fake.requests[0].headers.get("content-type") is None


def test_schema_by_id_not_found(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.answer("GET", "/schemas/ids/99", 404, {"error_code": 40403, "message": "Schema not found"})
    with pytest.raises(RegistryError) as info:
        client.schema_by_id(99)
    assert (info.value.status, info.value.error_code) == (404, 40403)
    assert info.value.message == "Schema not found"


def test_subject_not_found(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.answer(
        "GET",
        "/subjects/gone/versions/latest",
        404,
        {"error_code": 40401, "message": "Subject 'gone' not found."},
    )
    with pytest.raises(RegistryError, match="40401") as info:
        client.latest("gone")
    assert info.value.error_code == 40401
    assert info.value.message == "Subject 'gone' not found."


def _version_body(version: int, schema_id: int) -> dict[str, object]:
    return {"subject": "a/b", "version": version, "id": schema_id, "schema": SCHEMA}


def test_latest_is_cached_for_the_ttl(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.answer("GET", "/subjects/a%2Fb/versions/latest", 200, _version_body(3, 30))
    latest = client.latest("a/b")
    assert (latest.id, latest.version, latest.subject) == (30, 3, "a/b")
    assert client.latest("a/b") == latest
    assert client.version("a/b", "latest") == latest
    assert client.version("a/b", 3) == latest
    assert client.schema_by_id(30).schema == SCHEMA
    assert len(fake.requests) == 1


def test_latest_refetched_after_the_ttl(fake: FakeRegistry) -> None:
    fake.answer("GET", "/subjects/s/versions/latest", 200, _version_body(1, 10))
    with RegistryClient(fake.url, latest_ttl_s=0) as client:
        assert client.latest("s").id == 10
        fake.answer("GET", "/subjects/s/versions/latest", 200, _version_body(2, 20))
        assert client.latest("s").id == 20
    assert fake.hits("GET", "/subjects/s/versions/latest") == 2


def test_version_is_cached(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.answer("GET", "/subjects/a%2Fb/versions/2", 200, _version_body(2, 21))
    assert client.version("a/b", 2) == RegisteredSchema(21, SCHEMA, "AVRO", (), "a/b", 2)
    assert client.version("a/b", 2).id == 21
    assert len(fake.requests) == 1


def test_non_json_error_body(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.answer("GET", "/schemas/ids/1", 502, "Bad Gateway")
    with pytest.raises(RegistryError) as info:
        client.schema_by_id(1)
    assert (info.value.status, info.value.error_code, info.value.message) == (
        502,
        502,
        "Bad Gateway",
    )


def test_unreachable_registry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        RegistryClient(f"http://127.0.0.1:{port}", timeout=2.0) as client,
        pytest.raises(RegistryError) as info,
    ):
        client.schema_by_id(1)
    assert info.value.status == 0


def test_concurrent_lookups_share_the_cache(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.answer("GET", "/schemas/ids/4", 200, {"schema": SCHEMA})
    results: list[RegisteredSchema] = []
    threads = [
        threading.Thread(target=lambda: results.append(client.schema_by_id(4))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert all(r is results[0] for r in results)
