"""A connection's sync history and "sync now", through the served routes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from werkzeug.test import Client

from tests.support.identity import TokenIssuer
from tests.support.seed import Org, Seeder


def admin_sql(seeder: Seeder, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with psycopg.connect(seeder.admin_url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def seed_runs(seeder: Seeder, org: Org, client_id: str, conn_id: str, n: int) -> list[str]:
    """`n` finished runs, an hour apart, the newest first in the returned ids."""
    ids = []
    now = dt.datetime.now(dt.UTC)
    for i in range(n):
        started = now - dt.timedelta(hours=n - i)
        [(run_id,)] = admin_sql(
            seeder,
            "insert into sync_runs (org_id, client_id, connection_id, window_start, window_end,"
            " rows_loaded, started_at, finished_at, duration_ms, outcome, error_class)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning id::text",
            (
                org.id,
                client_id,
                conn_id,
                dt.date(2026, 1, 1),
                dt.date(2026, 1, 3),
                100 + i,
                started,
                started + dt.timedelta(seconds=4),
                4000,
                "failed" if i == n - 1 else "ok",
                "provider_unavailable" if i == n - 1 else None,
            ),
        )
        ids.append(run_id)
    return ids[::-1]


def test_runs_are_listed_newest_first_page_by_page(
    client: Client, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    conn_id = seeder.connection(org, org.clients[0])
    newest_first = seed_runs(seeder, org, org.clients[0], conn_id, 5)
    viewer = tokens.header(org.principal(org.user("viewer")))  # assigned to client 0

    first = client.get(f"/connections/{conn_id}/runs?limit=2", headers=viewer)
    assert first.status_code == 200, first.get_data(as_text=True)
    body = first.get_json()
    assert [r["id"] for r in body["runs"]] == newest_first[:2]
    latest = body["runs"][0]
    assert (latest["outcome"], latest["error_class"], latest["rows"]) == (
        "failed",
        "provider_unavailable",
        104,
    )
    assert (latest["window_start"], latest["window_end"]) == ("2026-01-01", "2026-01-03")
    assert latest["duration_ms"] == 4000

    seen = list(body["runs"])
    while body["next_before"]:
        page = client.get(
            f"/connections/{conn_id}/runs?limit=2&before={body['next_before']}", headers=viewer
        )
        body = page.get_json()
        seen.extend(body["runs"])
    assert [r["id"] for r in seen] == newest_first


def test_a_cursor_of_another_connection_is_not_found(
    client: Client, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    mine = seeder.connection(org, org.clients[0])
    other = seeder.connection(org, org.clients[0])
    [foreign_run] = seed_runs(seeder, org, org.clients[0], other, 1)
    admin = tokens.header(org.principal(org.user("admin")))
    response = client.get(f"/connections/{mine}/runs?before={foreign_run}", headers=admin)
    assert response.status_code == 404


def test_sync_now_makes_the_connection_due_once_per_cooldown(
    client: Client, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    conn_id = seeder.connection(org, org.clients[0])
    admin_sql(
        seeder,
        "update connections set next_sync_at = now() + interval '1 day' where id = %s",
        (conn_id,),
    )
    editor = tokens.header(org.principal(org.user("editor")))
    response = client.post(f"/connections/{conn_id}/sync", headers=editor)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["status"] == "due"
    [(due,)] = admin_sql(
        seeder, "select next_sync_at <= now() from connections where id = %s", (conn_id,)
    )
    assert due is True

    again = client.post(f"/connections/{conn_id}/sync", headers=editor)
    assert again.status_code == 429
    assert 0 < int(again.headers["Retry-After"]) <= 900


def test_sync_now_waits_for_a_backoff_and_refuses_a_dead_connection(
    client: Client, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    admin = tokens.header(org.principal(org.user("admin")))
    backing_off = seeder.connection(org, org.clients[0])
    admin_sql(
        seeder,
        "update connections set backoff_until = now() + interval '2 hours' where id = %s",
        (backing_off,),
    )
    response = client.post(f"/connections/{backing_off}/sync", headers=admin)
    assert response.status_code == 429
    assert 3500 < int(response.headers["Retry-After"]) <= 7200

    dead = seeder.connection(org, org.clients[0])
    admin_sql(seeder, "update connections set status = 'reauth_required' where id = %s", (dead,))
    refused = client.post(f"/connections/{dead}/sync", headers=admin)
    assert refused.status_code == 409
    assert "reconnect" in refused.get_json()["detail"]


def test_viewers_may_read_runs_but_not_ask_for_a_sync(
    client: Client, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    conn_id = seeder.connection(org, org.clients[0])
    headers = tokens.header(org.principal(org.user("viewer")))
    assert client.get(f"/connections/{conn_id}/runs", headers=headers).status_code == 200
    assert client.post(f"/connections/{conn_id}/sync", headers=headers).status_code == 403
