"""Row Level Security: the database itself keeps tenants apart.

Every query here runs as the app role with the caller's claims set, exactly as
a request does. Several queries forget their WHERE clause on purpose.
"""

from __future__ import annotations

import psycopg
import pytest

from shared import errors
from shared.principal import Principal
from shared.runtime import Runtime
from tests.support.seed import Org, Seeder

TENANT_TABLES = [
    "organizations",
    "members",
    "clients",
    "client_assignments",
    "connections",
    "datasets",
    "oauth_states",
    "sync_runs",
    "rate_limit_buckets",
    "audit_log",
]


@pytest.fixture
def two_orgs(seeder: Seeder, pg) -> tuple[Org, Org]:
    a, b = seeder.org(), seeder.org()
    for org in (a, b):
        conn_id = seeder.connection(org, org.clients[0])
        with psycopg.connect(pg.admin_url, autocommit=True) as c:
            c.execute(
                "insert into datasets (org_id, client_id, platform, dataset_id, location)"
                " values (%s, %s, 'sandbox', %s, 'US')",
                (org.id, org.clients[0], f"ds_{org.id}"),
            )
            c.execute(
                "insert into sync_runs (org_id, client_id, connection_id) values (%s, %s, %s)",
                (org.id, org.clients[0], conn_id),
            )
            c.execute(
                "insert into oauth_states (state_hash, org_id, user_id, client_id, platform,"
                " redirect_uri, expires_at) values (%s, %s, %s, %s, 'sandbox', 'x',"
                " now() + interval '10 minutes')",
                (org.id.encode(), org.id, org.user("admin"), org.clients[0]),
            )
            c.execute(
                "insert into audit_log (org_id, seq, actor, action, outcome, hash)"
                " values (%s, 0, 'seed', 'seed', 'ok', '')",
                (org.id,),
            )
    return a, b


def _rows(runtime: Runtime, principal: Principal, sql: str) -> list[tuple]:
    with runtime.db.transaction(principal.claims()) as conn:
        return conn.execute(sql).fetchall()


def test_every_tenant_table_has_rls_enabled_and_forced(pg) -> None:
    with psycopg.connect(pg.admin_url) as conn:
        rows = dict(
            (name, (enabled, forced))
            for name, enabled, forced in conn.execute(
                "select relname, relrowsecurity, relforcerowsecurity from pg_class"
                " where relnamespace = 'public'::regnamespace and relkind = 'r'"
            )
        )
    for table in TENANT_TABLES:
        assert rows[table] == (True, True), table


def test_the_directorys_own_tables_have_rls_enabled_and_forced(pg) -> None:
    with psycopg.connect(pg.admin_url) as conn:
        found = conn.execute(
            "select relname, relrowsecurity, relforcerowsecurity from pg_class"
            " where relname in ('directory_objects', 'directory_deliveries') order by 1"
        ).fetchall()
    assert found == [("directory_deliveries", True, True), ("directory_objects", True, True)]


def test_app_and_worker_roles_own_nothing_and_cannot_bypass(pg) -> None:
    with psycopg.connect(pg.admin_url) as conn:
        for role in ("cosma_app", "cosma_worker", "cosma_directory"):
            bypass, superuser = conn.execute(
                "select rolbypassrls, rolsuper from pg_roles where rolname = %s", (role,)
            ).fetchone()
            assert not bypass and not superuser
            owned = conn.execute(
                "select count(*) from pg_class c join pg_roles r on r.oid = c.relowner"
                " where r.rolname = %s",
                (role,),
            ).fetchone()[0]
            assert owned == 0


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_tenant_a_sees_none_of_tenant_b_without_where(
    runtime: Runtime, two_orgs: tuple[Org, Org], table: str
) -> None:
    a, b = two_orgs
    admin_a = a.principal(a.user("admin"))
    if table == "rate_limit_buckets":
        # Reachable only through app.rate_limit_take: no direct grant at all.
        with pytest.raises(errors.Forbidden):
            _rows(runtime, admin_a, f"select * from {table}")
        return
    rows = _rows(runtime, admin_a, f"select * from {table}")  # no WHERE on purpose
    text = repr(rows)
    assert b.id not in text
    for client in b.clients:
        assert client not in text
    if table not in ("audit_log",):
        assert rows, f"tenant A should see its own {table}"


def test_no_claims_sees_nothing(runtime: Runtime, two_orgs: tuple[Org, Org]) -> None:
    with runtime.db.transaction() as conn:
        for table in TENANT_TABLES:
            if table == "rate_limit_buckets":
                continue
            assert conn.execute(f"select count(*) from {table}").fetchone() == (0,), table


