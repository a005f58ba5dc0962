"""Impersonation in the audit trail: a request made by support staff acting as a
user (Clerk's `act` claim) leaves a record naming both, in the hash chain."""

from __future__ import annotations

import psycopg
from werkzeug.test import Client

from shared import audit
from shared.runtime import Runtime
from shared.tenancy import tenant
from tests.support.identity import TokenIssuer
from tests.support.seed import Seeder

SUPPORT = "user_2support"
ACT = {"sub": SUPPORT, "iss": "https://dashboard.clerk.com", "sid": "sess_2support"}


def test_an_impersonated_request_is_audited_with_both_people(
    client: Client, seeder: Seeder, tokens: TokenIssuer, pg
) -> None:
    org = seeder.org()
    viewer = org.user("viewer")
    response = client.get("/auth/session", headers=tokens.header(org, viewer, act=ACT))
    assert response.status_code == 200, response.get_data(as_text=True)
    # The session is the impersonated user's, with that user's rights ...
    body = response.get_json()
    assert (body["user_id"], body["role"], body["impersonator"]) == (viewer, "viewer", SUPPORT)
    # ... and the record names who acted for whom.
    plain = client.get("/auth/session", headers=tokens.header(org, viewer))
    assert plain.status_code == 200 and "impersonator" not in plain.get_json()
    with psycopg.connect(pg.admin_url) as conn:
        rows = conn.execute(
            "select actor, impersonator, action from audit_log where org_id = %s order by seq",
            (org.id,),
        ).fetchall()
        assert rows == [(viewer, SUPPORT, "auth.session"), (viewer, "", "auth.session")]
        # The impersonator is in the chain: the chain verifies, and changing it breaks it.
        assert audit.verify(conn, org.id) == []
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("alter table audit_log disable trigger audit_log_no_update")
            conn.execute(
                "update audit_log set impersonator = '' where org_id = %s and seq = 1", (org.id,)
            )
            conn.execute("alter table audit_log enable trigger audit_log_no_update")
        broken = audit.verify(conn, org.id)
    assert [(b.seq, b.reason) for b in broken] == [(1, "hash mismatch")]


def test_the_export_names_the_impersonator(
    client: Client, seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    admin = org.user("admin")
    for act in (ACT, None):
        extra = {"act": act} if act else {}
        assert (
            client.get("/auth/session", headers=tokens.header(org, admin, **extra)).status_code
            == 200
        )
    records = client.get("/audit", headers=tokens.header(org, admin)).get_json()["records"]
    assert [(r["actor"], r["impersonator"]) for r in records[:1]] == [(admin, SUPPORT)]
    assert records[1]["impersonator"] is None


def test_a_writer_in_the_principals_transaction_records_the_impersonator(
    runtime: Runtime, seeder: Seeder, pg
) -> None:
    """What every audit writer must do: write in a transaction whose claims are
    `principal.claims()`; the database takes the impersonator from there."""
    from dataclasses import replace

    org = seeder.org()
    principal = replace(org.principal(org.user("editor")), impersonator=SUPPORT)
    with tenant(runtime.db, principal) as tx:
        audit.RequestAudit(lambda: runtime.db, action="test.write", request_id="req-1").record(
            tx, resource="/x"
        )
    audit.RequestAudit(lambda: runtime.db, action="test.once", request_id="req-2").record_alone(
        principal, resource="/y"
    )
    with psycopg.connect(pg.admin_url) as conn:
        rows = conn.execute(
            "select action, impersonator from audit_log where org_id = %s order by seq", (org.id,)
        ).fetchall()
        assert rows == [("test.write", SUPPORT), ("test.once", SUPPORT)]
        assert audit.verify(conn, org.id) == []
