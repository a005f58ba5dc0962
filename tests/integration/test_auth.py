"""Authenticator against real Postgres: organization claims, membership from our
rows, the caches, and the role matrix through `access_client` under RLS."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from werkzeug.test import Client

from cosma.server import LocalServer
from shared import errors
from shared.authn import Authenticator, bearer_token
from shared.policy import ACTIONS, access_client
from shared.principal import Principal
from shared.runtime import Runtime
from shared.settings import Settings
from shared.tenancy import tenant
from tests.support.identity import TokenIssuer
from tests.support.seed import Org, Seeder
from tests.support.servers import serve


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clocked(settings: Settings, clock: Clock) -> Iterator[Runtime]:
    rt = Runtime(settings, clock=clock)
    yield rt
    rt.close()


def bearer(token: str) -> str:
    return f"Bearer {token}"


# ---------------------------------------------------------------- organizations


@pytest.mark.parametrize("version", [1, 2])
def test_v1_and_v2_organization_claims(
    runtime: Runtime, seeder: Seeder, tokens: TokenIssuer, version: int
) -> None:
    org = seeder.org()
    viewer = org.user("viewer")
    token = tokens.mint(viewer, org.id, "viewer", version=version)
    principal = runtime.authenticator.authenticate(bearer(token))
    assert (principal.user_id, principal.org_id, principal.role) == (viewer, org.id, "viewer")
    assert principal.client_ids == frozenset({org.clients[0]})
    assert principal.session_id.startswith("sess_")


def test_role_comes_from_our_rows_not_the_token(
    runtime: Runtime, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    viewer = org.user("viewer")
    principal = runtime.authenticator.authenticate(
        bearer(tokens.mint(viewer, org.id, "admin", version=1))
    )
    assert principal.role == "viewer"


def test_member_of_a_presenting_a_token_for_b_is_forbidden(
    runtime: Runtime, client: Client, seeder: Seeder, tokens: TokenIssuer
) -> None:
    a, b = seeder.org(), seeder.org()
    admin_a = a.user("admin")
    token = tokens.mint(admin_a, b.id, "admin")
    with pytest.raises(errors.Forbidden):
        runtime.authenticator.authenticate(bearer(token))
    response = client.get("/auth/session", headers={"Authorization": bearer(token)})
    assert response.status_code == 403
    assert b.id not in response.get_data(as_text=True)


def test_no_organization_in_token_is_forbidden(
    client: Client, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    token = tokens.mint(org.user("admin"), None)
    response = client.get("/auth/session", headers={"Authorization": bearer(token)})
    assert response.status_code == 403
    assert response.content_type == "application/problem+json"


def test_unknown_organization_is_forbidden(runtime: Runtime, tokens: TokenIssuer) -> None:
    with pytest.raises(errors.Forbidden):
        runtime.authenticator.authenticate(bearer(tokens.mint("user_nobody", "org_nowhere")))


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a b", "Token abc"]
)
def test_malformed_authorization_headers(runtime: Runtime, header: str) -> None:
    with pytest.raises(errors.Unauthorized):
        runtime.authenticator.authenticate(header)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://evil.test"},
        {"azp": "https://evil.test"},
        {"sts": "pending"},
        {"exp": 1},
    ],
)
def test_every_token_problem_is_the_same_401(
    client: Client, seeder: Seeder, tokens: TokenIssuer, change: dict[str, object]
) -> None:
    org = seeder.org()
    token = tokens.mint(org.user("admin"), org.id, **change)
    response = client.get("/auth/session", headers={"Authorization": bearer(token)})
    assert response.status_code == 401
    body = response.get_json()
    assert body["detail"] == "The request could not be authenticated."
    assert token not in response.get_data(as_text=True)


# ---------------------------------------------------------------- caches


def test_cached_token_is_rechecked_against_exp(
    clocked: Runtime, clock: Clock, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    token = tokens.mint(org.user("editor"), org.id, now=clock.now, ttl=60)
    assert clocked.authenticator.authenticate(bearer(token)).role == "editor"
    assert len(clocked.authenticator._tokens) == 1
    clock.now += 30
    assert clocked.authenticator.authenticate(bearer(token)).role == "editor"
    clock.now += 40  # past exp + leeway: the cache must not keep it alive
    with pytest.raises(errors.Unauthorized):
        clocked.authenticator.authenticate(bearer(token))
    assert len(clocked.authenticator._tokens) == 0


def test_cache_is_keyed_by_hash_and_bounded(
    settings: Settings, runtime: Runtime, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    auth = Authenticator.from_settings(settings, runtime.db)
    auth.max_tokens = 3
    minted = [tokens.mint(org.user("viewer"), org.id) for _ in range(5)]
    for token in minted:
        auth.authenticate(bearer(token))
    assert len(auth._tokens) == 3
    for key in auth._tokens:
        assert isinstance(key, bytes) and len(key) == 32
        assert all(key not in t.encode() for t in minted)


def test_removed_member_loses_access_within_the_ttl(
    clocked: Runtime, clock: Clock, seeder: Seeder, tokens: TokenIssuer, pg
) -> None:
    org = seeder.org()
    editor = org.user("editor")
    token = tokens.mint(editor, org.id, now=clock.now, ttl=3600)
    assert clocked.authenticator.authenticate(bearer(token)).role == "editor"
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute("delete from members where org_id = %s and user_id = %s", (org.id, editor))
    clock.now += clocked.authenticator.principal_ttl + 1
    with pytest.raises(errors.Forbidden):
        clocked.authenticator.authenticate(bearer(token))


def test_new_assignment_seen_after_the_ttl(
    clocked: Runtime, clock: Clock, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    viewer = org.user("viewer")
    token = tokens.mint(viewer, org.id, now=clock.now, ttl=3600)
    assert clocked.authenticator.authenticate(bearer(token)).client_ids == {org.clients[0]}
    seeder.assign(org, viewer, org.clients[1])
    clock.now += clocked.authenticator.principal_ttl + 1
    assert clocked.authenticator.authenticate(bearer(token)).client_ids == set(org.clients)


# ---------------------------------------------------------------- JWKS through the server


def test_jwks_mode_end_to_end_and_outage_is_503(
    settings: Settings, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    app = tokens.jwks_app()
    with serve(app) as base:
        jwks_settings = settings.with_changes(
            clerk_jwt_key="", clerk_jwks_url=f"{base}/.well-known/jwks.json"
        )
        rt = Runtime(jwks_settings)
        try:
            c = Client(LocalServer(rt))
            ok = c.get("/auth/session", headers=tokens.header(org, org.user("admin")))
            assert ok.status_code == 200
            assert ok.get_json()["role"] == "admin"
        finally:
            rt.close()
    down = Runtime(jwks_settings)
    try:
        c = Client(LocalServer(down))
        response = c.get("/auth/session", headers=tokens.header(org, org.user("admin")))
        assert response.status_code == 503
        assert response.content_type == "application/problem+json"
    finally:
        down.close()


# ---------------------------------------------------------------- role matrix under RLS

EXPECTED = {
    "admin": {"read", "connect", "disconnect", "sync", "manage"},
    "editor": {"read", "connect", "disconnect", "sync"},
    "viewer": {"read"},
}


def outcome(runtime: Runtime, principal: Principal, action: str, client_id: str) -> str:
    try:
        with tenant(runtime.db, principal) as tx:
            access_client(tx, principal, action, client_id)  # type: ignore[arg-type]
    except errors.NotFound:
        return "404"
    except errors.Forbidden:
        return "403"
    return "ok"


@pytest.fixture(scope="module")
def matrix_orgs(seeder: Seeder) -> tuple[Org, Org]:
    return seeder.org(), seeder.org()


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
@pytest.mark.parametrize("action", ACTIONS)
def test_role_matrix_for_every_action(
    runtime: Runtime, matrix_orgs: tuple[Org, Org], role: str, action: str
) -> None:
    a, b = matrix_orgs
    principal = a.principal(a.user(role))
    assigned, unassigned = a.clients
    want = "ok" if action in EXPECTED[role] else "403"
    assert outcome(runtime, principal, action, assigned) == want
    # Unassigned clients are invisible to editors and viewers, reachable for admins.
    want_unassigned = want if role == "admin" else "404"
    assert outcome(runtime, principal, action, unassigned) == want_unassigned
    # Another organization's client, a missing one and a malformed id: all 404.
    assert outcome(runtime, principal, action, b.clients[0]) == "404"
    assert outcome(runtime, principal, action, str(uuid.uuid4())) == "404"
    assert outcome(runtime, principal, action, "not-a-uuid") == "404"


def test_forged_principal_cannot_reach_other_org_client(
    runtime: Runtime, matrix_orgs: tuple[Org, Org]
) -> None:
    a, b = matrix_orgs
    # Claims the other organization's client as assigned: RLS still hides it.
    forged = Principal(a.user("admin"), a.id, "admin", frozenset({b.clients[0]}))
    assert outcome(runtime, forged, "read", b.clients[0]) == "404"
