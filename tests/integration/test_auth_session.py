"""`GET /auth/session` end to end: a Clerk-shaped token in, our principal out."""

from __future__ import annotations

import json

import psycopg
from werkzeug.test import Client

from tests.support.identity import TokenIssuer
from tests.support.seed import Seeder


def test_session_returns_the_principal_from_our_tables(
    client: Client, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    editor = org.user("editor")
    # The token claims admin; our members table says editor, and wins.
    token = tokens.mint(editor, org.id, "admin")
    response = client.get("/auth/session", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body == {
        "user_id": editor,
        "org_id": org.id,
        "role": "editor",
        "client_ids": [org.clients[0]],
    }
    assert token not in response.get_data(as_text=True)


def test_session_for_each_role(client: Client, seeder: Seeder, tokens: TokenIssuer) -> None:
    org = seeder.org()
    for role in ("admin", "editor", "viewer"):
        principal = org.principal(org.user(role))
        response = client.get("/auth/session", headers=tokens.header(principal))
        assert response.status_code == 200
        assert response.get_json()["role"] == role
        expected = [] if role == "admin" else [org.clients[0]]
        assert response.get_json()["client_ids"] == expected


def test_session_writes_one_audit_record(
    client: Client, seeder: Seeder, tokens: TokenIssuer, pg
) -> None:
    org = seeder.org()
    principal = org.principal(org.user("viewer"))
    assert client.get("/auth/session", headers=tokens.header(principal)).status_code == 200
    with psycopg.connect(pg.admin_url) as conn:
        rows = conn.execute(
            "select actor, action, outcome from audit_log where org_id = %s", (org.id,)
        ).fetchall()
    assert rows == [(principal.user_id, "auth.session", "ok")]


def test_no_token_is_401_with_the_fixed_message(client: Client) -> None:
    response = client.get("/auth/session")
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert json.loads(response.get_data())["detail"] == "The request could not be authenticated."
