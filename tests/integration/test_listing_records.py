"""The listings read and write their record in one statement (`RequestAudit.read_recorded`):
exactly one record per request whatever the answer, the right outcome and detail,
and no answer without it."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.support.seed import Org, Seeder

LISTINGS = {
    "connections": "/connections?client_id={}",
    "datasets": "/datasets?client_id={}",
}


def _records(pg, request_id: str) -> list[tuple[str, str, str, str]]:
    with psycopg.connect(pg.admin_url) as conn:
        return conn.execute(
            "select org_id, resource, outcome, detail from audit_log where request_id = %s",
            (request_id,),
        ).fetchall()


def _get(client, tokens, org: Org, user: str, path: str) -> tuple[int, str]:
    request_id = f"list-{uuid.uuid4().hex}"
    headers = {**tokens.header(org, user), "X-Request-Id": request_id}
    return client.get(path, headers=headers).status_code, request_id


@pytest.mark.parametrize("route", sorted(LISTINGS))
def test_a_listing_answered_has_one_ok_record(route, client, tokens, seeder: Seeder, pg) -> None:
    org = seeder.org()
    path = LISTINGS[route].format(org.clients[0])
    for role in ("admin", "viewer"):
        status, request_id = _get(client, tokens, org, org.user(role), path)
        assert status == 200
        assert _records(pg, request_id) == [(org.id, path, "ok", "")]


@pytest.mark.parametrize("route", sorted(LISTINGS))
@pytest.mark.parametrize("whose", ["another organization's", "unassigned", "missing"])
def test_a_listing_refused_has_one_denied_record_and_no_ok(
    route, whose, client, tokens, seeder: Seeder, pg
) -> None:
    org, other = seeder.org(), seeder.org()
    user = org.user("viewer")
    target = {
        "another organization's": other.clients[0],
        "unassigned": org.clients[1],  # viewers are assigned the first client only
        "missing": str(uuid.uuid4()),
    }[whose]
    status, request_id = _get(client, tokens, org, user, LISTINGS[route].format(target))
    assert status == 404
    records = _records(pg, request_id)
    assert [(o, outcome) for o, _, outcome, _ in records] == [(org.id, "denied")]


def test_the_clients_listing_records_the_count_it_answered(
    client, tokens, seeder: Seeder, pg
) -> None:
    org = seeder.org(clients=3)
    for role, seen in (("admin", 3), ("viewer", 1)):
        request_id = f"list-{uuid.uuid4().hex}"
        headers = {**tokens.header(org, org.user(role)), "X-Request-Id": request_id}
        response = client.get("/clients", headers=headers)
        assert response.status_code == 200
        assert len(response.get_json()["clients"]) == seen
        assert _records(pg, request_id) == [(org.id, "/clients", "ok", f"clients={seen}")]


def test_the_clients_listing_of_no_client_is_recorded_once(
    client, tokens, seeder: Seeder, pg
) -> None:
    org = seeder.org(clients=0)
    status, request_id = _get(client, tokens, org, org.user("admin"), "/clients")
    assert status == 200
    assert _records(pg, request_id) == [(org.id, "/clients", "ok", "clients=0")]


@pytest.mark.parametrize("route", [*sorted(LISTINGS), "clients"])
def test_no_record_no_listing(route, client, tokens, seeder: Seeder, pg) -> None:
    org = seeder.org()
    path = LISTINGS[route].format(org.clients[0]) if route in LISTINGS else "/clients"
    headers = tokens.header(org, org.user("admin"))
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute("revoke insert on audit_log from cosma_app")
    try:
        response = client.get(path, headers=headers)
    finally:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            conn.execute("grant insert on audit_log to cosma_app")
    # The insert refused (a privilege withdrawn): the server's fault, and the
    # read's rows never leave.
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert org.clients[0] not in response.get_data(as_text=True)
