"""Cold start: no cloud SDK or warehouse engine loads before a request needs it.

Each function is loaded in a fresh interpreter the way Cloud Functions loads it
(functions-framework's `create_app(target, source)`), configured as in the cloud
(BigQuery warehouse, a GCP project, no Sentry DSN), and asked one authenticated
request on a route that uses none of them. After the import and after the
response, none of the heavy modules may be in `sys.modules`: each costs
hundreds of milliseconds of cold start (google.cloud.bigquery ~500 ms, duckdb
~180 ms here; `.venv/bin/python -m bench.profile_cold auth` measures every import
of one, see docs/performance.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cosma import localdb
from tests.support.google_certs import SCHEDULER_EMAIL, GoogleCerts
from tests.support.identity import TokenIssuer
from tests.support.seed import Seeder
from tests.support.servers import serve
from tests.support.sync_env import sync_database

ROOT = Path(__file__).resolve().parents[2]
# `requests` (~35 ms) loads only when a provider is called, never to authenticate.
HEAVY = (
    "google.cloud.bigquery",
    "google.cloud.secretmanager",
    "sentry_sdk",
    "duckdb",
    "pyarrow",
    "requests",
    # The scheduler's token is read from Google's JWK set: no certificate parsing
    # (~30 ms), and google-auth only with a cloud client that needs it.
    "cryptography.x509",
    "google.oauth2",
)
SYNC_AUDIENCE = "https://sync.cosma.test/sync"

PROGRAM = r"""
import json, os, sys
import functions_framework
heavy = json.loads(os.environ["HEAVY"])
spec = json.loads(os.environ["REQUEST"])
app = functions_framework.create_app(target=sys.argv[1], source=sys.argv[2])
after_import = [m for m in heavy if m in sys.modules]
response = app.test_client().open(
    spec["path"], method=spec["method"], headers=spec["headers"], data=spec.get("body")
)
after_request = [m for m in heavy if m in sys.modules]
print("@@" + json.dumps([after_import, response.status_code, after_request]))
"""


@pytest.fixture(scope="module")
def fresh(pg: localdb.LocalDatabase) -> localdb.LocalDatabase:
    """A database of this module's own: nothing is due, so `/sync` is an idle trigger
    (a due connection would rightly load `requests` to call its provider)."""
    return sync_database(pg)


@pytest.fixture(scope="module")
def certs_url() -> Iterator[tuple[GoogleCerts, str]]:
    certs = GoogleCerts()
    with serve(certs.app) as url:
        yield certs, url


def _env(
    pg: localdb.LocalDatabase, tokens: TokenIssuer, certs_url: str, tmp: Path
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COSMA_", "CLERK_", "SENTRY_", "GCP_", "BIGQUERY_", "SYNC_"))
    }
    env.update(
        {
            "COSMA_ENV": "test",
            "DATABASE_URL": pg.app_url,
            "WORKER_DATABASE_URL": pg.worker_url,
            "COSMA_ALLOWED_ORIGINS": tokens.azp,
            "CLERK_ISSUER": tokens.issuer,
            "CLERK_JWT_KEY": tokens.public_pem,
            # As in the cloud: BigQuery and Secret Manager configured, never reached.
            "GCP_PROJECT": "cosma-test",
            "COSMA_WAREHOUSE": "bigquery",
            "BIGQUERY_ENDPOINT": "http://127.0.0.1:9",
            "SECRET_MANAGER_ENDPOINT": "http://127.0.0.1:9",
            "COSMA_KEYRING_DIR": str(tmp / "keys"),
            "SYNC_AUDIENCE": SYNC_AUDIENCE,
            "SCHEDULER_SA_EMAIL": SCHEDULER_EMAIL,
            "GOOGLE_CERTS_URL": f"{certs_url}/oauth2/v3/certs",
            "HEAVY": json.dumps(HEAVY),
        }
    )
    return env


def _cold(
    env: dict[str, str], function: str, request: dict[str, Any]
) -> tuple[list[str], int, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, function, f"functions/{function}/main.py"],
        cwd=ROOT,
        env={**env, "REQUEST": json.dumps(request)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    marker = next(line for line in result.stdout.splitlines() if line.startswith("@@"))
    after_import, status, after_request = json.loads(marker[2:])
    return after_import, status, after_request


def _requests(seeder: Seeder, tokens: TokenIssuer, certs: GoogleCerts) -> dict[str, dict[str, Any]]:
    org = seeder.org()
    client = org.clients[0]
    user = tokens.header(org, org.user("editor"))
    # A client with no dataset: authorized and planned in Postgres, answered 404
    # before any warehouse call.
    spec = {
        "client_id": client,
        "platforms": ["meta"],
        "date_from": "2024-01-01",
        "date_to": "2024-01-31",
        "metrics": ["clicks"],
        "dimensions": ["date"],
    }

    def req(
        method: str, path: str, headers: dict[str, str], body: str | None = None
    ) -> dict[str, Any]:
        return {"method": method, "path": path, "headers": headers, "body": body}

    return {
        "auth": req("GET", "/auth/session", user),
        "oauth": req("GET", f"/connections?client_id={client}", user),
        "datasets": req("GET", f"/datasets?client_id={client}", user),
        "query": req(
            "POST",
            "/query",
            {**user, "Content-Type": "application/json"},
            json.dumps(spec),
        ),
        "sync": req("POST", "/sync", {"Authorization": f"Bearer {certs.token(SYNC_AUDIENCE)}"}),
    }


EXPECTED_STATUS = {"auth": 200, "oauth": 200, "datasets": 200, "query": 404, "sync": 200}


@pytest.mark.parametrize("function", list(EXPECTED_STATUS))
def test_no_heavy_module_before_a_request_needs_it(
    function: str,
    fresh: localdb.LocalDatabase,
    tokens: TokenIssuer,
    certs_url: tuple[GoogleCerts, str],
    tmp_path: Path,
) -> None:
    certs, url = certs_url
    request = _requests(Seeder(fresh.admin_url), tokens, certs)[function]
    env = _env(fresh, tokens, url, tmp_path)
    after_import, status, after_request = _cold(env, function, request)
    assert after_import == [], f"{function} imports {after_import} at import time"
    # The request really went through authentication and the database.
    assert status == EXPECTED_STATUS[function]
    assert after_request == [], f"{function} imports {after_request} on {request['path']}"


def test_the_check_sees_a_heavy_import(
    pg: localdb.LocalDatabase,
    tokens: TokenIssuer,
    certs_url: tuple[GoogleCerts, str],
    tmp_path: Path,
) -> None:
    """The probe is able to fail: a function that loads the SDK is caught."""
    source = tmp_path / "main.py"
    source.write_text(
        "import functions_framework\n"
        "import google.cloud.bigquery\n\n"
        "@functions_framework.http\n"
        "def heavy(request):\n"
        "    return 'ok'\n"
    )
    env = {**_env(pg, tokens, certs_url[1], tmp_path), "REQUEST": "{}"}
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, "heavy", str(source)],
        cwd=ROOT,
        env={**env, "REQUEST": json.dumps({"method": "GET", "path": "/", "headers": {}})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    marker = next(line for line in result.stdout.splitlines() if line.startswith("@@"))
    after_import, status, _ = json.loads(marker[2:])
    assert status == 200
    assert "google.cloud.bigquery" in after_import
