"""Every route, checked the same way: ownership (IDOR) and exactly one audit record.

The table below names a request for each Clerk-authenticated route; a route
added without a case fails `test_every_route_has_a_case`, so a new endpoint
cannot skip these checks. `POST /sync` and `POST /directory/reconcile` are
authenticated by Cloud Scheduler's OIDC token instead, and `POST
/webhooks/clerk` by Svix's signature; they have their own tests
(tests/*/test_sync_*, tests/integration/test_directory_*).

The role matrix of the clients, members and assignments routes is here too;
the older routes' is tests/integration/test_auth.py::test_role_matrix_for_every_action.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from werkzeug.test import Client

from cosma.server import PREFIXES, function_router
from tests.support.identity import TokenIssuer
from tests.support.seed import Org, Seeder

TODAY = dt.date.today()
EXPORT_ID = "20260101T000000000000Z-0a1b2c3d"


@dataclass(frozen=True)
class Case:
    method: str
    pattern: str
    # Builds (path, json body) for a request on `org`'s first client and connection.
    build: Callable[[Org, str], tuple[str, Any]]


def _query_body(org: Org) -> dict[str, Any]:
    return {
        "client_id": org.clients[0],
        "platforms": ["sandbox"],
        "date_from": str(TODAY - dt.timedelta(days=7)),
        "date_to": str(TODAY),
        "metrics": ["impressions"],
    }


CASES = [
    Case("GET", "/auth/session", lambda o, c: ("/auth/session", None)),
    Case(
        "POST",
        "/oauth/{platform}/start",
        lambda o, c: ("/oauth/sandbox/start", {"client_id": o.clients[0], "all_accounts": True}),
    ),
    Case("GET", "/oauth/callback", lambda o, c: ("/oauth/callback?code=abc&state=forged", None)),
    Case("DELETE", "/connections/{connection_id}", lambda o, c: (f"/connections/{c}", None)),
    Case("GET", "/connections", lambda o, c: (f"/connections?client_id={o.clients[0]}", None)),
    Case("GET", "/connections/{connection_id}/runs", lambda o, c: (f"/connections/{c}/runs", None)),
    Case(
        "POST", "/connections/{connection_id}/sync", lambda o, c: (f"/connections/{c}/sync", None)
    ),
    Case(
        "POST",
        "/datasets",
        lambda o, c: ("/datasets", {"client_id": o.clients[0], "platform": "sandbox"}),
    ),
    Case("GET", "/datasets", lambda o, c: (f"/datasets?client_id={o.clients[0]}", None)),
    Case(
        "DELETE",
        "/datasets/{client_id}/{platform}",
        lambda o, c: (f"/datasets/{o.clients[0]}/sandbox", None),
    ),
    Case("DELETE", "/clients/{client_id}", lambda o, c: (f"/clients/{o.clients[0]}", None)),
    Case(
        "POST",
        "/clients/{client_id}/export",
        lambda o, c: (f"/clients/{o.clients[0]}/export", None),
    ),
    Case(
        "GET",
        "/clients/{client_id}/exports/{export_id}/{name}",
        # An export id of the right shape: another organization reaches nothing by it.
        lambda o, c: (f"/clients/{o.clients[0]}/exports/{EXPORT_ID}/manifest", None),
    ),
    Case("POST", "/query", lambda o, c: ("/query", _query_body(o))),
    Case("GET", "/audit", lambda o, c: ("/audit", None)),
    Case("POST", "/clients", lambda o, c: ("/clients", {"name": f"New {uuid.uuid4().hex[:8]}"})),
    Case("GET", "/clients", lambda o, c: ("/clients", None)),
    Case("GET", "/clients/{client_id}", lambda o, c: (f"/clients/{o.clients[0]}", None)),
    Case(
        "PATCH",
        "/clients/{client_id}",
        lambda o, c: (f"/clients/{o.clients[0]}", {"name": f"Renamed {uuid.uuid4().hex[:8]}"}),
    ),
    Case("GET", "/members", lambda o, c: ("/members", None)),
    Case(
        "GET",
        "/clients/{client_id}/assignments",
        lambda o, c: (f"/clients/{o.clients[0]}/assignments", None),
    ),
    *(
        Case(
            method,
            "/clients/{client_id}/assignments/{user_id}",
            lambda o, c: (f"/clients/{o.clients[0]}/assignments/{o.user('editor')}", None),
        )
        for method in ("GET", "PUT", "DELETE")
    ),
]
# Routes whose resource is the caller's own (session, organization's audit log,
# its clients and members as a whole), not one client: a request from another
# organization acts on its own. tests/integration/test_audit_export.py covers
# the audit export's isolation, tests/integration/test_clients_api.py the lists'.
NO_RESOURCE = {"/auth/session", "/audit", "/clients", "/members"}


# Public by design: no caller, no tenant data (RFC 9116's security.txt).
PUBLIC = {("GET", "/.well-known/security.txt")}
# Authenticated otherwise: Cloud Scheduler's OIDC token, Svix's signature.
NOT_A_SESSION = {("POST", "/sync"), ("POST", "/directory/reconcile"), ("POST", "/webhooks/clerk")}

# (admin, editor, viewer) status of each clients, members and assignments route,
# on the organization's first client (assigned to its editor and viewer).
ROLE_MATRIX = {
    ("POST", "/clients"): (201, 403, 403),
    ("GET", "/clients"): (200, 200, 200),
    ("GET", "/clients/{client_id}"): (200, 200, 200),
    ("PATCH", "/clients/{client_id}"): (200, 403, 403),
    ("GET", "/members"): (200, 403, 403),
    ("GET", "/clients/{client_id}/assignments"): (200, 403, 403),
    ("GET", "/clients/{client_id}/assignments/{user_id}"): (200, 403, 403),
    ("PUT", "/clients/{client_id}/assignments/{user_id}"): (204, 403, 403),
    ("DELETE", "/clients/{client_id}/assignments/{user_id}"): (204, 403, 403),
}


def _routes() -> set[tuple[str, str]]:
    found = set()
    for name in PREFIXES:
        for route in function_router(name).routes:
            key = (route.method, route.pattern)
            if key not in NOT_A_SESSION and key not in PUBLIC:
                found.add(key)
    return found


def test_every_route_has_a_case() -> None:
    assert _routes() == {(c.method, c.pattern) for c in CASES}


def _call(client: Client, case: Case, org: Org, conn_id: str, headers: dict[str, str]) -> Any:
    path, body = case.build(org, conn_id)
    headers = {**headers, "Accept": "application/json"}
    return client.open(path, method=case.method, json=body, headers=headers)


def _tenant_state(admin_url: str, org: Org) -> tuple[Any, ...]:
    with psycopg.connect(admin_url) as conn:
        return tuple(
            conn.execute(query, (org.id,)).fetchall()
            for query in (
                "select id, name from clients where org_id = %s order by id",
                "select id, status, token_ciphertext from connections"
                " where org_id = %s order by id",
                "select dataset_id, status from datasets where org_id = %s order by dataset_id",
                "select count(*) from oauth_states where org_id = %s",
                "select client_id, user_id from client_assignments where org_id = %s order by 1, 2",
                "select user_id, role from members where org_id = %s order by user_id",
            )
        )


def _audit_count(admin_url: str, org: Org) -> int:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute("select count(*) from audit_log where org_id = %s", (org.id,)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def victim(seeder: Seeder) -> tuple[Org, str]:
    org = seeder.org()
    return org, seeder.connection(org, org.clients[0])


@pytest.mark.parametrize("case", [c for c in CASES if c.pattern not in NO_RESOURCE], ids=str)
def test_another_organizations_admin_reaches_nothing(
    case: Case, victim: tuple[Org, str], seeder: Seeder, client: Client, tokens: TokenIssuer
) -> None:
    org, conn_id = victim
    intruder = seeder.org()
    before = _tenant_state(seeder.admin_url, org)
    response = _call(client, case, org, conn_id, tokens.header(intruder, intruder.user("admin")))
    # Not found (no existence leak), or a state that is not theirs; never success.
    assert response.status_code in (400, 404), (response.status_code, response.get_data(True))
    assert _tenant_state(seeder.admin_url, org) == before
    assert _audit_count(seeder.admin_url, org) == 0


@pytest.mark.parametrize("case", [c for c in CASES if c.pattern not in NO_RESOURCE], ids=str)
def test_an_unassigned_viewer_reaches_nothing(
    case: Case, seeder: Seeder, client: Client, tokens: TokenIssuer
) -> None:
    org = seeder.org(assign_first=False)
    conn_id = seeder.connection(org, org.clients[0])
    before = _tenant_state(seeder.admin_url, org)
    response = _call(client, case, org, conn_id, tokens.header(org, org.user("viewer")))
    assert response.status_code in (400, 404), (response.status_code, response.get_data(True))
    assert _tenant_state(seeder.admin_url, org) == before


@pytest.mark.parametrize("role", ["admin", "viewer"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_route_writes_exactly_one_audit_record(
    case: Case,
    role: str,
    victim: tuple[Org, str],
    seeder: Seeder,
    client: Client,
    tokens: TokenIssuer,
) -> None:
    org, conn_id = victim
    before = _audit_count(seeder.admin_url, org)
    response = _call(client, case, org, conn_id, tokens.header(org, org.user(role)))
    assert response.status_code < 500, response.get_data(True)
    assert _audit_count(seeder.admin_url, org) == before + 1


def test_every_clients_and_members_route_is_in_the_matrix() -> None:
    # DELETE /clients/{id}, the export and its download are admin-only "manage"
    # work, in the older matrix (test_auth) and the datasets and export tests.
    older = {
        ("DELETE", "/clients/{client_id}"),
        ("POST", "/clients/{client_id}/export"),
        ("GET", "/clients/{client_id}/exports/{export_id}/{name}"),
    }
    routes = {
        (r.method, r.pattern)
        for r in function_router("datasets").routes
        if r.pattern.startswith(("/clients", "/members"))
    }
    assert set(ROLE_MATRIX) == routes - older


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
@pytest.mark.parametrize(
    "case", [c for c in CASES if (c.method, c.pattern) in ROLE_MATRIX], ids=str
)
def test_the_clients_and_assignments_role_matrix(
    case: Case, role: str, seeder: Seeder, client: Client, tokens: TokenIssuer
) -> None:
    statuses = dict(
        zip(("admin", "editor", "viewer"), ROLE_MATRIX[(case.method, case.pattern)], strict=True)
    )
    org = seeder.org()
    before = _tenant_state(seeder.admin_url, org)
    response = _call(client, case, org, "", tokens.header(org, org.user(role)))
    assert response.status_code == statuses[role], response.get_data(True)
    if statuses[role] == 403:
        assert _tenant_state(seeder.admin_url, org) == before


def test_the_session_cookie_counts_only_where_a_route_allows_it(
    client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    # Only the OAuth callback accepts Clerk's `__session` cookie; everywhere else a
    # cookie alone is no credential (a cross-site request would carry it).
    org = seeder.org()
    token = tokens.token(org, org.user("admin"))
    allowed = {
        (r.method, r.pattern)
        for name in PREFIXES
        for r in function_router(name).routes
        if r.session_cookie
    }
    assert allowed == {("GET", "/oauth/callback")}
    client.set_cookie("__session", token)
    try:
        assert client.get("/auth/session").status_code == 401
        assert client.get(f"/connections?client_id={org.clients[0]}").status_code == 401
    finally:
        client.delete_cookie("__session")