def test_cross_tenant_insert_fails_on_with_check(
    runtime: Runtime, two_orgs: tuple[Org, Org]
) -> None:
    a, b = two_orgs
    admin_a = a.principal(a.user("admin"))
    with pytest.raises(errors.Forbidden):
        _rows(
            runtime,
            admin_a,
            f"insert into clients (org_id, name) values ('{b.id}', 'intruder') returning id",
        )
    with pytest.raises(errors.Forbidden):
        _rows(
            runtime,
            admin_a,
            "insert into connections (org_id, client_id, platform, created_by)"
            f" values ('{b.id}', '{b.clients[0]}', 'sandbox', 'x') returning id",
        )


def test_cross_tenant_update_and_delete_touch_nothing(
    runtime: Runtime, two_orgs: tuple[Org, Org], pg
) -> None:
    a, b = two_orgs
    admin_a = a.principal(a.user("admin"))
    # Client names are unique per organization: each gets its own.
    renamed = "update clients set name = 'pwned ' || id returning org_id"
    assert _rows(runtime, admin_a, renamed) == [
        (a.id,),
        (a.id,),
    ]
    assert (
        _rows(runtime, admin_a, f"delete from connections where org_id = '{b.id}' returning id")
        == []
    )
    with psycopg.connect(pg.admin_url) as conn:
        names = conn.execute("select name from clients where org_id = %s", (b.id,)).fetchall()
        assert names and not any(name.startswith("pwned") for (name,) in names)
        assert conn.execute(
            "select count(*) from connections where org_id = %s", (b.id,)
        ).fetchone() == (1,)


def test_moving_a_row_to_another_tenant_fails(runtime: Runtime, two_orgs: tuple[Org, Org]) -> None:
    a, b = two_orgs
    admin_a = a.principal(a.user("admin"))
    with pytest.raises(errors.Forbidden):
        _rows(runtime, admin_a, f"update connections set org_id = '{b.id}' returning id")


def test_forged_claims_for_a_foreign_org_give_nothing(
    runtime: Runtime, two_orgs: tuple[Org, Org]
) -> None:
    # A user of A claiming organization B: membership rows decide, so nothing is visible.
    a, b = two_orgs
    forged = Principal(user_id=a.user("admin"), org_id=b.id, role="admin")
    assert _rows(runtime, forged, "select * from clients") == []
    assert _rows(runtime, forged, "select * from connections") == []


def test_editor_and_viewer_see_only_assigned_clients(
    runtime: Runtime, two_orgs: tuple[Org, Org]
) -> None:
    a, _ = two_orgs
    for role in ("editor", "viewer"):
        p = a.principal(a.user(role))
        assert _rows(runtime, p, "select id::text from clients") == [(a.clients[0],)]
    admin = a.principal(a.user("admin"))
    assert sorted(r[0] for r in _rows(runtime, admin, "select id::text from clients")) == sorted(
        a.clients
    )


def test_viewer_write_fails_in_the_database(runtime: Runtime, two_orgs: tuple[Org, Org]) -> None:
    a, _ = two_orgs
    viewer = a.principal(a.user("viewer"))
    with pytest.raises(errors.Forbidden):
        _rows(
            runtime,
            viewer,
            "insert into connections (org_id, client_id, platform, created_by)"
            f" values ('{a.id}', '{a.clients[0]}', 'sandbox', 'v') returning id",
        )
    # Updates and deletes by a viewer match no row: the write policy hides them.
    assert _rows(runtime, viewer, "update connections set status = 'error' returning id") == []
    assert _rows(runtime, viewer, "delete from datasets returning dataset_id") == []


def test_editor_writes_only_assigned_clients(runtime: Runtime, two_orgs: tuple[Org, Org]) -> None:
    a, _ = two_orgs
    editor = a.principal(a.user("editor"))
    ok = _rows(
        runtime,
        editor,
        "insert into connections (org_id, client_id, platform, created_by)"
        f" values ('{a.id}', '{a.clients[0]}', 'sandbox', 'e') returning id",
    )
    assert len(ok) == 1
    with pytest.raises(errors.Forbidden):
        _rows(
            runtime,
            editor,
            "insert into connections (org_id, client_id, platform, created_by)"
            f" values ('{a.id}', '{a.clients[1]}', 'sandbox', 'e') returning id",
        )
    with pytest.raises(errors.Forbidden):
        _rows(
            runtime,
            editor,
            f"insert into clients (org_id, name) values ('{a.id}', 'x') returning id",
        )


