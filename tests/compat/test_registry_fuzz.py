"""schemathesis against the registry `strom serve` runs, from the OpenAPI description it
serves: every operation, with generated paths, queries and bodies (valid and invalid), answers
no server error, and every error is Confluent's `{"error_code": int, "message": str}`.

The operations are listed at collection from the application's own description (it needs no
server), so each is a test of its own; the test then takes the operation from the description
the server serves. (schemathesis' `from_fixture` does not run under pytest 9.) Besides paths
generated at random, which mostly name nothing, some cases name subjects, versions and ids
that exist, so bodies reach the compatibility checks, lookups and deletes too."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from strom.registry.api import make_app
from tests.compat.test_registry import CT, wait_for_registry
from tests.conftest import StromProcess, free_port

pytestmark = pytest.mark.slow

EXAMPLES = 20  # generated cases per operation, per kind (positive, negative, existing paths)
OPERATIONS = [
    f"{method.upper()} {path}"
    for path, methods in make_app(None).openapi()["paths"].items()  # type: ignore[arg-type]
    for method in methods
]
SEEDS = {
    "fuzz-avro": {
        "schema": json.dumps(
            {"type": "record", "name": "F", "fields": [{"name": "a", "type": "int", "default": 0}]}
        )
    },
    "fuzz-json": {"schemaType": "JSON", "schema": '{"type":"object","properties":{}}'},
}


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = StromProcess(
        tmp_path_factory.mktemp("registry-fuzz") / "data", registry_listen=f"127.0.0.1:{port}"
    )
    try:
        proc.start()
        url = f"http://127.0.0.1:{port}"
        wait_for_registry(url)
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def api_schema(registry_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{registry_url}/openapi.json")


@pytest.fixture
def existing(registry_url: str) -> dict[str, list]:
    """Path parameters that name something: the seed subjects (registered again before each
    operation, in read-write mode, as an earlier operation may have deleted them), their
    versions and schema ids."""
    ids = []
    with httpx.Client(base_url=registry_url, headers={"Content-Type": CT}, timeout=30) as http:
        http.put("/mode", json={"mode": "READWRITE"})
        for subject, body in SEEDS.items():
            http.delete(f"/mode/{subject}")
            http.delete(f"/config/{subject}")
            answer = http.post(f"/subjects/{subject}/versions", json=body)
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["id"])
    return {"subject": list(SEEDS), "version": ["1", "latest"], "schema_id": ids}


def error_body(_ctx: object, response: schemathesis.Response, _case: object) -> None:
    """A 4xx or 5xx answer is Confluent's error object."""
    if response.status_code < 400:
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} with a body that is not JSON") from None
    assert isinstance(body, dict), f"{response.status_code}: the body is not an object: {body!r}"
    code = body.get("error_code")
    assert isinstance(code, int) and not isinstance(code, bool), f"error_code: {body!r}"
    assert isinstance(body.get("message"), str), f"message: {body!r}"


def test_operations_listed(api_schema: schemathesis.BaseSchema) -> None:
    served = {op.ok().label for op in api_schema.get_all_operations()}
    assert served == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_error(
    api_schema: schemathesis.BaseSchema, existing: dict[str, list], label: str
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served description"
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
    strategies += operation.get_strategies_from_examples()
    names = sorted({p.name for p in operation.path_parameters} & existing.keys())
    if names:
        fixed = [
            dict(zip(names, values)) for values in itertools.product(*(existing[n] for n in names))
        ]
        strategies.append(st.one_of([operation.as_strategy(path_parameters=p) for p in fixed]))
    kinds = len(GenerationMode) + bool(names)

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=EXAMPLES * kinds,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error, error_body], timeout=30)

    check()
