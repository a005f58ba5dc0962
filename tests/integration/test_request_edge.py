"""The request edge against a hostile client: nesting, content types, the
`Server` header, and the local peers that must not share the API's limits.

Served through the whole local server (every function's routes), so each case
is what a client of `make run` or of the deployed functions meets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from werkzeug.test import Client

from cosma import localdb, sandbox_oauth, sandbox_platform
from cosma.issuer import LocalIssuer
from cosma.server import LocalServer
from shared.http import edge
from shared.runtime import Runtime
from shared.settings import Settings
from tests.support.identity import TokenIssuer
from tests.support.seed import Seeder
from tests.support.servers import serve

JSON_ROUTES = ("/query", "/datasets", "/oauth/google_ads/start")


def deep(kind: str, depth: int) -> bytes:
    opening, closing = ("[", "]") if kind == "arrays" else ('{"a":', "}")
    return (opening * depth + "1" + closing * depth).encode()


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize(("kind", "depth"), [("arrays", 30_000), ("objects", 10_000)])
def test_deeply_nested_bodies_are_400_not_500(
    client: Client, seeder: Seeder, tokens: TokenIssuer, path: str, kind: str, depth: int
) -> None:
    org = seeder.org()
    response = client.post(
        path,
        data=deep(kind, depth),
        content_type="application/json",
        headers=tokens.header(org.principal(org.user("admin"))),
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert response.content_type == "application/problem+json"
    assert "32 levels" in response.get_json()["detail"]


def test_the_depth_check_counts_only_structure() -> None:
    # Brackets inside strings (escaped quotes included) are text, not nesting.
    text = json.dumps({"name": '["[' * 50 + '\\"{{{'}).encode()
    edge.check_json_depth(text)
    edge.check_json_depth(deep("arrays", edge.MAX_JSON_DEPTH))
    with pytest.raises(Exception, match="32 levels"):
        edge.check_json_depth(deep("objects", edge.MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
    ],
)
def test_json_routes_refuse_other_content_types_with_415(
    client: Client,
    seeder: Seeder,
    tokens: TokenIssuer,
    pg: localdb.LocalDatabase,
    path: str,
    content_type: str | None,
) -> None:
    org = seeder.org()
    body = json.dumps({"client_id": org.clients[0], "platform": "meta"}).encode()
    headers: dict[str, Any] = tokens.header(org.principal(org.user("admin")))
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post(path, data=body, headers=headers)
    assert response.status_code == 415, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    # Refused before the handler: nothing was provisioned.
    with psycopg.connect(pg.admin_url) as conn:
        found = conn.execute(
            "select 1 from datasets where client_id = %s", (org.clients[0],)
        ).fetchall()
    assert found == []


def test_json_with_a_charset_or_a_json_suffix_is_accepted(
    client: Client, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    headers = tokens.header(org.principal(org.user("admin")))
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.post(
            "/datasets",
            data=json.dumps({"client_id": org.clients[0], "platform": "meta"}),
            headers={**headers, "Content-Type": content_type},
        )
        assert response.status_code == 200, (content_type, response.get_data(as_text=True))


@pytest.fixture
def limited_server(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Runtime]]:
    holder: dict[str, Any] = {}
    with serve(lambda environ, start: holder["app"](environ, start)) as base:
        runtime = sandbox_platform.local_runtime(
            settings.with_changes(
                public_url=base, rate_limit_ip="2/3600s", secrets_dir=tmp_path / "secrets"
            )
        )
        sandbox_oauth.ensure_client_secret(runtime.settings)
        issuer = LocalIssuer.load_or_create(tmp_path)
        holder["app"] = LocalServer(runtime, extra=[issuer.router()])
        yield base, runtime
        runtime.close()


def test_local_peers_are_not_limited_as_api_clients(
    limited_server: tuple[str, Runtime],
) -> None:
    base, _ = limited_server
    forged = {"Authorization": "Bearer not-a-token"}
    statuses = [
        requests.get(f"{base}/auth/session", headers=forged, timeout=5).status_code
        for _ in range(4)
    ]
    assert statuses[-1] == 429  # 127.0.0.1 is limited as an API client now...
    # ...while the peers it also hosts keep answering our own adapters.
    jwks = requests.get(f"{base}/.well-known/jwks.json", timeout=5)
    assert jwks.status_code == 200 and jwks.json()["keys"]
    token = requests.post(
        f"{base}/sandbox/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "unknown", "client_id": "x"},
        timeout=5,
    )
    assert token.status_code in (400, 401) and "error" in token.json()


def test_the_server_header_names_no_framework_or_version(
    limited_server: tuple[str, Runtime],
) -> None:
    base, _ = limited_server
    response = requests.get(f"{base}/healthz", timeout=5)
    server = response.headers.get("Server", "")
    assert "werkzeug" not in server.lower() and "python" not in server.lower(), server
    assert not any(ch.isdigit() for ch in server), server
