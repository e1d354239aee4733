"""The registry's operations over a log kept in memory (the records still go through the
`_schemas` format): versions, ids, references, deletes, IMPORT mode, normalize."""

from __future__ import annotations

import json
import threading

import pytest

from strom.registry import records as rec
from strom.registry.errors import RegistryError
from strom.registry.service import RegistryService
from strom.registry.state import RegistryState


class MemoryLog:
    """A `SchemaLog` whose topic is a list: every write is encoded, decoded and applied."""

    def __init__(self) -> None:
        self.state = RegistryState()
        self.lock = threading.RLock()
        self.topic: list[tuple[bytes, bytes | None]] = []

    def write(self, records) -> None:  # noqa: ANN001
        with self.lock:
            for key, value in records:
                self.topic.append((key, value))
                self.state.apply(rec.decode(key, value))

    def sync(self) -> None:
        pass


def _avro(name: str, *fields: tuple[str, str, object]) -> dict:
    out = []
    for fname, ftype, *default in fields:
        field = {"name": fname, "type": ftype}
        if default:
            field["default"] = default[0]
        out.append(field)
    return {"schema": json.dumps({"type": "record", "name": name, "fields": out})}


def _code(fn, *args) -> int:  # noqa: ANN001
    with pytest.raises(RegistryError) as e:
        fn(*args)
    return e.value.code


@pytest.fixture
def svc() -> RegistryService:
    return RegistryService(MemoryLog())


def test_versions_ids_and_replay(svc: RegistryService) -> None:
    a1 = svc.register("a", _avro("R", ("x", "int")))["id"]
    a2 = svc.register("a", _avro("R", ("x", "int"), ("y", "string", "")))["id"]
    b1 = svc.register("b", _avro("R", ("x", "int")))["id"]
    assert (a1, a2, b1) == (1, 2, 1)
    assert svc.register("a", _avro("R", ("x", "int")))["id"] == 1  # already version 1
    assert svc.versions("a") == [1, 2]
    assert svc.lookup("a", _avro("R", ("x", "int")))["version"] == 1
    assert svc.id_versions(1) == [
        {"subject": "a", "version": 1},
        {"subject": "b", "version": 1},
    ]
    # a registry reading the same topic from the start serves the same
    again = RegistryService(MemoryLog())
    again.log.write(svc.log.topic)  # type: ignore[attr-defined]
    assert (
        again.versions("a") == [1, 2]
        and again.schema_by_id(2).schema == svc.version("a", "2").schema
    )


def test_references_must_exist_and_block_deletes(svc: RegistryService) -> None:
    addr = svc.register("addr", _avro("com.x.Address", ("street", "string")))["id"]
    user = {
        "schema": json.dumps(
            {
                "type": "record",
                "name": "User",
                "fields": [{"name": "home", "type": "com.x.Address"}],
            }
        ),
        "references": [{"name": "com.x.Address", "subject": "addr", "version": 1}],
    }
    uid = svc.register("user", user)["id"]
    assert uid != addr
    assert svc.referenced_by("addr", "1") == [uid]
    assert _code(svc.delete_version, "addr", "1") == 42206
    missing = {**user, "references": [{"name": "com.x.Address", "subject": "nope", "version": 1}]}
    assert _code(svc.register, "user2", missing) == 42201
    unresolved = {"schema": user["schema"]}  # the type is unknown without the reference
    assert _code(svc.register, "user3", unresolved) == 42201


