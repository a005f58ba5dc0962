"""The local issuer: key on disk, JWKS served by the local server, `cosma dev-token`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from werkzeug.test import Client

from cosma import localdb
from cosma.issuer import JWKS_PATH, LocalIssuer
from cosma.server import LocalServer
from shared.runtime import Runtime
from shared.settings import Settings
from tests.support.seed import Seeder
from tests.support.servers import serve

ROOT = Path(__file__).resolve().parents[2]


def test_key_created_private_and_reused(tmp_path: Path) -> None:
    first = LocalIssuer.load_or_create(tmp_path)
    key_file = tmp_path / "issuer" / "key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    again = LocalIssuer.load_or_create(tmp_path)
    assert again.kid == first.kid
    assert again.jwks() == first.jwks()
    assert "d" not in first.jwks()["keys"][0]  # the public half only


def test_local_server_verifies_dev_tokens_through_its_own_jwks(
    settings: Settings, seeder: Seeder, tmp_path: Path
) -> None:
    org = seeder.org()
    issuer = LocalIssuer.load_or_create(tmp_path)
    holder: dict[str, LocalServer] = {}

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        return holder["server"](environ, start_response)

    with serve(app) as base:
        local = settings.with_changes(
            public_url=base, clerk_issuer=base, clerk_jwt_key="", clerk_jwks_url=base + JWKS_PATH
        )
        runtime = Runtime(local)
        holder["server"] = LocalServer(runtime, extra=[issuer.router()])
        try:
            client = Client(holder["server"])
            assert client.get(JWKS_PATH).get_json() == issuer.jwks()
            token = issuer.mint(
                user_id=org.user("viewer"),
                org_id=org.id,
                role="viewer",
                issuer=base,
                azp=local.allowed_origins[0],
            )
            response = client.get("/auth/session", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.get_data(as_text=True)
            assert response.get_json()["role"] == "viewer"
        finally:
            runtime.close()


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="writes a cosma database")
def test_dev_token_command_upserts_and_prints_a_token(
    pg: localdb.LocalDatabase, settings: Settings, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "COSMA_HOME": str(tmp_path),
        "DATABASE_URL": pg.admin_url,
        "COSMA_ALLOWED_ORIGINS": "http://localhost:3000",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cosma.cli",
            "dev-token",
            "--user",
            "u1",
            "--org",
            "o1",
            "--role",
            "editor",
            "--create-client",
            "Acme",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    client_id = result.stderr.strip().rsplit(": ", 1)[-1]
    issuer = LocalIssuer.load_or_create(tmp_path)
    import jwt

    claims = jwt.decode(
        token, issuer.key.public_key(), algorithms=["RS256"], issuer="http://127.0.0.1:8080"
    )
    assert claims["sub"] == "u1" and claims["o"]["id"] == "o1" and claims["v"] == 2
    assert claims["azp"] == "http://localhost:3000"
    assert 3500 <= claims["exp"] - claims["iat"] <= 3600
    cosma_db = localdb.with_database(pg.admin_url, "cosma")
    with psycopg.connect(cosma_db) as conn:
        role = conn.execute(
            "select role from members where org_id = 'o1' and user_id = 'u1'"
        ).fetchone()
        assigned = conn.execute(
            "select client_id::text from client_assignments where org_id = 'o1' and user_id = 'u1'"
        ).fetchall()
    assert role == ("editor",)
    assert (client_id,) in assigned
