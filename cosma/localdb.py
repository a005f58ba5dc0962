"""The local metadata database: an embedded Postgres, or one given by URL.

`make run` and the tests call `prepare`: it starts Postgres 16 from the
`pgserver` wheel in a data directory (reused on restart) unless an
administrative URL is given, creates the project database, applies the
migrations, and returns the URLs of the app, worker and directory roles.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from shared import migrate


@dataclass
class LocalDatabase:
    admin_url: str
    app_url: str
    worker_url: str
    stop: Callable[[], None] = field(default=lambda: None)
    directory_url: str = ""


def start_embedded(datadir: Path) -> tuple[str, Callable[[], None]]:
    import logging
    import warnings

    # pgserver asks platformdirs for a runtime folder it does not need here; on a
    # machine without XDG_RUNTIME_DIR that warns on every command.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    # pgserver logs every pg_ctl call at INFO; keep the console for what matters.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    datadir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(datadir, cleanup_mode="stop")  # type: ignore[attr-defined]
    return server.get_uri(), server.cleanup


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password)}@{host}"))


def create_database(admin_url: str, dbname: str, *, fresh: bool = False) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if fresh:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))


def prepare(
    *, admin_url: str | None, datadir: Path, dbname: str = "cosma", fresh: bool = False
) -> LocalDatabase:
    stop: Callable[[], None] = lambda: None  # noqa: E731
    if not admin_url:
        admin_url, stop = start_embedded(datadir)
    create_database(admin_url, dbname, fresh=fresh)
    db_admin = with_database(admin_url, dbname)
    # Fresh passwords each start: the roles log in the same way over a socket
    # with trust (embedded) or over TCP with password auth (a given server).
    passwords = {
        role: secrets.token_urlsafe(24) for role in (migrate.APP, migrate.WORKER, migrate.DIRECTORY)
    }
    migrate.apply(db_admin, passwords)
    return LocalDatabase(
        admin_url=db_admin,
        app_url=with_user(db_admin, migrate.APP, passwords[migrate.APP]),
        worker_url=with_user(db_admin, migrate.WORKER, passwords[migrate.WORKER]),
        stop=stop,
        directory_url=with_user(db_admin, migrate.DIRECTORY, passwords[migrate.DIRECTORY]),
    )
