"""The OpenAPI document, and fuzzing every operation from it.

The document is generated from the routes' declared models; schemathesis
reads it from the live local server and sends generated requests (valid and
invalid, a bounded number per operation) with a real bearer token, so they
reach the handlers. Every answer must be below 500, and every error must be
problem+json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from werkzeug.test import Client

from cosma.server import PREFIXES, LocalServer, function_router, with_platforms
from shared.http import openapi
from shared.platform_names import CLOUD_PLATFORMS
from shared.runtime import Runtime
from tests.support.identity import TokenIssuer
from tests.support.seed import Seeder
from tests.support.servers import serve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_OPERATION = 25
PROBLEM = "application/problem+json"


def all_routes() -> list[Any]:
    return [route for name in PREFIXES for route in function_router(name).routes]


def test_the_document_is_openapi_3_1_with_every_route(client: Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    doc = json.loads(response.get_data())
    assert doc["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(r.method, r.pattern) for r in all_routes()}
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_the_document_carries_the_declared_models(client: Client) -> None:
    doc = json.loads(client.get("/openapi.json").get_data())
    schemas = doc["components"]["schemas"]
    for route in all_routes():
        op = doc["paths"][route.pattern][route.method.lower()]
        for name in route.names:
            (param,) = [p for p in op["parameters"] if p["in"] == "path" and p["name"] == name]
            assert param["required"] is True
            assert param["schema"]["pattern"] == openapi.PATH_PARAMETER_PATTERN
        if route.body is not None:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            target = schemas[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
            assert set(target["properties"]) == set(route.body.model_fields)
            if route.body.model_config.get("extra") == "forbid":
                assert target["additionalProperties"] is False
        if route.query is not None:
            names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
            assert names == set(route.query.model_fields)
        problem = op["responses"]["422"]["content"]["application/problem+json"]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}
        assert "Retry-After" in op["responses"]["429"]["headers"]


def test_path_parameter_pattern_matches_the_router() -> None:
    from shared.http.routing import _PARAM_VALUE

    assert "^" + _PARAM_VALUE.strip("()") + "$" == openapi.PATH_PARAMETER_PATTERN
    assert re.fullmatch(openapi.PATH_PARAMETER_PATTERN[1:-1], "a" * 128)
    assert not re.fullmatch(openapi.PATH_PARAMETER_PATTERN[1:-1], "a" * 129)


# The document as a fresh interpreter serialises it: a set iterated into a list, or
# an id taken from `hash()` or a counter, would differ from one process to the next.
_DOCUMENT_PROGRAM = """
import json, sys
from cosma.server import PREFIXES, function_router
from shared.http import openapi
routers = [function_router(name) for name in PREFIXES]
sys.stdout.write(json.dumps(openapi.document(routers, server_url="http://127.0.0.1:8080")))
"""


def _document_bytes(hash_seed: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-c", _DOCUMENT_PROGRAM],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def test_the_document_is_deterministic() -> None:
    """Byte for byte the same from two processes with different hash seeds, and the
    same as this process serves (json.dumps keeps the document's own key order)."""
    first, second = _document_bytes("1"), _document_bytes("2")
    assert first == second
    here = openapi.document(
        [function_router(name) for name in PREFIXES], server_url="http://127.0.0.1:8080"
    )
    assert first == json.dumps(here).encode()


# ---------------------------------------------------------------- fuzzing


@pytest.fixture(scope="module")
def live(runtime: Runtime, webhook_secret: str) -> Iterator[str]:
    # Configured as deployed: the webhook's signing secret exists (without it the
    # webhook rightly answers 503, so that Svix retries).
    with serve(LocalServer(runtime)) as url:
        yield url


@pytest.fixture(scope="module")
def auth_header(seeder: Seeder, tokens: TokenIssuer) -> dict[str, str]:
    org = seeder.org()
    return tokens.header(org.principal(org.user("admin")))


def test_the_server_serves_the_generated_document(live: str) -> None:
    import requests

    served = requests.get(f"{live}/openapi.json", timeout=10).json()
    expected = openapi.document(
        [function_router(name) for name in PREFIXES], server_url="http://127.0.0.1:8080"
    )
    # The local server also serves the sandbox platform, and its document says so.
    assert served == with_platforms(expected, (*CLOUD_PLATFORMS, "sandbox"))


# Built at collection from the same generator the server uses (checked above),
# so every operation becomes its own test item.
schema = schemathesis.openapi.from_dict(
    openapi.document([function_router(name) for name in PREFIXES])
)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzed_requests_get_no_5xx_and_problem_json_errors(
    case: Any, live: str, auth_header: dict[str, str]
) -> None:
    response = case.call(base_url=live, headers=auth_header, timeout=30)
    detail = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, detail
    if response.status_code >= 400:
        # schemathesis gives headers as lower-case names with lists of values.
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith(PROBLEM), detail
        body = response.json()
        assert body["status"] == response.status_code, detail
