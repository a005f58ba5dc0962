"""Which platforms exist is a matter of composition: the cloud runtime serves the
deployed platforms only; the local bootstrap (`cosma`) adds the sandbox.

In the cloud, `sandbox` is refused exactly like a name nobody ever registered,
on every route that takes a platform, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from werkzeug.test import Client

from cosma import sandbox_platform
from cosma.server import PREFIXES, LocalServer, function_router
from shared.platform_names import CLOUD_PLATFORMS
from shared.runtime import Runtime
from shared.settings import Settings
from tests.support.identity import TokenIssuer
from tests.support.seed import Org, Seeder

# What a Cloud Function's environment holds, sandbox variables included: they
# are not read (only the deployed platforms' variables are).
CLOUD_ENV = {
    "COSMA_ENV": "prod",
    "GCP_PROJECT": "cosma-prod",
    "META_CLIENT_ID": "meta-app",
    "SANDBOX_CLIENT_ID": "cosma-local",
    "SANDBOX_BASE_URL": "http://127.0.0.1:9",
}


@pytest.fixture(scope="module")
def cloud(settings: Settings) -> Iterator[Client]:
    """Every function served with the cloud composition, on the test database."""
    runtime = Runtime(settings)
    yield Client(LocalServer(runtime))
    runtime.close()


def test_cloud_settings_build_a_registry_without_the_sandbox() -> None:
    settings = Settings.from_env(CLOUD_ENV)
    platforms = Runtime(settings).platforms
    assert platforms.names == CLOUD_PLATFORMS
    assert "sandbox" not in platforms
    assert "sandbox" not in settings.platform_client_ids
    assert "sandbox" not in settings.platform_base_urls
    assert platforms.client_id("meta") == "meta-app"


def test_no_function_routes_the_sandbox() -> None:
    paths = [route.pattern for name in PREFIXES for route in function_router(name).routes]
    assert paths and not [p for p in paths if "sandbox" in p]


def test_the_local_composition_adds_the_sandbox(settings: Settings) -> None:
    platforms = sandbox_platform.registry(settings)
    assert platforms.names == (*CLOUD_PLATFORMS, "sandbox")
    entry = platforms.platform("sandbox")
    assert entry.authorize_url == "http://127.0.0.1:8080/sandbox/oauth/authorize"
    assert platforms.client_id("sandbox") == sandbox_platform.CLIENT_ID
    assert platforms.connector("sandbox").platform == "sandbox"


def _problem(response: Any) -> tuple[int, str, list[Any]]:
    body = response.get_json()
    return response.status_code, body["type"], body.get("errors", [])


def _count(seeder: Seeder, sql: str, org: Org) -> int:
    with psycopg.connect(seeder.admin_url, autocommit=True) as conn:
        row = conn.execute(sql, (org.id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_cloud_refuses_the_sandbox_like_any_unknown_platform(
    cloud: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org = seeder.org()
    headers = tokens.header(org.principal(org.user("admin")))
    client_id = org.clients[0]

    def start(name: str) -> Any:
        body = {"client_id": client_id, "all_accounts": True}
        return cloud.post(f"/oauth/{name}/start", json=body, headers=headers)

    def provision(name: str) -> Any:
        body = {"client_id": client_id, "platform": name}
        return cloud.post("/datasets", json=body, headers=headers)

    def query(name: str) -> Any:
        body = {
            "client_id": client_id,
            "platforms": [name],
            "date_from": "2024-01-01",
            "date_to": "2024-01-31",
            "metrics": ["clicks"],
        }
        return cloud.post("/query", json=body, headers=headers)

    for call, status in ((start, 404), (provision, 422), (query, 422)):
        refused, unknown = call("sandbox"), call("myspace")
        assert refused.status_code == status, refused.get_data(as_text=True)
        assert _problem(refused) == _problem(unknown)
    assert _count(seeder, "select count(*) from oauth_states where org_id = %s", org) == 0
    assert _count(seeder, "select count(*) from datasets where org_id = %s", org) == 0


def test_the_local_server_serves_the_sandbox_only_where_it_is_registered(
    settings: Settings, client: Client
) -> None:
    assert client.get("/sandbox/api/accounts").status_code == 401  # served: asks for a token
    cloud = Runtime(settings)
    try:
        assert Client(LocalServer(cloud)).get("/sandbox/api/accounts").status_code == 404
    finally:
        cloud.close()


def test_the_local_document_lists_the_platforms_it_serves(client: Client) -> None:
    document = client.get("/openapi.json").get_json()
    schema = document["components"]["schemas"]["ProvisionRequest"]["properties"]["platform"]
    assert schema["enum"] == [*CLOUD_PLATFORMS, "sandbox"]