def test_deletes_soft_then_permanent(svc: RegistryService) -> None:
    svc.register("s", _avro("R", ("x", "int")))
    svc.register("s", _avro("R", ("x", "int"), ("y", "int", 0)))
    assert _code(svc.delete_subject, "s", True) == 40405  # not soft-deleted first
    assert svc.delete_version("s", "1") == 1
    assert svc.versions("s") == [2] and svc.versions("s", deleted=True) == [1, 2]
    assert _code(svc.version, "s", "1") == 40402
    assert svc.version("s", "1", deleted=True).deleted
    assert svc.delete_subject("s") == [2]
    assert _code(svc.versions, "s") == 40401
    # a new registration after a soft delete continues the numbering
    assert svc.register("s", _avro("R", ("z", "long")))["id"] == 3
    assert svc.versions("s") == [3]
    svc.delete_subject("s")
    assert svc.delete_subject("s", permanent=True) == [1, 2, 3]
    assert svc.subjects(deleted=True) == []
    assert _code(svc.schema_by_id, 3) == 40403


def test_compatibility_levels_and_config(svc: RegistryService) -> None:
    svc.register("c", _avro("R", ("x", "int")))
    breaking = _avro("R", ("x", "string"))
    assert _code(svc.register, "c", breaking) == 409
    result = svc.check("c", "latest", breaking, verbose=True, normalize=False)
    assert result["is_compatible"] is False and result["messages"]
    assert svc.check("c", None, _avro("R", ("x", "long")), False, False) == {"is_compatible": True}
    assert _code(svc.get_config, "c") == 40408
    assert svc.get_config("c", default_to_global=True) == {"compatibilityLevel": "BACKWARD"}
    assert svc.set_config("c", {"compatibility": "none"}) == {"compatibility": "NONE"}
    assert svc.register("c", breaking)["id"] == 2
    assert svc.delete_config("c") == {"compatibilityLevel": "NONE"}
    assert _code(svc.set_config, None, {"compatibility": "SOMETIMES"}) == 42203
    svc.set_config(None, {"compatibility": "FULL_TRANSITIVE"})
    assert svc.get_config("c", default_to_global=True) == {"compatibilityLevel": "FULL_TRANSITIVE"}


def test_modes_readonly_and_import(svc: RegistryService) -> None:
    svc.register("m", _avro("R", ("x", "int")))
    assert _code(svc.set_mode, None, {"mode": "IMPORT"}) == 42205  # subjects exist
    svc.set_mode("m", {"mode": "READONLY"})
    assert _code(svc.register, "m", _avro("R", ("x", "int"), ("y", "int", 0))) == 42205
    assert _code(svc.delete_subject, "m") == 42205
    svc.delete_mode("m")
    assert _code(svc.register, "m", {**_avro("R", ("q", "int", 1)), "id": 50}) == 42205
    # IMPORT on a fresh subject: ids (and versions) as given, no compatibility check
    svc.set_mode("imp", {"mode": "IMPORT"})
    assert svc.register("imp", {**_avro("I", ("x", "int")), "id": 100, "version": 7}) == {"id": 100}
    assert svc.versions("imp") == [7]
    clash = {**_avro("Other", ("x", "int")), "id": 100}
    assert _code(svc.register, "imp", clash) == 42207
    svc.set_mode("imp", {"mode": "READWRITE"})
    # new ids continue above the imported ones
    assert svc.register("after", _avro("A", ("x", "int")))["id"] == 101


def test_normalize_finds_the_same_schema(svc: RegistryService) -> None:
    text = '{"type":"record","name":"N","namespace":"ns","fields":[{"name":"a","type":"int"}]}'
    same = '{"fields":[{"type":"int","name":"a"}],"name":"ns.N","type":"record"}'
    first = svc.register("n", {"schema": text}, normalize=True)["id"]
    assert svc.register("n", {"schema": same}, normalize=True)["id"] == first
    assert svc.versions("n") == [1]
    assert svc.lookup("n", {"schema": same}, normalize=True)["id"] == first


@pytest.mark.parametrize(
    "body",
    [None, [], {"schema": 5}, {"schema": '"int"', "schemaType": 3}, {"schema": '"int"', "id": "x"}],
)
def test_bad_bodies(svc: RegistryService, body: object) -> None:
    assert _code(svc.register, "b", body) == 422