@pytest.mark.parametrize(
    "statement",
    [
        "alter table clients disable row level security",
        "alter table clients no force row level security",
        "drop policy clients_read on clients",
        "alter table audit_log disable trigger audit_log_no_update",
    ],
)
def test_app_role_cannot_weaken_rls(
    runtime: Runtime, two_orgs: tuple[Org, Org], statement: str
) -> None:
    a, _ = two_orgs
    with (
        pytest.raises(errors.Forbidden),
        runtime.db.transaction(a.principal(a.user("admin")).claims()) as conn,
    ):
        conn.execute(statement)


def test_policy_columns_are_indexed(pg) -> None:
    wanted = {
        "clients": "org_id",
        "members": "org_id",
        "client_assignments": "org_id",
        "connections": "org_id",
        "datasets": "org_id",
        "oauth_states": "org_id",
        "sync_runs": "org_id",
        "audit_log": "org_id",
    }
    with psycopg.connect(pg.admin_url) as conn:
        for table, column in wanted.items():
            leading = conn.execute(
                "select a.attname from pg_index i join pg_class c on c.oid = i.indrelid"
                " join pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]"
                " where c.relname = %s",
                (table,),
            ).fetchall()
            assert (column,) in leading, table


# ---------------------------------------------------------------- the directory role


def _directory(runtime: Runtime, org_id: str, sql: str) -> list[tuple]:
    claims = {"sub": "clerk", "o": {"id": org_id}}
    with runtime.directory_db.transaction(claims) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize(
    "table", ["organizations", "members", "clients", "connections", "datasets"]
)
def test_the_directory_role_sees_one_organization_at_a_time(
    runtime: Runtime, two_orgs: tuple[Org, Org], table: str
) -> None:
    a, _ = two_orgs
    column = "id" if table == "organizations" else "org_id"
    seen = {r[0] for r in _directory(runtime, a.id, f"select {column} from {table}")}
    assert seen == {a.id}
    assert _directory(runtime, "", f"select {column} from {table}") == []


def test_the_directory_role_writes_only_the_events_organization(
    runtime: Runtime, two_orgs: tuple[Org, Org], pg
) -> None:
    a, b = two_orgs
    assert (
        _directory(
            runtime, a.id, f"update members set role = 'admin' where org_id = '{b.id}' returning 1"
        )
        == []
    )
    assert (
        _directory(runtime, a.id, f"delete from clients where org_id = '{b.id}' returning 1") == []
    )
    for statement in (
        f"insert into members (org_id, user_id, role) values ('{b.id}', 'intruder', 'admin')",
        # Its records are Clerk's, in the event's organization only.
        "insert into audit_log (org_id, seq, actor, action, outcome, hash)"
        f" values ('{b.id}', 0, 'clerk', 'x', 'ok', '')",
        "insert into audit_log (org_id, seq, actor, action, outcome, hash)"
        f" values ('{a.id}', 0, 'someone', 'x', 'ok', '')",
        "insert into oauth_states (state_hash, org_id, user_id, client_id, platform, redirect_uri,"
        f" expires_at) values ('x', '{a.id}', 'u', '{a.clients[0]}', 'sandbox', 'x', now())",
        # Tables it has no business in.
        "select id from sync_runs",
        "select key from rate_limit_buckets",
        "select id from audit_log",
    ):
        with pytest.raises(errors.Forbidden):
            _directory(runtime, a.id, statement)
    with psycopg.connect(pg.admin_url) as conn:
        assert conn.execute(
            "select count(*) from members where org_id = %s and user_id = 'intruder'", (b.id,)
        ).fetchone() == (0,)


def test_the_app_role_no_longer_writes_members_or_organizations(
    runtime: Runtime, two_orgs: tuple[Org, Org]
) -> None:
    a, _ = two_orgs
    admin = a.principal(a.user("admin"))
    for statement in (
        f"insert into members (org_id, user_id, role) values ('{a.id}', 'new_admin', 'admin')",
        f"update members set role = 'admin' where org_id = '{a.id}'",
        f"delete from members where org_id = '{a.id}'",
        f"update organizations set location = 'EU' where id = '{a.id}'",
        f"insert into organizations (id, name) values ('{a.id}_2', 'x')",
    ):
        with pytest.raises(errors.Forbidden):
            _rows(runtime, admin, statement)
