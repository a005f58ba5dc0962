"""The HTTP layer: problem+json, request ids, security headers, CORS, body limits.

A real router and runtime served through werkzeug's test client; the handlers
are test routes that raise what a real handler would.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from shared import errors
from shared.http import Context, Router, json_response
from shared.runtime import Runtime
from shared.settings import Settings

ORIGIN = "https://app.cosma.test"


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=10)
    count: int = Field(ge=0, le=5)


def build_router() -> Router:
    router = Router("test")

    @router.route("GET", "/ok")
    def ok(ctx: Context) -> Response:
        return json_response({"ok": True})

    @router.route("POST", "/items", body=Item)
    def create(ctx: Context) -> Response:
        item = ctx.body(Item)
        return json_response(item.model_dump(), status=201)

    @router.route("GET", "/items/{item_id}")
    def get(ctx: Context, item_id: str) -> Response:
        return json_response({"id": item_id})

    @router.route("GET", "/private")
    def private(ctx: Context) -> Response:
        ctx.principal()
        return json_response({})

    @router.route("GET", "/forbidden")
    def forbidden(ctx: Context) -> Response:
        raise errors.Forbidden("No organization in the session.")

    @router.route("GET", "/boom")
    def boom(ctx: Context) -> Response:
        secret = "refresh_token=1//abcdefSECRET"  # noqa: F841 - must not leak anywhere
        raise RuntimeError("database password is hunter2 at /srv/app.py line 3")

    @router.route("GET", "/limited")
    def limited(ctx: Context) -> Response:
        raise errors.TooManyRequests(retry_after=7, limit=10, remaining=0, window=60)

    return router


def _public_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def http(settings: Settings) -> Client:
    # The real database: the request hooks (rate limits) use it.
    runtime = Runtime(
        settings.with_changes(
            allowed_origins=(ORIGIN,),
            max_body_bytes=1024,
            clerk_issuer="https://clerk.cosma.test",
            clerk_jwt_key=_public_pem(),
        )
    )
    router = build_router()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        return router.handle(Request(environ), runtime)(environ, start_response)

    return Client(app)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    body = json.loads(response.data)
    assert body["status"] == status
    assert body["type"].startswith("urn:cosma:problem:")
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    text = response.data.decode()
    assert "Traceback" not in text and ".py" not in text
    return body


def test_400_malformed_json(http: Client) -> None:
    r = http.post("/items", data=b"{not json", content_type="application/json")
    assert_problem(r, 400)


def test_400_empty_body(http: Client) -> None:
    assert_problem(http.post("/items", data=b"", content_type="application/json"), 400)


def test_401_fixed_message(http: Client) -> None:
    body = assert_problem(http.get("/private", headers={"Authorization": "Bearer x.y.z"}), 401)
    assert body["detail"] == "The request could not be authenticated."


def test_403(http: Client) -> None:
    assert_problem(http.get("/forbidden"), 403)


def test_404_unknown_route(http: Client) -> None:
    assert_problem(http.get("/nope"), 404)


def test_404_path_param_outside_the_id_alphabet(http: Client) -> None:
    assert_problem(http.get("/items/..%2f..%2fetc"), 404)
    assert http.get("/items/abc_DEF-1").status_code == 200


def test_405_wrong_method(http: Client) -> None:
    assert_problem(http.delete("/ok"), 405)


def test_413_body_too_large(http: Client) -> None:
    r = http.post("/items", data=b"x" * 2048, content_type="application/json")
    assert_problem(r, 413)


def test_413_chunked_body_too_large(http: Client) -> None:
    # No Content-Length: servers mark such streams terminated (chunked encoding).
    r = http.post(
        "/items",
        input_stream=io.BytesIO(b"x" * 4096),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_problem(r, 413)


def test_422_validation_without_input_values(http: Client) -> None:
    r = http.post("/items", json={"name": "sk_live_SECRETVALUE", "count": 9, "extra": "x"})
    body = assert_problem(r, 422)
    locs = sorted(tuple(e["loc"]) for e in body["errors"])
    assert locs == [("count",), ("extra",), ("name",)]
    assert "sk_live_SECRETVALUE" not in r.data.decode()


def test_201_valid_body(http: Client) -> None:
    r = http.post("/items", json={"name": "a", "count": 1})
    assert r.status_code == 201 and r.json == {"name": "a", "count": 1}


def test_500_plain_without_trace(http: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="cosma.http"):
        r = http.get("/boom")
    body = assert_problem(r, 500)
    assert body["detail"] == "Internal error"
    assert "hunter2" not in r.data.decode()
    # The trace is logged for us, not shown to the caller.
    assert any(rec.exc_info for rec in caplog.records)


def test_429_headers(http: Client) -> None:
    r = http.get("/limited")
    assert_problem(r, 429)
    assert r.headers["Retry-After"] == "7"
    assert "RateLimit" in r.headers


@pytest.mark.parametrize("path", ["/ok", "/nope", "/boom", "/forbidden"])
def test_security_headers_on_every_response(http: Client, path: str) -> None:
    r = http.get(path)
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Request-Id"]


def test_request_id_echoed_when_well_formed(http: Client) -> None:
    assert http.get("/ok", headers={"X-Request-Id": "abc12345-req"}).headers["X-Request-Id"] == (
        "abc12345-req"
    )
    evil = http.get("/ok", headers={"X-Request-Id": "<script>alert(1)</script>"})
    assert evil.headers["X-Request-Id"] != "<script>alert(1)</script>"
    assert len(evil.headers["X-Request-Id"]) == 32


def test_cors_allowed_origin(http: Client) -> None:
    r = http.get("/ok", headers={"Origin": ORIGIN})
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in r.headers.get_all("Vary")
    assert r.headers.get("Access-Control-Allow-Credentials") is None


def test_cors_disallowed_origin_gets_no_cors_headers(http: Client) -> None:
    r = http.get("/ok", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert not any(name.startswith("Access-Control-") for name, _ in r.headers.items())


def test_cors_preflight_allowed(http: Client) -> None:
    r = http.options(
        "/items",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    assert r.headers["Access-Control-Allow-Origin"] != "*"


def test_cors_preflight_disallowed(http: Client) -> None:
    r = http.options(
        "/items",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 204
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Allow-Methods" not in r.headers


def test_never_wildcard_origin(settings: Settings) -> None:
    runtime = Runtime(settings.with_changes(allowed_origins=("*",)))
    router = build_router()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        return router.handle(Request(environ), runtime)(environ, start_response)

    r = Client(app).get("/ok", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