# -- bad input found by fuzzing the served registry: Confluent's codes, never a 500 ----------


@pytest.mark.parametrize("refs", [5, True, "A", {"name": "A"}])
def test_references_not_a_list(svc: RegistryService, refs: object) -> None:
    assert _code(svc.register, "r", {"schema": '"int"', "references": refs}) == 422


def test_reference_version_out_of_int_range(svc: RegistryService) -> None:
    # json.loads reads 1e400 as inf, which int() refuses with OverflowError
    body = json.loads(
        '{"schema": "\\"int\\"", "references": [{"name": "A", "subject": "a", "version": 1e400}]}'
    )
    assert _code(svc.register, "r", body) == 422
    assert _code(svc.lookup, "r", body) == 422


@pytest.mark.parametrize(
    ("schema_type", "text"),
    [
        ("AVRO", '{"type":"record","name":"R","doc":"\\ud800","fields":[]}'),
        ("AVRO", '"\\udc00"'),
        ("JSON", '{"type":"object","properties":{"\\ud800":{}}}'),
        ("PROTOBUF", 'syntax = "proto3"; message M {} // \ud800'),
    ],
)
def test_lone_surrogate_in_schema(svc: RegistryService, schema_type: str, text: str) -> None:
    body = {"schemaType": schema_type, "schema": text}
    assert _code(svc.register, "u", body) == 42201
    assert _code(svc.check, "u", None, body, False, False) == 42201
    assert svc.subjects() == []
    # a surrogate pair is one character, and fine
    pair = {"schema": '{"type":"record","name":"R","doc":"\\ud83d\\ude00","fields":[]}'}
    assert svc.register("u", pair) == {"id": 1}


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"id": 2**31}, 422),
        ({"id": 0}, 422),
        ({"id": -5}, 422),
        ({"id": 9, "version": 0}, 42202),
        ({"id": 9, "version": -3}, 42202),
        ({"id": 9, "version": 2**40}, 42202),
    ],
)
def test_import_id_and_version_in_range(svc: RegistryService, extra: dict, code: int) -> None:
    svc.set_mode("imp", {"mode": "IMPORT"})
    assert _code(svc.register, "imp", {"schema": '"int"', **extra}) == code
    assert svc.register("imp", {"schema": '"int"', "id": 2**31 - 1, "version": 2**31 - 1}) == {
        "id": 2**31 - 1
    }


def _client(svc: RegistryService):  # noqa: ANN202
    from fastapi.testclient import TestClient

    from strom.registry.api import make_app

    return TestClient(make_app(svc), raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"[" * 100_000, 400, 400),  # json.loads: RecursionError
        (b'{"schema": "\\"\\ud800\\""}', 422, 422),  # a lone surrogate as a JSON escape
        (b'{"schema": "\xed\xa0\x80"}', 422, 422),  # and as bytes (json.loads lets it pass)
        (b'{"schema": "\\"int\\"", "references": 7}', 422, 422),
    ],
)
def test_api_bad_bodies(svc: RegistryService, raw: bytes, status: int, code: int) -> None:
    ct = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    with _client(svc) as client:
        for path in ("/subjects/s/versions", "/subjects/s", "/compatibility/subjects/s/versions"):
            answer = client.post(path, content=raw, headers=ct)
            assert (answer.status_code, answer.json()["error_code"]) == (status, code), path
        answer = client.put("/mode/s", content=raw.replace(b"schema", b"mode"), headers=ct)
        assert answer.status_code < 500


def test_api_error_with_a_lone_surrogate_is_answered(svc: RegistryService) -> None:
    """A message that echoes a lone surrogate is still answered (escaped), not a 500."""
    from strom.registry.api import RegistryResponse

    body = json.loads(RegistryResponse({"error_code": 42201, "message": "bad \ud800"}).body)
    assert body == {"error_code": 42201, "message": "bad \ud800"}
