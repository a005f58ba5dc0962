"""Ordered plain-SQL migrations, applied once each and recorded.

The runner connects with an administrative URL, makes sure the four roles
exist, then applies each pending file in its own transaction as `cosma_owner`,
so every object is owned by a role that is used for nothing else. A checksum
per file refuses a migration that was edited after it ran.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql

log = logging.getLogger("cosma.migrate")

OWNER, APP, WORKER = "cosma_owner", "cosma_app", "cosma_worker"
# Applies Clerk's directory (organizations, members) and nothing else.
DIRECTORY = "cosma_directory"


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    folder = resources.files("shared") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f.name.removesuffix(".sql"), f.read_text()) for f in files]


def ensure_roles(conn: psycopg.Connection, passwords: dict[str, str] | None = None) -> None:
    """Create the roles if missing. Only the owner may create objects."""
    passwords = passwords or {}
    for role, login in ((OWNER, False), (APP, True), (WORKER, True), (DIRECTORY, True)):
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
        options = sql.SQL("LOGIN" if login else "NOLOGIN")
        if not exists:
            conn.execute(
                sql.SQL("create role {} {} nosuperuser nocreatedb nocreaterole nobypassrls").format(
                    sql.Identifier(role), options
                )
            )
        if role in passwords:
            conn.execute(
                sql.SQL("alter role {} password {}").format(
                    sql.Identifier(role), sql.Literal(passwords[role])
                )
            )
    me = conn.execute("select current_user").fetchone()
    if me is None:  # not an assert: python -O must not skip the check
        raise RuntimeError("no current_user")
    conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(OWNER), sql.Identifier(me[0])))
    dbname = conn.info.dbname
    conn.execute(
        sql.SQL("grant create, connect on database {} to {}").format(
            sql.Identifier(dbname), sql.Identifier(OWNER)
        )
    )
    conn.execute(
        sql.SQL("grant connect on database {} to {}, {}, {}").format(
            sql.Identifier(dbname),
            sql.Identifier(APP),
            sql.Identifier(WORKER),
            sql.Identifier(DIRECTORY),
        )
    )
    conn.execute(
        sql.SQL("grant usage, create on schema public to {}").format(sql.Identifier(OWNER))
    )
    conn.execute(
        sql.SQL("grant usage on schema public to {}, {}, {}").format(
            sql.Identifier(APP), sql.Identifier(WORKER), sql.Identifier(DIRECTORY)
        )
    )
    # Nobody but the owner creates objects in public.
    conn.execute("revoke create on schema public from public")


def apply(admin_url: str, passwords: dict[str, str] | None = None) -> list[str]:
    """Apply pending migrations; returns the versions applied now."""
    applied_now: list[str] = []
    with psycopg.connect(admin_url, autocommit=True, prepare_threshold=None) as conn:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtextextended('cosma.migrate', 0))")
            ensure_roles(conn, passwords)
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(OWNER)))
            conn.execute(
                "create table if not exists public.schema_migrations ("
                " version text primary key, checksum text not null,"
                " applied_at timestamptz not null default now())"
            )
        done: dict[str, str] = dict(
            conn.execute("select version, checksum from public.schema_migrations").fetchall()
        )
        for migration in migrations():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.version} changed after it was applied"
                    )
                continue
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(hashtextextended('cosma.migrate', 0))")
                again = conn.execute(
                    "select 1 from public.schema_migrations where version = %s",
                    (migration.version,),
                ).fetchone()
                if again:
                    continue
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(OWNER)))
                conn.execute(migration.sql.encode())  # type: ignore[call-overload]
                conn.execute(
                    "insert into public.schema_migrations (version, checksum) values (%s, %s)",
                    (migration.version, migration.checksum),
                )
            log.info("applied migration %s", migration.version)
            applied_now.append(migration.version)
    return applied_now
