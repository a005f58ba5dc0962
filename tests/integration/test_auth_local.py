"""The local issuer: key on disk, JWKS served by the local server, `cosma dev-token`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from werkzeug.test import Client

from cosma import instance
from cosma.issuer import JWKS_PATH, LocalIssuer
from cosma.server import LocalServer
from shared.runtime import Runtime
from shared.settings import Settings
from tests.support.seed import Seeder, new_id
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


@pytest.fixture
def local_server(
    settings: Settings, tmp_path: Path, webhook_secret: str
) -> Iterator[tuple[str, dict[str, str]]]:
    """The local server as `make run` serves it: its own issuer's JWKS, the webhook
    secret; and the environment `cosma dev-token` needs to reach it."""
    issuer = LocalIssuer.load_or_create(tmp_path)
    holder: dict[str, LocalServer] = {}

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        return holder["server"](environ, start_response)

    with serve(app) as base:
        local = settings.with_changes(
            public_url=base,
            clerk_issuer=base,
            clerk_jwt_key="",
            clerk_jwks_url=base + JWKS_PATH,
            allowed_origins=("http://localhost:3000",),
        )
        runtime = Runtime(local)
        holder["server"] = LocalServer(runtime, extra=[issuer.router()])
        # Published in the state folder as `cosma serve` does: dev-token finds it there.
        claim = instance.claim(tmp_path)
        assert claim is not None
        claim.publish(instance.ServerRecord(os.getpid(), base, base, "http://localhost:3000"))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("COSMA_", "CLERK_"))},
            "COSMA_HOME": str(tmp_path),
            "CLERK_WEBHOOK_SECRET": webhook_secret,
        }
        try:
            yield base, env
        finally:
            claim.release()
            runtime.close()


def dev_token(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cosma.cli", "dev-token", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_dev_token_makes_the_member_through_signed_webhooks_and_clients_through_the_api(
    local_server: tuple[str, dict[str, str]], seeder: Seeder, tmp_path: Path
) -> None:
    base, env = local_server
    org, admin, editor = new_id("org"), new_id("user"), new_id("user")
    first = dev_token(
        env, "--user", admin, "--org", org, "--role", "admin", "--create-client", "Acme"
    )
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip()
    client_id = first.stderr.strip().rsplit(": ", 1)[-1]
    issuer = LocalIssuer.load_or_create(tmp_path)
    import jwt

    claims = jwt.decode(token, issuer.key.public_key(), algorithms=["RS256"], issuer=base)
    assert claims["sub"] == admin and claims["o"]["id"] == org and claims["v"] == 2
    assert claims["azp"] == "http://localhost:3000"
    assert 3500 <= claims["exp"] - claims["iat"] <= 3600
    import requests

    session = requests.get(
        f"{base}/auth/session", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert session.status_code == 200 and session.json()["role"] == "admin"
    # The rows came through the webhook (audited as Clerk's) and POST /clients.
    with psycopg.connect(seeder.admin_url) as conn:
        trail = conn.execute(
            "select actor, action from audit_log where org_id = %s order by seq", (org,)
        ).fetchall()
    assert trail == [
        ("clerk", "clerk.organization.created"),
        ("clerk", "clerk.organizationMembership.created"),
        (admin, "clients.create"),
        (admin, "auth.session"),
    ]
    # An editor: the admin assigns the client; a second run reuses the client.
    second = dev_token(
        env,
        "--user",
        editor,
        "--org",
        org,
        "--role",
        "editor",
        "--create-client",
        "acme",
        "--admin",
        admin,
    )
    assert second.returncode == 0, second.stderr
    assert second.stderr.strip().rsplit(": ", 1)[-1] == client_id
    listed = requests.get(
        f"{base}/clients", headers={"Authorization": f"Bearer {second.stdout.strip()}"}, timeout=10
    ).json()
    assert [c["id"] for c in listed["clients"]] == [client_id]
    # Without an admin to act for it, a non-admin cannot create clients.
    refused = dev_token(
        env, "--user", editor, "--org", org, "--role", "editor", "--create-client", "X"
    )
    assert refused.returncode == 2 and "--admin" in refused.stderr


def test_dev_token_with_another_secret_is_refused_and_changes_nothing(
    local_server: tuple[str, dict[str, str]], seeder: Seeder
) -> None:
    from cosma import clerk_events

    _, env = local_server
    org = new_id("org")
    result = dev_token(
        {**env, "CLERK_WEBHOOK_SECRET": clerk_events.new_secret()}, "--user", "u1", "--org", org
    )
    assert result.returncode == 2 and "401" in result.stderr
    with psycopg.connect(seeder.admin_url) as conn:
        assert conn.execute("select 1 from organizations where id = %s", (org,)).fetchall() == []


def test_make_run_generates_a_webhook_secret_unless_one_is_set(tmp_path: Path) -> None:
    from cosma import clerk_events
    from cosma.cli import _webhook_secret

    settings = Settings(secrets_dir=tmp_path / "secrets")
    saved = os.environ.pop(clerk_events.ENV, None)
    try:
        _webhook_secret(settings)
        path = tmp_path / "secrets" / clerk_events.SECRET_FILE
        first = path.read_text()
        assert first.startswith("whsec_") and stat.S_IMODE(path.stat().st_mode) == 0o600
        _webhook_secret(settings)
        assert path.read_text() == first  # kept across restarts
        os.environ[clerk_events.ENV] = clerk_events.new_secret()
        _webhook_secret(settings)
        assert not path.exists()  # the variable decides; no file shadows it
    finally:
        os.environ.pop(clerk_events.ENV, None)
        if saved is not None:
            os.environ[clerk_events.ENV] = saved
