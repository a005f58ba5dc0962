"""The sandbox platform end to end on a served local server: start, the sandbox's
own authorize and token endpoints (PKCE checked), callback, refresh, disconnect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests

from cosma import localdb, sandbox_oauth, sandbox_platform
from cosma.server import LocalServer
from shared.errors import InvalidGrant
from shared.platforms import oauth
from shared.runtime import Runtime
from shared.settings import Settings
from tests.support.identity import TokenIssuer
from tests.support.seed import Seeder
from tests.support.servers import serve


@pytest.fixture(scope="module")
def live(
    settings: Settings, pg: localdb.LocalDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Runtime]]:
    holder: dict[str, Any] = {}
    with serve(lambda environ, start: holder["app"](environ, start)) as base:
        secrets_dir: Path = tmp_path_factory.mktemp("sandbox-secrets")
        local = settings.with_changes(public_url=base, secrets_dir=secrets_dir)
        sandbox_oauth.ensure_client_secret(local)
        assert (secrets_dir / "sandbox-client-secret").stat().st_mode & 0o077 == 0
        runtime = sandbox_platform.local_runtime(local)
        holder["app"] = LocalServer(runtime)
        yield base, runtime
        runtime.close()


def test_the_sandbox_flow_works_without_internet(
    live: tuple[str, Runtime], seeder: Seeder, tokens: TokenIssuer, pg: localdb.LocalDatabase
) -> None:
    base, runtime = live
    org = seeder.org()
    auth = tokens.header(org.principal(org.user("editor")))
    started = requests.post(
        f"{base}/oauth/sandbox/start",
        json={"client_id": org.clients[0], "all_accounts": True},
        headers=auth,
        timeout=5,
    )
    assert started.status_code == 200, started.text
    url = started.json()["authorization_url"]
    assert url.startswith(f"{base}/sandbox/oauth/authorize?")
    approved = requests.get(url, allow_redirects=False, timeout=5)
    assert approved.status_code == 302
    callback = approved.headers["Location"]
    assert callback.startswith(f"{base}/oauth/callback?")
    done = requests.get(callback, headers=auth, allow_redirects=False, timeout=10)
    assert done.status_code == 302, done.text
    assert done.headers["Location"].startswith(
        "https://app.cosma.test/connections?status=connected&platform=sandbox"
    )

    with psycopg.connect(pg.admin_url) as conn:
        conn_id, ciphertext, scopes = conn.execute(
            "select id::text, token_ciphertext, scopes from connections where org_id = %s",
            (org.id,),
        ).fetchone()
    assert scopes == ["reports.read"]
    refresh_token = runtime.cipher.decrypt(bytes(ciphertext), connection_id=conn_id, org_id=org.id)

    # The sync worker's refresh against the sandbox: rotating, the old token dies.
    platform = runtime.platforms.platform("sandbox")
    secret = runtime.secrets.get("sandbox-client-secret")
    fresh = oauth.refresh(platform, refresh_token, client_id="cosma-local", client_secret=secret)
    assert fresh.refresh_token and fresh.refresh_token != refresh_token
    assert sandbox_oauth.provider.access_token_valid(fresh.access_token)
    with pytest.raises(InvalidGrant):
        oauth.refresh(platform, refresh_token, client_id="cosma-local", client_secret=secret)

    # A replayed code is refused by the sandbox even with a fresh state.
    code = parse_qs(urlsplit(callback).query)["code"][0]
    with pytest.raises(InvalidGrant):
        oauth.exchange_code(
            platform,
            code,
            redirect_uri=f"{base}/oauth/callback",
            code_verifier="x" * 64,
            client_id="cosma-local",
            client_secret=secret,
        )

    gone = requests.delete(f"{base}/connections/{conn_id}", headers=auth, timeout=10)
    assert gone.status_code == 200 and gone.json()["revocation"]["revoked"] is True


def _connect(base: str, auth: dict[str, str], client_id: str) -> None:
    started = requests.post(
        f"{base}/oauth/sandbox/start",
        json={"client_id": client_id, "all_accounts": True},
        headers=auth,
        timeout=5,
    )
    approved = requests.get(started.json()["authorization_url"], allow_redirects=False, timeout=5)
    done = requests.get(
        approved.headers["Location"], headers=auth, allow_redirects=False, timeout=10
    )
    assert done.status_code == 302 and "status=connected" in done.headers["Location"]


def _stored_tokens(runtime: Runtime, pg: localdb.LocalDatabase, client_id: str) -> list[str]:
    with psycopg.connect(pg.admin_url) as conn:
        rows = conn.execute(
            "select id::text, org_id, token_ciphertext from connections where client_id = %s",
            (client_id,),
        ).fetchall()
    return [runtime.cipher.decrypt(bytes(c), connection_id=i, org_id=o) for i, o, c in rows if c]


def test_erasure_revokes_every_grant_it_says_it_revoked(
    live: tuple[str, Runtime], seeder: Seeder, tokens: TokenIssuer, pg: localdb.LocalDatabase
) -> None:
    base, runtime = live
    org = seeder.org()
    admin = tokens.header(org.principal(org.user("admin")))
    client_id = org.clients[0]
    for _ in range(3):
        _connect(base, admin, client_id)
    refresh_tokens = _stored_tokens(runtime, pg, client_id)
    assert len(refresh_tokens) == 3

    erased = requests.delete(f"{base}/clients/{client_id}", headers=admin, timeout=30)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert (body["connections_disconnected"], body["grants_revoked"]) == (3, 3)
    assert all(c["revocation"]["revoked"] for c in body["connections"])
    platform = runtime.platforms.platform("sandbox")
    secret = runtime.secrets.get("sandbox-client-secret")
    for refresh_token in refresh_tokens:  # refused at the provider, not only deleted here
        with pytest.raises(InvalidGrant):
            oauth.refresh(platform, refresh_token, client_id="cosma-local", client_secret=secret)


def test_the_sandbox_refuses_a_wrong_secret_and_a_wrong_verifier(live: tuple[str, Runtime]) -> None:
    base, runtime = live
    callback = f"{base}/oauth/callback"
    verifier = oauth.new_code_verifier()
    approved = requests.get(
        f"{base}/sandbox/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": "cosma-local",
            "redirect_uri": callback,
            "state": "s",
            "scope": "reports.read",
            "code_challenge": oauth.code_challenge(verifier),
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(approved.headers["Location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback,
        "client_id": "cosma-local",
        "code_verifier": verifier,
    }
    wrong_secret = requests.post(
        f"{base}/sandbox/oauth/token", data={**form, "client_secret": "no"}, timeout=5
    )
    assert wrong_secret.status_code == 401
    secret = runtime.secrets.get("sandbox-client-secret")
    wrong_verifier = requests.post(
        f"{base}/sandbox/oauth/token",
        data={**form, "client_secret": secret, "code_verifier": oauth.new_code_verifier()},
        timeout=5,
    )
    assert wrong_verifier.status_code == 400 and wrong_verifier.json() == {"error": "invalid_grant"}
    # An unregistered redirect URI is never redirected to.
    evil = requests.get(
        f"{base}/sandbox/oauth/authorize",
        params={"client_id": "cosma-local", "redirect_uri": "https://evil.test/cb"},
        allow_redirects=False,
        timeout=5,
    )
    assert evil.status_code == 400 and "Location" not in evil.headers
