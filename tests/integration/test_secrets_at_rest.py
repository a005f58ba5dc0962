"""After tokens are stored through the cipher, no plaintext token byte sequence
exists anywhere in Postgres: every column of every table of the public schema,
text as text and bytea as raw bytes."""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

from cosma import localdb
from shared.runtime import Runtime
from shared.tenancy import tenant
from tests.support.seed import Seeder


def scan(admin_url: str, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every column holding a needle, as the superuser."""
    found: list[tuple[str, str, str]] = []
    with psycopg.connect(admin_url) as conn:
        columns = conn.execute(
            "select c.table_name, c.column_name, c.data_type from information_schema.columns c"
            " join information_schema.tables t"
            "   on t.table_schema = c.table_schema and t.table_name = c.table_name"
            " where c.table_schema = 'public' and t.table_type = 'BASE TABLE'"
            " order by 1, 2"
        ).fetchall()
        assert len({t for t, _, _ in columns}) >= 10  # the tenancy tables, at least
        for table, column, data_type in columns:
            ident = sql.Identifier("public", table)
            col = sql.Identifier(column)
            for needle in needles:
                if data_type == "bytea":
                    query = sql.SQL("select 1 from {} where position(%s::bytea in {}) > 0 limit 1")
                    params: tuple[object, ...] = (needle.encode(),)
                else:
                    query = sql.SQL("select 1 from {} where strpos({}::text, %s) > 0 limit 1")
                    params = (needle,)
                if conn.execute(query.format(ident, col), params).fetchone():
                    found.append((table, column, needle))
    return found


def test_no_plaintext_token_anywhere_in_postgres(
    pg: localdb.LocalDatabase, runtime: Runtime, seeder: Seeder
) -> None:
    org = seeder.org()
    principal = org.principal(org.user("admin"))
    tokens: dict[str, str] = {}
    for client_id in org.clients:
        for _ in range(3):
            conn_id = seeder.connection(org, client_id)
            tokens[conn_id] = f"1//0g-refresh-{uuid.uuid4().hex}"
    ids = list(tokens)
    # Half written by the app role as the organization's admin, half by the worker.
    with tenant(runtime.db, principal) as tx:
        for conn_id in ids[::2]:
            sealed = runtime.cipher.encrypt(tokens[conn_id], connection_id=conn_id, org_id=org.id)
            tx.execute(
                "update connections set token_ciphertext = %s, key_version = %s where id = %s",
                (sealed.ciphertext, sealed.key_version, conn_id),
            )
    with runtime.worker_db.transaction() as conn:
        for conn_id in ids[1::2]:
            sealed = runtime.cipher.encrypt(tokens[conn_id], connection_id=conn_id, org_id=org.id)
            conn.execute(
                "update connections set token_ciphertext = %s, key_version = %s where id = %s",
                (sealed.ciphertext, sealed.key_version, conn_id),
            )

    # The tokens are stored and open again through the cipher...
    with psycopg.connect(pg.admin_url) as conn:
        rows = conn.execute(
            "select id::text, token_ciphertext from connections where id = any(%s::uuid[])",
            (ids,),
        ).fetchall()
    assert len(rows) == len(ids)
    for conn_id, ciphertext in rows:
        assert ciphertext is not None
        plain = runtime.cipher.decrypt(bytes(ciphertext), connection_id=conn_id, org_id=org.id)
        assert plain == tokens[conn_id]

    # ...and the scanner finds a planted plaintext in text and bytea columns alike.
    planted = f"1//0g-planted-{uuid.uuid4().hex}"
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute(
            "update connections set external_account_id = %s where id = %s", (planted, ids[0])
        )
        conn.execute(
            "insert into oauth_states (state_hash, org_id, user_id, client_id, platform,"
            " redirect_uri, expires_at) values (%s, %s, %s, %s, 'sandbox', 'http://x', now())",
            (b"\x00" + planted.encode() + b"\xff", org.id, org.user("admin"), org.clients[0]),
        )
    try:
        assert set(scan(pg.admin_url, [planted])) == {
            ("connections", "external_account_id", planted),
            ("oauth_states", "state_hash", planted),
        }
    finally:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            conn.execute(
                "update connections set external_account_id = null where id = %s", (ids[0],)
            )
            conn.execute("delete from oauth_states where org_id = %s", (org.id,))

    # No plaintext token anywhere, nor any 16-byte piece of one.
    needles = list(tokens.values()) + [t[-16:] for t in tokens.values()]
    assert scan(pg.admin_url, needles) == []
