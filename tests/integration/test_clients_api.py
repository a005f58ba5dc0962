"""Clients, members and assignments through the API: admins manage, RLS agrees."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from werkzeug.test import Client

from tests.support.identity import TokenIssuer
from tests.support.seed import Org, Seeder, new_id


def auth(tokens: TokenIssuer, org: Org, role: str) -> dict[str, str]:
    return tokens.header(org.principal(org.user(role)))


def rows(seeder: Seeder, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with psycopg.connect(seeder.admin_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def names(response: Any) -> list[str]:
    return [c["name"] for c in response.get_json()["clients"]]


def test_an_admin_creates_clients_with_names_unique_whatever_the_case(
    client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org = seeder.org(clients=0)
    admin = auth(tokens, org, "admin")
    created = client.post("/clients", json={"name": "  Acme Corp "}, headers=admin)
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert body["name"] == "Acme Corp" and body["connections"] == []
    duplicate = client.post("/clients", json={"name": "ACME corp"}, headers=admin)
    assert duplicate.status_code == 409
    assert duplicate.get_json()["detail"] == "A client with this name exists."
    assert client.post("/clients", json={"name": "Globex"}, headers=admin).status_code == 201
    assert rows(seeder, "select name from clients where org_id = %s order by name", (org.id,)) == [
        ("Acme Corp",),
        ("Globex",),
    ]


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_admins_create_or_rename(
    role: str, client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org = seeder.org()
    before = rows(seeder, "select id, name from clients where org_id = %s order by id", (org.id,))
    headers = auth(tokens, org, role)
    assert client.post("/clients", json={"name": "Mine"}, headers=headers).status_code == 403
    # Their assigned client: seen, so a refusal says no; not renamed.
    assigned = org.clients[0]
    renamed = client.patch(f"/clients/{assigned}", json={"name": "Mine"}, headers=headers)
    assert renamed.status_code == 403
    after = rows(seeder, "select id, name from clients where org_id = %s order by id", (org.id,))
    assert after == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": " "},
        {"name": "x" * 201},
        {"name": "a\x00b"},
        {"name": "tab\there"},
        {"name": "ok", "org_id": "other"},
        {},
    ],
)
def test_invalid_names_are_422_and_create_nothing(
    body: dict[str, Any], client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org = seeder.org(clients=0)
    response = client.post("/clients", json=body, headers=auth(tokens, org, "admin"))
    assert response.status_code == 422
    assert rows(seeder, "select 1 from clients where org_id = %s", (org.id,)) == []


def test_the_listing_is_what_each_role_sees_with_connections(
    client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org = seeder.org()
    first, second = org.clients
    connection = seeder.connection(org, first, "meta")
    everything = client.get("/clients", headers=auth(tokens, org, "admin")).get_json()["clients"]
    assert sorted(c["id"] for c in everything) == sorted(org.clients)
    (with_connection,) = [c for c in everything if c["id"] == first]
    assert with_connection["connections"] == [
        {"id": connection, "platform": "meta", "status": "active"}
    ]
    for role in ("editor", "viewer"):
        seen = client.get("/clients", headers=auth(tokens, org, role)).get_json()["clients"]
        assert [c["id"] for c in seen] == [first]
        assert client.get(f"/clients/{first}", headers=auth(tokens, org, role)).status_code == 200
        assert client.get(f"/clients/{second}", headers=auth(tokens, org, role)).status_code == 404


def test_rename_keeps_names_unique(client: Client, tokens: TokenIssuer, seeder: Seeder) -> None:
    org = seeder.org(clients=0)
    admin = auth(tokens, org, "admin")
    a = client.post("/clients", json={"name": "Alpha"}, headers=admin).get_json()["id"]
    client.post("/clients", json={"name": "Beta"}, headers=admin)
    assert client.patch(f"/clients/{a}", json={"name": "beta"}, headers=admin).status_code == 409
    same = client.patch(f"/clients/{a}", json={"name": "ALPHA"}, headers=admin)
    assert same.status_code == 200 and same.get_json()["name"] == "ALPHA"
    assert client.get(f"/clients/{a}", headers=admin).get_json()["name"] == "ALPHA"


def test_members_are_ids_roles_and_assignments_for_admins_only(
    client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org = seeder.org()
    listed = client.get("/members", headers=auth(tokens, org, "admin"))
    assert listed.status_code == 200
    members = {m["user_id"]: m for m in listed.get_json()["members"]}
    assert set(members) == set(org.members)
    assert members[org.user("editor")] == {
        "user_id": org.user("editor"),
        "role": "editor",
        "client_ids": [org.clients[0]],
    }
    assert all(set(m) == {"user_id", "role", "client_ids"} for m in members.values())
    for role in ("editor", "viewer"):
        assert client.get("/members", headers=auth(tokens, org, role)).status_code == 403


def test_assignments_are_idempotent_and_take_effect_at_once(
    client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org = seeder.org(assign_first=False)
    admin = auth(tokens, org, "admin")
    editor_id = org.user("editor")
    editor = auth(tokens, org, "editor")
    target = org.clients[1]
    path = f"/clients/{target}/assignments/{editor_id}"
    assert client.get("/clients", headers=editor).get_json()["clients"] == []
    assert client.get(path, headers=admin).status_code == 404
    for _ in range(2):
        response = client.put(path, headers=admin)
        assert response.status_code == 204 and response.get_data() == b""
    assert rows(
        seeder,
        "select count(*) from client_assignments where client_id = %s and user_id = %s",
        (target, editor_id),
    ) == [(1,)]
    assert client.get(path, headers=admin).get_json() == {
        "user_id": editor_id,
        "role": "editor",
        "client_id": target,
    }
    assert client.get(f"/clients/{target}/assignments", headers=admin).get_json() == {
        "assignments": [{"user_id": editor_id, "role": "editor"}]
    }
    # At once, on this instance too (its cached membership was dropped).
    assert [c["id"] for c in client.get("/clients", headers=editor).get_json()["clients"]] == [
        target
    ]
    for _ in range(2):
        assert client.delete(path, headers=admin).status_code == 204
    assert client.get("/clients", headers=editor).get_json()["clients"] == []
    assert client.get(path, headers=admin).status_code == 404


def test_only_members_can_be_assigned(client: Client, tokens: TokenIssuer, seeder: Seeder) -> None:
    org, other = seeder.org(), seeder.org()
    admin = auth(tokens, org, "admin")
    for user in (new_id("user"), other.user("editor"), "x" * 65):
        path = f"/clients/{org.clients[0]}/assignments/{user}"
        assert client.put(path, headers=admin).status_code == 404
        assert client.delete(path, headers=admin).status_code == 404
    assert rows(
        seeder, "select user_id from client_assignments where client_id = %s", (org.clients[0],)
    ) == sorted([(org.user("editor"),), (org.user("viewer"),)])


def test_an_admin_assigns_an_editor_who_then_reaches_only_that_client(
    client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org = seeder.org(clients=0, roles=("admin", "editor", "viewer"))
    admin = auth(tokens, org, "admin")
    made = [
        client.post("/clients", json={"name": name}, headers=admin).get_json()["id"]
        for name in ("Assigned", "Other")
    ]
    for client_id in made:
        provisioned = client.post(
            "/datasets", json={"client_id": client_id, "platform": "sandbox"}, headers=admin
        )
        assert provisioned.status_code == 200
    editor_id = org.user("editor")
    assert (
        client.put(f"/clients/{made[0]}/assignments/{editor_id}", headers=admin).status_code == 204
    )
    editor = auth(tokens, org, "editor")
    assert names(client.get("/clients", headers=editor)) == ["Assigned"]
    today = dt.date.today()
    spec = {
        "platforms": ["sandbox"],
        "date_from": str(today - dt.timedelta(days=7)),
        "date_to": str(today),
        "metrics": ["impressions"],
    }
    assert (
        client.post("/query", json={"client_id": made[0], **spec}, headers=editor).status_code
        == 200
    )
    assert (
        client.post("/query", json={"client_id": made[1], **spec}, headers=editor).status_code
        == 404
    )
    viewer = auth(tokens, org, "viewer")
    assert client.post("/clients", json={"name": "Viewer's"}, headers=viewer).status_code == 403
    intruder_org = seeder.org(clients=0)
    intruder = auth(tokens, intruder_org, "admin")
    assert client.get("/clients", headers=intruder).get_json() == {"clients": []}
    for client_id in made:
        assert client.get(f"/clients/{client_id}", headers=intruder).status_code == 404
        assert (
            client.put(
                f"/clients/{client_id}/assignments/{editor_id}", headers=intruder
            ).status_code
            == 404
        )
