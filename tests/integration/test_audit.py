"""The audit log: append-only for everyone, hash-chained per organization."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import audit, errors
from shared.runtime import Runtime
from shared.tenancy import tenant
from tests.support.seed import Org, Seeder


@pytest.fixture
def org(seeder: Seeder) -> Org:
    return seeder.org()


def _write(runtime: Runtime, org: Org, n: int, action: str = "test.write") -> None:
    p = org.principal(org.user("admin"))
    for i in range(n):
        request = audit.RequestAudit(lambda: runtime.db, action=action, request_id=f"req-{i:08d}")
        with tenant(runtime.db, p) as tx:
            request.record(tx, resource=f"client:{org.clients[0]}")


def test_records_chain_and_verify(runtime: Runtime, org: Org, pg) -> None:
    _write(runtime, org, 5)
    with psycopg.connect(pg.admin_url) as conn:
        rows = conn.execute(
            "select seq, prev_hash, hash from audit_log where org_id = %s order by seq", (org.id,)
        ).fetchall()
        assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
        assert rows[0][1] is None
        assert all(rows[i][1] == rows[i - 1][2] for i in range(1, 5))
        assert audit.verify(conn, org.id) == []


def test_concurrent_writers_keep_one_chain(runtime: Runtime, org: Org, pg) -> None:
    threads = [threading.Thread(target=_write, args=(runtime, org, 5)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with psycopg.connect(pg.admin_url) as conn:
        seqs = [
            r[0]
            for r in conn.execute(
                "select seq from audit_log where org_id = %s order by seq", (org.id,)
            )
        ]
        assert seqs == list(range(1, 21))
        assert audit.verify(conn, org.id) == []


@pytest.mark.parametrize("role", ["cosma_app", "cosma_worker"])
@pytest.mark.parametrize(
    "statement",
    ["update audit_log set outcome = 'ok'", "delete from audit_log", "truncate audit_log"],
)
def test_app_and_worker_cannot_touch_history(
    runtime: Runtime, org: Org, pg, role: str, statement: str
) -> None:
    _write(runtime, org, 1)
    url = pg.app_url if role == "cosma_app" else pg.worker_url
    with (
        psycopg.connect(url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


def test_even_the_owner_cannot_update_or_delete(org: Org, runtime: Runtime, pg) -> None:
    _write(runtime, org, 1)
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        for statement in ("update audit_log set outcome = 'x'", "delete from audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)


def test_app_cannot_write_for_another_org_or_actor(runtime: Runtime, seeder: Seeder) -> None:
    a, b = seeder.org(), seeder.org()
    p = a.principal(a.user("admin"))
    with pytest.raises(errors.Forbidden), runtime.db.transaction(p.claims()) as conn:
        audit.record(conn, org_id=b.id, actor=p.user_id, action="x")
    with pytest.raises(errors.Forbidden), runtime.db.transaction(p.claims()) as conn:
        audit.record(conn, org_id=a.id, actor="someone_else", action="x")


def test_verifier_names_the_first_tampered_row(runtime: Runtime, org: Org, pg) -> None:
    _write(runtime, org, 4)
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        # A superuser who disables the guard trigger can edit a row; the chain tells.
        with conn.transaction():
            conn.execute("alter table audit_log disable trigger audit_log_no_update")
            conn.execute(
                "update audit_log set outcome = 'denied' where org_id = %s and seq = 2", (org.id,)
            )
            conn.execute("alter table audit_log enable trigger audit_log_no_update")
        broken = audit.verify(conn, org.id)
    assert [(b.org_id, b.seq, b.reason) for b in broken] == [(org.id, 2, "hash mismatch")]


def test_verifier_detects_a_deleted_row(runtime: Runtime, org: Org, pg) -> None:
    _write(runtime, org, 4)
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("alter table audit_log disable trigger audit_log_no_update")
            conn.execute("delete from audit_log where org_id = %s and seq = 3", (org.id,))
            conn.execute("alter table audit_log enable trigger audit_log_no_update")
        broken = audit.verify(conn, org.id)
    assert [(b.seq, b.reason) for b in broken] == [(4, "sequence gap: expected 3")]


def test_audit_verify_command(runtime: Runtime, org: Org, pg) -> None:
    _write(runtime, org, 2)
    env = {"DATABASE_URL": pg.admin_url, "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        [sys.executable, "-m", "cosma.cli", "audit-verify", "--org", org.id],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    with psycopg.connect(pg.admin_url, autocommit=True) as conn, conn.transaction():
        conn.execute("alter table audit_log disable trigger audit_log_no_update")
        conn.execute(
            "update audit_log set actor = 'mallory' where org_id = %s and seq = 1", (org.id,)
        )
        conn.execute("alter table audit_log enable trigger audit_log_no_update")
    bad = subprocess.run(
        [sys.executable, "-m", "cosma.cli", "audit-verify", "--org", org.id],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert f"org={org.id} seq=1" in bad.stdout


def test_one_round_trip_record_refused_by_rls_leaves_nothing(
    runtime: Runtime, seeder: Seeder, pg
) -> None:
    a, b = seeder.org(), seeder.org()
    p = a.principal(a.user("admin"))
    forged = audit.record_statement(org_id=b.id, actor=p.user_id, action="x")
    for _ in range(3):  # the pooled connection is rolled back and usable again
        with pytest.raises(errors.Forbidden):
            runtime.db.run_once(p.claims(), forged)
    runtime.db.run_once(
        p.claims(), audit.record_statement(org_id=a.id, actor=p.user_id, action="y")
    )
    with psycopg.connect(pg.admin_url) as conn:
        rows = conn.execute(
            "select org_id, action from audit_log where org_id in (%s, %s)", (a.id, b.id)
        ).fetchall()
    assert rows == [(a.id, "y")]


def test_one_round_trip_record_quotes_hostile_values(runtime: Runtime, org: Org, pg) -> None:
    p = org.principal(org.user("admin"))
    hostile = "x'); delete from clients; --"
    runtime.db.run_once(
        p.claims(),
        audit.record_statement(org_id=org.id, actor=p.user_id, action="z", resource=hostile),
    )
    with psycopg.connect(pg.admin_url) as conn:
        assert conn.execute(
            "select resource from audit_log where org_id = %s", (org.id,)
        ).fetchall() == [(hostile,)]
        assert conn.execute(
            "select count(*) from clients where org_id = %s", (org.id,)
        ).fetchone() == (2,)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_one_round_trip_record_stores_any_text_exactly(
    runtime: Runtime, org: Org, pg, value: str
) -> None:
    # Our own quoting (db.TextStatement): whatever the text, Postgres stores it
    # unchanged, or refuses a NUL as psycopg would; nothing else ever runs.
    p = org.principal(org.user("admin"))
    request_id = f"prop-{uuid.uuid4().hex}"
    statement = audit.record_statement(
        org_id=org.id, actor=p.user_id, action="prop", resource=value, request_id=request_id
    )
    if "\x00" in value:
        with pytest.raises(errors.ValidationFailed):
            runtime.db.run_once(p.claims(), statement)
        return
    runtime.db.run_once(p.claims(), statement)
    with psycopg.connect(pg.admin_url) as conn:
        stored = conn.execute(
            "select resource from audit_log where request_id = %s", (request_id,)
        ).fetchall()
    assert stored == [(value,)]


def test_one_round_trip_record_refuses_a_lone_surrogate(runtime: Runtime, org: Org) -> None:
    p = org.principal(org.user("admin"))
    statement = audit.record_statement(
        org_id=org.id, actor=p.user_id, action="prop", resource="half \ud800 a pair"
    )
    with pytest.raises(errors.ValidationFailed):
        runtime.db.run_once(p.claims(), statement)


def test_no_audit_record_no_answer(client, tokens, seeder: Seeder, pg) -> None:
    # If the record cannot be written, the data does not leave: a 503, not the body.
    org = seeder.org()
    headers = tokens.header(org, org.user("admin"))
    assert client.get("/auth/session", headers=headers).status_code == 200
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute("revoke insert on audit_log from cosma_app")
    try:
        response = client.get("/auth/session", headers=headers)
    finally:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            conn.execute("grant insert on audit_log to cosma_app")
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert org.id not in response.get_data(as_text=True)
