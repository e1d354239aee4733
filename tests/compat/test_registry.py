"""The schema registry `strom serve` runs beside the broker, used through confluent-kafka's
SchemaRegistryClient, AvroSerializer/AvroDeserializer and JSONSerializer, and plain HTTP for
Confluent's error codes; schemas survive a restart (they live in the `_schemas` topic)."""

from __future__ import annotations

import functools
import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from strom import serde
from tests.conftest import STROM, StromProcess, free_port

CT = "application/vnd.schemaregistry.v1+json"

V1 = {
    "type": "record",
    "name": "User",
    "namespace": "com.example",
    "fields": [
        {"name": "id", "type": "int"},
        {"name": "name", "type": "string", "default": ""},
    ],
}
V2 = {**V1, "fields": [*V1["fields"], {"name": "email", "type": "string", "default": "-"}]}
V3 = {**V1, "fields": [V1["fields"][0], V2["fields"][2]]}  # name removed (it had a default)


def wait_for_registry(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/subjects", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no registry at {url}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[StromProcess, str]]:  # noqa: ANN001
    port = free_port()
    proc = StromProcess(
        tmp_path_factory.mktemp("registry") / "data", registry_listen=f"127.0.0.1:{port}"
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_registry(url)
        yield proc, url
    finally:
        proc.stop()


def _subject() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


def test_avro_evolution_backward_and_forward(served) -> None:  # noqa: ANN001
    """v2 adds a field with a default, v3 removes one that had a default: a v1 consumer reads
    v3 data and a v3 consumer reads v1 data; a v4 that breaks BACKWARD is refused."""
    proc, url = served
    client = SchemaRegistryClient({"url": url})
    topic = f"users-{uuid.uuid4().hex[:6]}"
    producer = Producer({"bootstrap.servers": proc.bootstrap})
    ids = []
    for version, (schema, record) in enumerate(
        [
            (V1, {"id": 1, "name": "ann"}),
            (V2, {"id": 2, "name": "bob", "email": "bob@x"}),
            (V3, {"id": 3, "email": "cy@x"}),
        ],
        start=1,
    ):
        ser = AvroSerializer(client, json.dumps(schema))
        value = ser(record, SerializationContext(topic, MessageField.VALUE))
        ids.append(int.from_bytes(value[1:5], "big"))
        producer.produce(topic, value=value)
        versions = _call("GET", f"{url}/subjects/{topic}-value/versions").json()
        assert versions == list(range(1, version + 1))
    producer.flush(10)
    assert ids == sorted(set(ids)) and len(ids) == 3

    consumer = Consumer({"bootstrap.servers": proc.bootstrap, "group.id": "g-" + topic})
    consumer.assign([TopicPartition(topic, 0, 0)])
    raw = []
    while len(raw) < 3:
        raw += [m.value() for m in consumer.consume(10, 1) if m.error() is None]
    consumer.close()

    ctx = SerializationContext(topic, MessageField.VALUE)
    old = AvroDeserializer(client, json.dumps(V1))
    assert [old(v, ctx) for v in raw] == [
        {"id": 1, "name": "ann"},
        {"id": 2, "name": "bob"},
        {"id": 3, "name": ""},  # v3 has no name: the v1 reader's default
    ]
    new = AvroDeserializer(client, json.dumps(V3))
    assert [new(v, ctx) for v in raw] == [
        {"id": 1, "email": "-"},  # v1 has no email: the v3 reader's default
        {"id": 2, "email": "bob@x"},
        {"id": 3, "email": "cy@x"},
    ]

    # the same through strom.serde
    with serde.RegistryClient(url) as ours:
        old_ours = serde.AvroDeserializer(ours, json.dumps(V1))
        new_ours = serde.AvroDeserializer(ours, json.dumps(V3))
        assert [old_ours(v, topic) for v in raw] == [old(v, ctx) for v in raw]
        assert [new_ours(v, topic) for v in raw] == [new(v, ctx) for v in raw]
        # and strom.serde's serializer writes what confluent-kafka's deserializer reads
        written = serde.AvroSerializer(ours, json.dumps(V3))({"id": 4, "email": "d@x"}, topic)
        assert int.from_bytes(written[1:5], "big") == ids[2]  # v3's id, looked up
        assert old(written, ctx) == {"id": 4, "name": ""}

    v4 = {**V1, "fields": [*V3["fields"], {"name": "age", "type": "int"}]}  # no default
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(f"{topic}-value", Schema(json.dumps(v4), "AVRO"))
    assert refused.value.http_status_code == 409
    assert _call("GET", f"{url}/subjects/{topic}-value/versions").json() == [1, 2, 3]


def test_identical_schema_keeps_its_id_across_subjects(served) -> None:  # noqa: ANN001
    _, url = served
    client = SchemaRegistryClient({"url": url})
    a, b = _subject(), _subject()
    text = json.dumps(V1)
    first = client.register_schema(a, Schema(text, "AVRO"))
    again = client.register_schema(a, Schema(json.dumps(V1, indent=2), "AVRO"))
    other = client.register_schema(b, Schema(text, "AVRO"))
    assert first == again == other
    assert {a, b} <= set(client.get_subjects_by_schema_id(first))  # V1 is used elsewhere too
    assert [v.version for v in [client.get_latest_version(a), client.get_latest_version(b)]] == [
        1,
        1,
    ]


# A partially open content model (extra properties must be strings): adding or removing a
# string property is then compatible both ways, by Confluent's JSON Schema rules.
JSON_V1 = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Order",
    "type": "object",
    "properties": {"id": {"type": "integer"}, "note": {"type": "string"}},
    "required": ["id"],
    "additionalProperties": {"type": "string"},
}
JSON_V2 = {**JSON_V1, "properties": {**JSON_V1["properties"], "label": {"type": "string"}}}
JSON_V3 = {**JSON_V1, "properties": {"id": {"type": "integer"}, "label": {"type": "string"}}}


def test_json_schema_evolution(served) -> None:  # noqa: ANN001
    """v2 adds a property, v3 removes one (BACKWARD, the default, checks each); v1 and v3
    readers both read every version's data; a v4 that changes a property's type is refused
    (409) with nothing registered."""
    _, url = served
    client = SchemaRegistryClient({"url": url})
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    ctx = SerializationContext(topic, MessageField.VALUE)
    records = [
        {"id": 1, "note": "a"},
        {"id": 2, "note": "b", "label": "x"},
        {"id": 3, "label": "y"},
    ]
    data = [
        JSONSerializer(json.dumps(schema), client)(record, ctx)
        for schema, record in zip((JSON_V1, JSON_V2, JSON_V3), records, strict=True)
    ]
    assert _call("GET", f"{url}/subjects/{topic}-value/versions").json() == [1, 2, 3]
    for reader in (JSON_V1, JSON_V3):
        confluent = JSONDeserializer(json.dumps(reader), schema_registry_client=client)
        assert [confluent(d, ctx) for d in data] == records
    with serde.RegistryClient(url) as ours:
        for reader in (JSON_V1, JSON_V3):
            ours_reader = serde.JSONDeserializer(ours, json.dumps(reader))
            assert [ours_reader(d, topic) for d in data] == records
    v4 = {**JSON_V3, "properties": {"id": {"type": "string"}, "label": {"type": "string"}}}
    r = _call(
        "POST",
        f"{url}/subjects/{topic}-value/versions?verbose=true",
        {"schema": json.dumps(v4), "schemaType": "JSON"},
    )
    assert (r.status_code, r.json()["error_code"]) == (409, 409), r.text
    assert "#/properties/id" in r.json()["message"]
    assert _call("GET", f"{url}/subjects/{topic}-value/versions").json() == [1, 2, 3]


def test_json_schema_serializer_round_trip(served) -> None:  # noqa: ANN001
    proc, url = served
    client = SchemaRegistryClient({"url": url})
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Order",
        "type": "object",
        "properties": {"id": {"type": "integer"}, "total": {"type": "number"}},
        "required": ["id"],
    }
    ser = JSONSerializer(json.dumps(schema), client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    data = ser({"id": 7, "total": 9.5}, ctx)
    assert client.get_latest_version(f"{topic}-value").schema.schema_type == "JSON"
    assert JSONDeserializer(json.dumps(schema), schema_registry_client=client)(data, ctx) == {
        "id": 7,
        "total": 9.5,
    }


@functools.cache
def _http() -> httpx.Client:
    return httpx.Client(timeout=10)  # one for the module: a new client costs ~25 ms


def _call(method: str, url: str, body: object = None, ctype: str = CT) -> httpx.Response:
    content = body if body is None or isinstance(body, bytes) else json.dumps(body)
    return _http().request(method, url, content=content, headers={"Content-Type": ctype})


def test_confluent_error_codes(served) -> None:  # noqa: ANN001
    _, url = served
    s = _subject()
    cases = [
        ("GET", f"/subjects/{s}/versions", None, 404, 40401),
        ("GET", f"/subjects/{s}/versions/1", None, 404, 40401),
        ("GET", "/schemas/ids/987654", None, 404, 40403),
        ("POST", f"/subjects/{s}/versions", {"schema": "{not json"}, 422, 42201),
        ("POST", f"/subjects/{s}/versions", {"schema": '{"type":"nope"}'}, 422, 42201),
        (
            "POST",
            f"/subjects/{s}/versions",
            {
                "schema": '{"type":"record","name":"R","fields":[{"name":"a","type":"int",'
                '"default":"x"}]}'
            },
            422,
            42201,
        ),
        ("PUT", "/config/" + s, {"compatibility": "SIDEWAYS"}, 422, 42203),
        ("PUT", "/mode/" + s, {"mode": "WRITEONLY"}, 422, 42204),
        ("GET", "/config/" + s, None, 404, 40408),
        ("POST", f"/subjects/{s}/versions", None, 422, 422),
        ("GET", "/no/such/route", None, 404, 404),
        ("POST", f"/subjects/{s}/versions", b"{not json", 400, 400),
        ("POST", f"/subjects/{s}/versions", {"schema": "x" * (9 << 20)}, 413, 413),
    ]
    for method, path, body, status, code in cases:
        r = _call(method, url + path, body)
        assert (r.status_code, r.json()["error_code"]) == (status, code), (path, r.text)
        assert r.headers["content-type"].startswith(CT)
    r = _call("POST", f"{url}/subjects/{s}/versions", {"schema": '"int"'}, ctype="text/plain")
    assert (r.status_code, r.json()["error_code"]) == (415, 415)
    for ctype in ("application/json", "application/vnd.schemaregistry+json"):
        assert (
            _call("POST", f"{url}/subjects/{s}", {"schema": '"int"'}, ctype=ctype).status_code
            == 404
        )
    # a subject with a version: bad version ids and missing versions
    assert _call("POST", f"{url}/subjects/{s}/versions", {"schema": '"string"'}).json() == {
        "id": _call("POST", f"{url}/subjects/{s}/versions", {"schema": '"string"'}).json()["id"]
    }
    for version, status, code in (("0", 422, 42202), ("abc", 422, 42202), ("9", 404, 40402)):
        r = _call("GET", f"{url}/subjects/{s}/versions/{version}")
        assert (r.status_code, r.json()["error_code"]) == (status, code), r.text
    r = _call("POST", f"{url}/subjects/{s}", {"schema": '"int"'})
    assert (r.status_code, r.json()["error_code"]) == (404, 40403)
    r = _call("DELETE", f"{url}/subjects/{s}/versions/1?permanent=true")
    assert (r.status_code, r.json()["error_code"]) == (404, 40407)
    r = _call("DELETE", f"{url}/subjects/{s}?permanent=true")
    assert (r.status_code, r.json()["error_code"]) == (404, 40405)


def test_delete_config_mode_and_compatibility_checks(served) -> None:  # noqa: ANN001
    _, url = served
    s = _subject()
    v1 = json.dumps(V1)
    first = _call("POST", f"{url}/subjects/{s}/versions", {"schema": v1}).json()["id"]
    breaking = json.dumps({**V1, "fields": [{"name": "id", "type": "string"}]})
    r = _call(
        "POST",
        f"{url}/compatibility/subjects/{s}/versions/latest?verbose=true",
        {"schema": breaking},
    )
    assert r.json()["is_compatible"] is False and r.json()["messages"]
    assert _call("PUT", f"{url}/config/{s}", {"compatibility": "NONE"}).json() == {
        "compatibility": "NONE"
    }
    assert _call("GET", f"{url}/config/{s}").json() == {"compatibilityLevel": "NONE"}
    second = _call("POST", f"{url}/subjects/{s}/versions", {"schema": breaking}).json()["id"]
    assert second != first
    assert _call("GET", f"{url}/subjects/{s}/versions").json() == [1, 2]
    # READONLY refuses writes
    assert _call("PUT", f"{url}/mode/{s}", {"mode": "READONLY"}).json() == {"mode": "READONLY"}
    r = _call("POST", f"{url}/subjects/{s}/versions", {"schema": '"long"'})
    assert (r.status_code, r.json()["error_code"]) == (422, 42205)
    assert _call("DELETE", f"{url}/mode/{s}").json() == {"mode": "READONLY"}
    # soft delete of one version, then the subject; permanent after soft
    assert _call("DELETE", f"{url}/subjects/{s}/versions/1").json() == 1
    assert _call("GET", f"{url}/subjects/{s}/versions").json() == [2]
    assert _call("GET", f"{url}/subjects/{s}/versions?deleted=true").json() == [1, 2]
    assert _call("DELETE", f"{url}/subjects/{s}").json() == [2]
    assert s not in _call("GET", f"{url}/subjects").json()
    assert s in _call("GET", f"{url}/subjects?deleted=true").json()
    assert _call("GET", f"{url}/schemas/ids/{first}").status_code == 200  # soft: still served
    assert _call("DELETE", f"{url}/subjects/{s}?permanent=true").json() == [1, 2]
    assert s not in _call("GET", f"{url}/subjects?deleted=true").json()


def test_schemas_survive_a_restart(tmp_path) -> None:  # noqa: ANN001
    """Everything the registry served before a restart of `strom serve` it serves after:
    ids, versions, soft and hard deletions, configs and modes, rebuilt from `_schemas`."""
    port = free_port()
    proc = StromProcess(tmp_path / "data", registry_listen=f"127.0.0.1:{port}").start()
    url = f"http://127.0.0.1:{port}"

    def snapshot() -> dict:
        paths = [
            "/subjects",
            "/subjects?deleted=true",
            "/subjects/r-1/versions",
            "/subjects/r-1/versions?deleted=true",
            "/subjects/r-1/versions/2",
            "/subjects/r-1/versions/1?deleted=true",
            "/subjects/r-3/versions",
            "/config",
            "/config/r-2",
            "/mode/r-2",
            *(f"/schemas/ids/{i}" for i in range(1, 6)),
        ]
        out = {}
        for path in paths:
            r = _call("GET", url + path)
            out[path] = (r.status_code, r.json())
        return out

    try:
        wait_for_registry(url)
        client = SchemaRegistryClient({"url": url})
        ids = [client.register_schema(f"r-{i}", Schema(json.dumps(V1), "AVRO")) for i in (1, 2)]
        v2 = client.register_schema("r-1", Schema(json.dumps(V2), "AVRO"))
        assert _call("DELETE", f"{url}/subjects/r-1/versions/1").json() == 1  # soft
        client.register_schema("r-3", Schema('"string"', "AVRO"))
        _call("DELETE", f"{url}/subjects/r-3")
        assert _call("DELETE", f"{url}/subjects/r-3?permanent=true").json() == [1]  # hard
        _call("PUT", f"{url}/config/r-2", {"compatibility": "FULL"})
        _call("PUT", f"{url}/config", {"compatibility": "FORWARD"})
        _call("PUT", f"{url}/mode/r-2", {"mode": "READONLY"})
        before = snapshot()
        assert before["/subjects/r-1/versions"] == (200, [2])
        assert before["/subjects/r-3/versions"][0] == 404
        proc.stop()
        proc.start()
        wait_for_registry(url)
        assert snapshot() == before
        fresh = SchemaRegistryClient({"url": url})
        assert fresh.get_schema(v2).schema_str == json.dumps(V2, separators=(",", ":"))
        # a new schema gets the next id, never one in use or used before
        v3 = fresh.register_schema("r-1", Schema(json.dumps(V3), "AVRO"))
        assert v3 > max(*ids, v2, 3)
    finally:
        proc.stop()


def _registry_process(bootstrap: str, port: int, log_path) -> subprocess.Popen:  # noqa: ANN001
    args = [*STROM, "registry", "--bootstrap", bootstrap, "--listen", f"127.0.0.1:{port}"]
    with open(log_path, "ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)


def test_two_registry_processes_agree(strom, tmp_path) -> None:  # noqa: ANN001
    """Two `strom registry` processes on one cluster: one is primary, the other forwards its
    writes there; both serve the same ids; when the primary stops, the other takes over and
    ids keep increasing."""
    ports = [free_port(), free_port()]
    procs = [_registry_process(strom.bootstrap, p, tmp_path / f"r{p}.log") for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url in urls:
            wait_for_registry(url, 60)
        ids = {}
        for i in range(6):  # alternate between the two processes
            url = urls[i % 2]
            schema = {"type": "record", "name": f"R{i}", "fields": [{"name": "a", "type": "int"}]}
            r = _call("POST", f"{url}/subjects/two-{i}/versions", {"schema": json.dumps(schema)})
            assert r.status_code == 200, r.text
            ids[f"two-{i}"] = r.json()["id"]
            # read-your-write on the process that took it, forwarded or not
            assert (
                _call("GET", f"{url}/subjects/two-{i}/versions/1").json()["id"] == ids[f"two-{i}"]
            )
        assert sorted(ids.values()) == list(range(1, 7))
        for url in urls:
            deadline = time.monotonic() + 10
            while _call("GET", f"{url}/subjects").json() != sorted(ids):
                assert time.monotonic() < deadline, url
                time.sleep(0.1)
            for subject, sid in ids.items():
                assert _call("GET", f"{url}/subjects/{subject}/versions/latest").json()["id"] == sid
        # stop whichever is primary: the other takes over writing
        logs = [(tmp_path / f"r{p}.log").read_text() for p in ports]
        primary = next(i for i, text in enumerate(logs) if "is now the primary" in text)
        procs[primary].terminate()
        procs[primary].wait(20)
        survivor = urls[1 - primary]
        deadline = time.monotonic() + 60
        while True:
            schema = {"type": "record", "name": "After", "fields": [{"name": "b", "type": "int"}]}
            r = _call("POST", f"{survivor}/subjects/after/versions", {"schema": json.dumps(schema)})
            if r.status_code == 200:
                break
            assert r.json()["error_code"] == 50003, r.text  # no primary yet: said so
            assert time.monotonic() < deadline, "the survivor never became the primary"
            time.sleep(0.5)
        assert r.json()["id"] == 7
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(20)


def _cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*STROM, "schemas", *args, "--registry", url],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_schemas_cli(served, tmp_path) -> None:  # noqa: ANN001
    _, url = served
    s = _subject()
    v1 = tmp_path / "v1.avsc"
    v1.write_text(json.dumps(V1))
    bad = tmp_path / "bad.avsc"
    bad.write_text(json.dumps({**V1, "fields": [{"name": "id", "type": "string"}]}))
    first = _cli(url, "register", s, str(v1))
    assert first.returncode == 0, first.stderr
    sid = int(first.stdout)
    assert _cli(url, "register", s, "-", stdin=json.dumps(V2)).returncode == 0
    assert s in _cli(url, "list").stdout.split()
    listing = _cli(url, "versions", s)
    assert listing.returncode == 0 and str(sid) in listing.stdout
    got = _cli(url, "get", s, "1", "--raw")
    assert json.loads(got.stdout) == V1
    assert json.loads(_cli(url, "get", "--id", str(sid), "--raw").stdout) == V1
    verdict = _cli(url, "check", s, str(bad))
    assert verdict.returncode == 1 and verdict.stdout.startswith("incompatible")
    assert _cli(url, "check", s, str(v1)).stdout.strip() == "compatible"
    assert _cli(url, "config", s).stdout.strip() == "BACKWARD"
    assert _cli(url, "config", s, "--set", "full").stdout.strip() == "FULL"
    assert _cli(url, "config", s).stdout.strip() == "FULL"
    missing = _cli(url, "get", s + "-nope")
    assert missing.returncode == 1 and "40401" in missing.stderr
    assert _cli(url, "delete", s, "1").returncode == 0
    assert _cli(url, "versions", s).stdout.count("\n") > 0
    assert _call("GET", f"{url}/subjects/{s}/versions").json() == [2]


def _record(*fields: tuple) -> str:
    out = []
    for name, ftype, *default in fields:
        field = {"name": name, "type": ftype}
        if default:
            field["default"] = default[0]
        out.append(field)
    return json.dumps({"type": "record", "name": "R", "fields": out})


LEVELS = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)
# A chain v1 -> v2 (v2 adds b with a default and gives d a default), then candidates with
# the verdict for each level (order of LEVELS) worked out by Avro's resolution rules, and the
# error type the verbose messages must name when one fails.
CHAIN = [
    _record(("a", "int"), ("d", "int")),
    _record(("a", "int"), ("d", "int", 0), ("b", "string", "")),
]
CANDIDATES = [
    # adds c with a default: readable both ways against both versions
    (_record(("a", "int"), ("d", "int", 0), ("b", "string", ""), ("c", "int", 0)), "TTTTTTT", None),
    # b loses its default: v1 data has no b
    (
        _record(("a", "int"), ("d", "int", 0), ("b", "string")),
        "TFTTTFT",
        "READER_FIELD_MISSING_DEFAULT_VALUE",
    ),
    # b dropped, c added without a default: v2 data has no c
    (
        _record(("a", "int"), ("d", "int", 0), ("c", "int")),
        "FFTTFFT",
        "READER_FIELD_MISSING_DEFAULT_VALUE",
    ),
    # d dropped: v1 (d without default) cannot read the new data
    (_record(("a", "int"), ("b", "string", "")), "TTTFTFT", "READER_FIELD_MISSING_DEFAULT_VALUE"),
    # a dropped: neither old version can read the new data
    (
        _record(("d", "int", 0), ("b", "string", "")),
        "TTFFFFT",
        "READER_FIELD_MISSING_DEFAULT_VALUE",
    ),
    # a becomes a string: nothing reads anything
    (_record(("a", "string"), ("d", "int", 0), ("b", "string", "")), "FFFFFFT", "TYPE_MISMATCH"),
]


def test_compatibility_matrix(served) -> None:  # noqa: ANN001
    """For every level and candidate: the compatibility check's verdict and verbose messages,
    and registration (200 or 409, the subject unchanged when refused), against a chain."""
    _, url = served
    for schema, verdicts, error_type in CANDIDATES:
        for level, verdict in zip(LEVELS, verdicts, strict=True):
            s = _subject()
            for version in CHAIN:
                assert (
                    _call("POST", f"{url}/subjects/{s}/versions", {"schema": version}).status_code
                    == 200
                )
            _call("PUT", f"{url}/config/{s}", {"compatibility": level})
            check = _call(
                "POST",
                f"{url}/compatibility/subjects/{s}/versions?verbose=true",
                {"schema": schema},
            ).json()
            expected = verdict == "T"
            assert check["is_compatible"] is expected, (level, schema, check)
            if expected:
                assert check["messages"] == []
            else:
                assert check["messages"] and any(error_type in m for m in check["messages"]), check
            r = _call("POST", f"{url}/subjects/{s}/versions", {"schema": schema})
            assert r.status_code == (200 if expected else 409), (level, schema, r.text)
            assert _call("GET", f"{url}/subjects/{s}/versions").json() == (
                [1, 2, 3] if expected else [1, 2]
            )


def test_protobuf_subject_evolves_under_backward(served) -> None:  # noqa: ANN001
    _, url = served
    s = _subject()
    v1 = 'syntax = "proto3";\npackage shop;\nmessage Order { int64 id = 1; string note = 2; }\n'
    v2 = v1.replace("string note = 2; }", "string note = 2; repeated string tags = 3; }")
    v3 = v2.replace("int64 id = 1;", "double id = 1;")  # not wire-compatible with int64
    for body, status in ((v1, 200), (v2, 200), (v3, 409)):
        r = _call(
            "POST", f"{url}/subjects/{s}/versions", {"schema": body, "schemaType": "PROTOBUF"}
        )
        assert r.status_code == status, r.text
    assert "FIELD_SCALAR_KIND_CHANGED" in r.json()["message"]
    got = _call("GET", f"{url}/subjects/{s}/versions/latest").json()
    assert (got["version"], got["schemaType"], got["schema"]) == (2, "PROTOBUF", v2)
    bad = _call(
        "POST", f"{url}/subjects/{s}/versions", {"schema": "message {", "schemaType": "PROTOBUF"}
    )
    assert (bad.status_code, bad.json()["error_code"]) == (422, 42201)
