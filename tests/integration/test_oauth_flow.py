"""The connect flow end to end: the served oauth function, real Postgres, and a
local OAuth provider per platform protocol (tests/support/oauth_providers.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from werkzeug.test import Client

from cosma import localdb
from cosma.server import LocalServer
from shared.platforms import registry
from shared.runtime import Runtime
from shared.settings import Settings
from tests.support.identity import TokenIssuer
from tests.support.oauth_providers import (
    CLIENT_SECRET,
    RETRY_AFTER_S,
    MetaProvider,
    provider_for,
)
from tests.support.seed import Org, Seeder
from tests.support.servers import serve

PLATFORMS = ("google_ads", "meta", "linkedin", "tiktok", "microsoft")


@dataclass
class Env:
    providers: dict[str, Any]
    runtime: Runtime
    client: Client
    settings: Settings
    admin_url: str


@pytest.fixture(scope="module")
def env(
    settings: Settings, pg: localdb.LocalDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    providers = {name: provider_for(name, f"cid-{name}", slow_s=2.5) for name in PLATFORMS}
    secrets_dir: Path = tmp_path_factory.mktemp("oauth-secrets")
    for name in PLATFORMS:
        (secrets_dir / registry.client_secret_name(name)).write_text(CLIENT_SECRET)
    with ExitStack() as stack:
        urls = {name: stack.enter_context(serve(p.app)) for name, p in providers.items()}
        test_settings = settings.with_changes(
            platform_base_urls=urls,
            platform_client_ids={name: f"cid-{name}" for name in PLATFORMS},
            secrets_dir=secrets_dir,
            oauth_timeout_s=1.0,
            oauth_revoke_timeout_s=1.0,
        )
        runtime = Runtime(test_settings)
        yield Env(providers, runtime, Client(LocalServer(runtime)), test_settings, pg.admin_url)
        runtime.close()


@pytest.fixture(autouse=True)
def reset(env: Env) -> None:
    for provider in env.providers.values():
        provider.token_mode = provider.revoke_mode = provider.granted = None


def sql(env: Env, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(env.admin_url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def start(
    env: Env, tokens: TokenIssuer, org: Org, role: str, platform: str, client: int = 0
) -> Any:
    principal = org.principal(org.user(role))
    return env.client.post(
        f"/oauth/{platform}/start",
        json={"client_id": org.clients[client], "account_ids": ["acct-1"]},
        headers=tokens.header(principal),
    )


def authorize(env: Env, tokens: TokenIssuer, org: Org, role: str, platform: str) -> dict[str, str]:
    response = start(env, tokens, org, role, platform)
    assert response.status_code == 200, response.get_data(as_text=True)
    return env.providers[platform].authorize(response.json["authorization_url"])


def callback(
    env: Env, tokens: TokenIssuer, org: Org, role: str, query: dict[str, str], **kw: Any
) -> Any:
    headers = tokens.header(org.principal(org.user(role)))
    headers.update(kw.pop("headers", {}))
    return env.client.get("/oauth/callback", query_string=query, headers=headers, **kw)


def redirect_params(response: Any) -> dict[str, str]:
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith("https://app.cosma.test/connections?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def connections_of(env: Env, org: Org) -> list[tuple[Any, ...]]:
    return sql(
        env,
        "select id::text, platform, status, scopes, scopes_flagged, token_ciphertext,"
        " key_version, account_ids, created_by, external_account_id"
        " from connections where org_id = %s",
        (org.id,),
    )


def plaintext_anywhere(env: Env, token: str) -> int:
    total = 0
    for table in ("connections", "oauth_states", "audit_log", "datasets", "sync_runs"):
        rows = sql(env, f"select count(*) from {table} t where t::text like %s", (f"%{token}%",))
        total += rows[0][0]
    return total


def connect(env: Env, tokens: TokenIssuer, org: Org, platform: str, role: str = "editor") -> str:
    query = authorize(env, tokens, org, role, platform)
    assert redirect_params(callback(env, tokens, org, role, query))["status"] == "connected"
    return str(connections_of(env, org)[-1][0])


# ---------------------------------------------------------------- the full flow


@pytest.mark.parametrize("platform", PLATFORMS)
def test_full_flow_stores_a_sealed_token_and_redirects_to_the_app(
    env: Env, seeder: Seeder, tokens: TokenIssuer, platform: str
) -> None:
    org = seeder.org()
    editor = org.user("editor")
    response = start(env, tokens, org, "editor", platform)
    assert response.status_code == 200
    url = response.json["authorization_url"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    entry = env.runtime.platforms.platform(platform)
    assert url.startswith(entry.authorize_url)
    assert params["redirect_uri"] == "http://127.0.0.1:8080/oauth/callback"
    assert len(params["state"]) >= 43
    assert ("code_challenge" in params) == entry.pkce
    if entry.pkce:
        assert params["code_challenge_method"] == "S256"
    if platform == "google_ads":
        assert params["access_type"] == "offline" and params["prompt"] == "consent"
    if platform == "tiktok":
        assert params["app_id"] == "cid-tiktok" and "scope" not in params
    else:
        assert params["client_id"] == f"cid-{platform}"
    assert "client_secret" not in url and CLIENT_SECRET not in url

    query = env.providers[platform].authorize(url)
    response = callback(env, tokens, org, "editor", query)
    params = redirect_params(response)
    assert params["status"] == "connected" and params["platform"] == platform
    location = response.headers["Location"]
    assert query["code"] not in location and "token" not in location

    [row] = connections_of(env, org)
    conn_id, name, status, scopes, flagged, ciphertext, key_version, accounts, by, ext = row
    assert (name, status, flagged, accounts, by) == (platform, "active", False, ["acct-1"], editor)
    assert key_version is not None
    refresh_token = env.providers[platform].issued_refresh[-1]
    assert (
        env.runtime.cipher.decrypt(bytes(ciphertext), connection_id=conn_id, org_id=org.id)
        == refresh_token
    )
    assert plaintext_anywhere(env, refresh_token) == 0
    if platform == "meta":
        assert ext == MetaProvider.USER_ID
        assert "ads_read" in scopes
    if platform == "linkedin":
        assert sorted(scopes) == ["r_ads", "r_ads_reporting"]
    # Provisioning was requested; the state is spent; one audit record says so.
    assert (
        sql(
            env,
            "select count(*) from datasets where client_id = %s and platform = %s",
            (org.clients[0], platform),
        )[0][0]
        == 1
    )
    assert (
        sql(
            env,
            "select count(*) from oauth_states where org_id = %s and used_at is null",
            (org.id,),
        )[0][0]
        == 0
    )
    audits = sql(
        env,
        "select outcome, detail from audit_log where org_id = %s and action = 'oauth.callback'",
        (org.id,),
    )
    assert len(audits) == 1 and audits[0][0] == "ok" and "dataset=ready" in audits[0][1]


def test_json_callers_get_json_and_the_session_cookie_is_accepted(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    query = authorize(env, tokens, org, "editor", "linkedin")
    browser = Client(env.client.application)  # its own cookie jar
    browser.set_cookie("__session", tokens.token(org.principal(org.user("editor"))))
    response = browser.get(
        "/oauth/callback", query_string=query, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["platform"] == "linkedin" and response.json["dataset"] == "ready"
    assert "token" not in response.get_data(as_text=True)


def test_a_signed_out_browser_is_sent_back_and_nothing_is_stored(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    query = authorize(env, tokens, org, "editor", "linkedin")
    response = env.client.get("/oauth/callback", query_string=query)
    assert redirect_params(response) == {"status": "error", "reason": "unauthorized"}
    assert connections_of(env, org) == []


# ---------------------------------------------------------------- states


def test_a_replayed_state_fails(env: Env, seeder: Seeder, tokens: TokenIssuer) -> None:
    org = seeder.org()
    query = authorize(env, tokens, org, "editor", "google_ads")
    assert redirect_params(callback(env, tokens, org, "editor", query))["status"] == "connected"
    again = callback(env, tokens, org, "editor", query)
    assert redirect_params(again) == {"status": "error", "reason": "invalid-state"}
    assert len(connections_of(env, org)) == 1
    outcomes = sql(
        env,
        "select outcome, detail from audit_log where org_id = %s"
        " and action = 'oauth.callback' order by seq",
        (org.id,),
    )
    assert outcomes[-1] == ("rejected", "error=invalid-state")


def test_an_expired_state_fails(env: Env, seeder: Seeder, tokens: TokenIssuer) -> None:
    org = seeder.org()
    query = authorize(env, tokens, org, "editor", "linkedin")
    sql(
        env,
        "update oauth_states set expires_at = now() - interval '1 second' where org_id = %s",
        (org.id,),
    )
    response = callback(env, tokens, org, "editor", query, headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.json["type"] == "urn:cosma:problem:invalid-state"
    assert connections_of(env, org) == []


def test_a_state_lives_ten_minutes_by_our_clock(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    authorize(env, tokens, org, "editor", "linkedin")
    [(lifetime,)] = sql(
        env,
        "select extract(epoch from expires_at - created_at) from oauth_states where org_id = %s",
        (org.id,),
    )
    assert 590 <= float(lifetime) <= 610


def test_another_users_state_fails_and_stays_usable_by_its_owner(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    query = authorize(env, tokens, org, "editor", "linkedin")
    stolen = callback(env, tokens, org, "admin", query)
    assert redirect_params(stolen) == {"status": "error", "reason": "invalid-state"}
    assert connections_of(env, org) == []
    assert redirect_params(callback(env, tokens, org, "editor", query))["status"] == "connected"


def test_a_forged_state_fails(env: Env, seeder: Seeder, tokens: TokenIssuer) -> None:
    org = seeder.org()
    query = authorize(env, tokens, org, "editor", "linkedin")
    query["state"] = secrets.token_urlsafe(32)
    assert redirect_params(callback(env, tokens, org, "editor", query))["reason"] == "invalid-state"
    assert connections_of(env, org) == []


def test_a_wrong_pkce_verifier_is_refused_by_the_provider(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    query = authorize(env, tokens, org, "editor", "google_ads")
    sql(env, "update oauth_states set code_verifier = %s where org_id = %s", ("x" * 64, org.id))
    response = callback(env, tokens, org, "editor", query)
    assert redirect_params(response) == {"status": "error", "reason": "invalid-grant"}
    assert connections_of(env, org) == []


# ---------------------------------------------------------------- provider errors


@pytest.mark.parametrize(
    ("platform", "mode", "reason"),
    [
        ("linkedin", "500", "provider-unavailable"),
        ("linkedin", "slow", "provider-unavailable"),
        ("linkedin", "invalid_grant", "invalid-grant"),
        ("microsoft", "access_denied", "access-denied"),
        ("tiktok", "500", "provider-unavailable"),
        ("tiktok", "invalid_grant", "invalid-grant"),
        ("meta", "slow", "provider-unavailable"),
        ("meta", "invalid_grant", "invalid-grant"),
    ],
)
def test_token_endpoint_failures_store_nothing(
    env: Env, seeder: Seeder, tokens: TokenIssuer, platform: str, mode: str, reason: str
) -> None:
    org = seeder.org()
    query = authorize(env, tokens, org, "editor", platform)
    env.providers[platform].token_mode = mode
    response = callback(env, tokens, org, "editor", query)
    assert redirect_params(response) == {"status": "error", "reason": reason}
    assert connections_of(env, org) == []
    assert (
        sql(env, "select count(*) from datasets where client_id = %s", (org.clients[0],))[0][0] == 0
    )


@pytest.mark.parametrize("platform", ["linkedin", "tiktok", "meta"])
def test_a_provider_rate_limiting_the_exchange_answers_503_with_its_retry_after(
    env: Env, seeder: Seeder, tokens: TokenIssuer, platform: str
) -> None:
    """The provider's limit is not the caller's fault: 503 and when to come back, as
    for any dependency that is down, never a 502 with nothing to go on."""
    org = seeder.org()
    query = authorize(env, tokens, org, "editor", platform)
    env.providers[platform].token_mode = "429"
    response = callback(env, tokens, org, "editor", query, headers={"Accept": "application/json"})
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert response.json["type"] == "urn:cosma:problem:provider-rate-limited"
    assert connections_of(env, org) == []
    # A browser is sent to the app with the same reason.
    query = authorize(env, tokens, org, "editor", platform)
    browser = callback(env, tokens, org, "editor", query)
    assert redirect_params(browser) == {"status": "error", "reason": "provider-rate-limited"}


def test_consent_refused_at_the_provider_stores_nothing(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    query = authorize(env, tokens, org, "editor", "google_ads")
    response = callback(
        env, tokens, org, "editor", {"state": query["state"], "error": "access_denied"}
    )
    assert redirect_params(response) == {"status": "error", "reason": "access-denied"}
    assert connections_of(env, org) == []
    # The state was spent by the refusal: the code cannot be used afterwards.
    assert redirect_params(callback(env, tokens, org, "editor", query))["reason"] == "invalid-state"


def test_a_broader_grant_is_recorded_and_flagged(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    env.providers["linkedin"].granted = ("r_ads", "r_ads_reporting", "rw_ads")
    connect(env, tokens, org, "linkedin")
    [row] = connections_of(env, org)
    assert sorted(row[3]) == ["r_ads", "r_ads_reporting", "rw_ads"] and row[4] is True


def test_a_narrower_grant_is_refused_and_given_back(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    provider = env.providers["google_ads"]
    provider.granted = ("openid",)
    query = authorize(env, tokens, org, "editor", "google_ads")
    assert redirect_params(callback(env, tokens, org, "editor", query))["reason"] == "access-denied"
    assert connections_of(env, org) == []
    assert provider.revoked[-1] == provider.issued_refresh[-1]


# ---------------------------------------------------------------- disconnect


def disconnect(env: Env, tokens: TokenIssuer, org: Org, role: str, conn_id: str) -> Any:
    return env.client.delete(
        f"/connections/{conn_id}", headers=tokens.header(org.principal(org.user(role)))
    )


def test_disconnect_revokes_deletes_and_audits_and_repeating_is_harmless(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    conn_id = connect(env, tokens, org, "linkedin")
    provider = env.providers["linkedin"]
    refresh_token = provider.issued_refresh[-1]
    response = disconnect(env, tokens, org, "editor", conn_id)
    assert response.status_code == 200
    assert response.json["status"] == "disconnected" and response.json["token_deleted"] is True
    assert response.json["revocation"] == {"revoked": True, "reason": None}
    assert refresh_token in provider.revoked
    [row] = connections_of(env, org)
    assert (row[2], row[5], row[6]) == ("disconnected", None, None)
    [(recorded,)] = sql(env, "select revocation from connections where id = %s", (conn_id,))
    assert recorded == "revoked"
    again = disconnect(env, tokens, org, "editor", conn_id)
    assert again.status_code == 200
    assert again.json["revocation"] == {
        "revoked": False,
        "reason": "no_token",
        "remove_access_at": None,
    }
    details = [
        d
        for (d,) in sql(
            env,
            "select detail from audit_log where org_id = %s"
            " and action = 'oauth.disconnect' order by seq",
            (org.id,),
        )
    ]
    assert details == ["revocation=revoked", "revocation=not_revoked reason=no_token"]
    assert plaintext_anywhere(env, refresh_token) == 0


@pytest.mark.parametrize(
    ("platform", "mode"), [("google_ads", "500"), ("meta", "slow"), ("tiktok", "500")]
)
def test_revoke_while_the_provider_is_down_still_deletes_the_token(
    env: Env, seeder: Seeder, tokens: TokenIssuer, platform: str, mode: str
) -> None:
    org = seeder.org()
    conn_id = connect(env, tokens, org, platform)
    env.providers[platform].revoke_mode = mode
    response = disconnect(env, tokens, org, "editor", conn_id)
    assert response.status_code == 200
    # Never "revoked" for a grant that still works: the answer says so, and where
    # the user can remove the app by hand.
    revocation = response.json["revocation"]
    assert revocation["revoked"] is False and revocation["reason"] == "provider_unavailable"
    assert revocation["remove_access_at"].startswith("https://")
    [row] = connections_of(env, org)
    assert (row[2], row[5]) == ("disconnected", None)
    [(recorded, reason)] = sql(
        env, "select revocation, revocation_reason from connections where id = %s", (conn_id,)
    )
    assert (recorded, reason) == ("not_revoked", "provider_unavailable")
    [(detail,)] = sql(
        env,
        "select detail from audit_log where org_id = %s and action = 'oauth.disconnect'",
        (org.id,),
    )
    assert detail == "revocation=not_revoked reason=provider_unavailable"


def test_microsoft_has_no_revocation_endpoint(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    conn_id = connect(env, tokens, org, "microsoft")
    response = disconnect(env, tokens, org, "admin", conn_id)
    assert response.json["revocation"] == {
        "revoked": False,
        "reason": "not_supported",
        "remove_access_at": "https://account.live.com/consent/Manage",
    }
    assert connections_of(env, org)[0][5] is None


# ---------------------------------------------------------------- who may do what


def test_a_viewer_can_list_but_not_connect_or_disconnect(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    assert start(env, tokens, org, "viewer", "linkedin").status_code == 403
    conn_id = connect(env, tokens, org, "linkedin")
    assert disconnect(env, tokens, org, "viewer", conn_id).status_code == 403
    [row] = connections_of(env, org)
    assert row[2] == "active" and row[5] is not None
    listed = env.client.get(
        "/connections",
        query_string={"client_id": org.clients[0]},
        headers=tokens.header(org.principal(org.user("viewer"))),
    )
    assert listed.status_code == 200
    [item] = listed.json["connections"]
    assert item["id"] == conn_id and item["status"] == "active"
    text = listed.get_data(as_text=True)
    assert "ciphertext" not in text and env.providers["linkedin"].issued_refresh[-1] not in text


def test_an_editor_cannot_connect_an_unassigned_client(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    assert start(env, tokens, org, "editor", "linkedin", client=1).status_code == 404


def test_another_organizations_connection_answers_404(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    a, b = seeder.org(), seeder.org()
    conn_id = connect(env, tokens, a, "linkedin")
    admin_b = tokens.header(b.principal(b.user("admin")))
    assert env.client.delete(f"/connections/{conn_id}", headers=admin_b).status_code == 404
    assert (
        env.client.get(
            "/connections", query_string={"client_id": a.clients[0]}, headers=admin_b
        ).status_code
        == 404
    )
    response = env.client.post(
        "/oauth/linkedin/start",
        json={"client_id": a.clients[0], "all_accounts": True},
        headers=admin_b,
    )
    assert response.status_code == 404
    assert connections_of(env, a)[0][2] == "active"


def test_bad_requests_are_refused(env: Env, seeder: Seeder, tokens: TokenIssuer) -> None:
    org = seeder.org()
    headers = tokens.header(org.principal(org.user("admin")))
    body = {"client_id": org.clients[0], "all_accounts": True}
    assert env.client.post("/oauth/myspace/start", json=body, headers=headers).status_code == 404
    both = {**body, "account_ids": ["a"]}
    assert env.client.post("/oauth/linkedin/start", json=both, headers=headers).status_code == 422
    extra = {**body, "scope": "rw_ads"}
    assert env.client.post("/oauth/linkedin/start", json=extra, headers=headers).status_code == 422
    assert env.client.delete("/connections/not-a-uuid", headers=headers).status_code == 404
    assert sql(env, "select count(*) from oauth_states where org_id = %s", (org.id,))[0][0] == 0


def test_tiktok_all_accounts_means_the_advertisers_the_grant_names(
    env: Env, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    principal = org.principal(org.user("editor"))
    response = env.client.post(
        "/oauth/tiktok/start",
        json={"client_id": org.clients[0], "all_accounts": True},
        headers=tokens.header(principal),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    query = env.providers["tiktok"].authorize(response.json["authorization_url"])
    assert redirect_params(callback(env, tokens, org, "editor", query))["status"] == "connected"
    [row] = connections_of(env, org)
    assert row[7] == ["7000000001"]  # account_ids, from the token exchange's advertiser_ids
