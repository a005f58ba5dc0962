"""Claims travel quoted in the BEGIN batch: whatever they hold, the database
reads back exactly what was sent, and nothing else runs."""

from __future__ import annotations

import json

import psycopg
import pytest

from shared.runtime import Runtime

HOSTILE = [
    "'); drop table clients; --",
    "\\'; select 1; --",
    "back\\slash and ''doubled''",
    "line\nbreak\ttab\r",
    "unicode é 漢字 \u2028 🙂",
    "$$ dollar $$ quoting $tag$",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_claims_round_trip_exactly(runtime: Runtime, value: str, pg) -> None:
    claims = {"sub": value, "o": {"id": value}}
    with runtime.db.transaction(claims) as conn:
        row = conn.execute("select current_setting('request.jwt.claims', true)").fetchone()
    assert row is not None and json.loads(row[0]) == claims
    rows = runtime.db.read_once(claims, psycopg.sql.SQL("select app.user_id(), app.org_id()"))
    assert rows == [(value, value)]
    with psycopg.connect(pg.admin_url) as admin:
        assert admin.execute("select to_regclass('public.clients')").fetchone() == ("clients",)


def test_claims_do_not_outlive_their_transaction(runtime: Runtime) -> None:
    with runtime.db.transaction({"sub": "user_x", "o": {"id": "org_x"}}):
        pass
    with runtime.db.transaction() as conn:
        row = conn.execute("select coalesce(current_setting('request.jwt.claims', true), '')")
        assert row.fetchone() == ("",)
