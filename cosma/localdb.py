"""The local metadata database: an embedded Postgres, or one given by URL.

`make run` and the tests call `prepare`: it starts Postgres 16 from the
`pgserver` wheel in a data directory (reused on restart) unless an
administrative URL is given, creates the project database, applies the
migrations, and returns the URLs of the app, worker and directory roles.

The embedded server is shared by every `cosma` process on that data directory
(`serve`, and `dev-token` or `sync` beside it); pgserver counts them in
`<datadir>/.handle_pids.json` and the last one to stop stops Postgres. That
list must survive interruptions, which pgserver's own handling does not:

- it is rewritten atomically (a kill mid-write once left it empty, and
  pgserver then failed on it at every start and exit);
- a damaged list is read as empty, and the pids of processes that died
  without stopping (a SIGKILL) are dropped, so they never keep Postgres alive;
- a Postgres left running on the data directory is adopted by the next start
  (once it is ready, if it was still starting or stopping), and stopped by that
  process's stop;
- a stop cannot be cut short by Ctrl-C or SIGTERM (they wait until it ends).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
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


HANDLE_LIST = ".handle_pids.json"


def live_handles(path: Path) -> list[int]:
    """The pids in pgserver's handle list that are still running; a missing,
    empty or damaged list reads as no handle at all."""
    import psutil

    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, int) and v > 0 and psutil.pid_exists(v)]


def write_handles(path: Path, pids: list[int]) -> None:
    """Replace the handle list in one rename: a reader sees the old or the new list."""
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(pids))
        os.chmod(partial, 0o644)  # pgserver's own file mode: its postgres user reads it
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _handle_list(path: Path) -> Any:
    from pgserver.utils import DiskList

    class HandleList(DiskList):  # type: ignore[misc]
        """pgserver's handle list, read tolerantly and written atomically."""

        def get(self) -> list[int]:
            return live_handles(self.path)

        def put(self, values: list[int]) -> None:
            write_handles(self.path, values)

    return HandleList(path)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends (then arrive as usual)."""
    deferred = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, deferred)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


SETTLE_TIMEOUT_S = 60.0


def _settle(datadir: Path, timeout: float = SETTLE_TIMEOUT_S) -> None:
    """Wait while a Postgres on `datadir` is starting or stopping (one whose
    process was killed in the middle goes on): pgserver adopts only a ready
    server and fails on any other."""
    import time

    import psutil

    deadline = time.monotonic() + timeout
    pidfile = datadir / "postmaster.pid"
    while time.monotonic() < deadline:
        try:
            lines = pidfile.read_text().splitlines()
        except FileNotFoundError:
            return  # nothing running, or a stop that finished
        # postmaster.pid: pid first, status last once the server has written it all.
        pid = int(lines[0]) if lines and lines[0].strip().isdigit() else 0
        status = lines[7].strip() if len(lines) >= 8 else ""
        if not pid or not psutil.pid_exists(pid) or status == "ready":
            return  # stale (pg_ctl starts anew) or ready (adopted)
        time.sleep(0.1)


def start_embedded(datadir: Path) -> tuple[str, Callable[[], None]]:
    import logging
    import warnings

    # pgserver asks platformdirs for a runtime folder it does not need here; on a
    # machine without XDG_RUNTIME_DIR that warns on every command.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver
    from pgserver.postgres_server import PostgresServer

    # pgserver logs every pg_ctl call at INFO; keep the console for what matters.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    datadir.mkdir(parents=True, exist_ok=True)
    handles = datadir.resolve() / HANDLE_LIST
    with _signals_deferred():
        # Under pgserver's own inter-process lock, as its reads and writes are.
        with PostgresServer._lock:
            if handles.exists():
                write_handles(handles, live_handles(handles))
            _settle(datadir)
        server = pgserver.get_server(datadir, cleanup_mode="stop")  # type: ignore[attr-defined]
        # From here on (our stop, and pgserver's own exit hook) the list is ours.
        server.global_process_id_list = _handle_list(handles)

    def stop() -> None:
        with _signals_deferred():
            server.cleanup()

    return server.get_uri(), stop


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
    try:
        create_database(admin_url, dbname, fresh=fresh)
        db_admin = with_database(admin_url, dbname)
        # Fresh passwords each start: the roles log in the same way over a socket
        # with trust (embedded) or over TCP with password auth (a given server).
        passwords = {
            migrate.APP: secrets.token_urlsafe(24),
            migrate.WORKER: secrets.token_urlsafe(24),
            migrate.DIRECTORY: secrets.token_urlsafe(24),
        }
        migrate.apply(db_admin, passwords)
    except BaseException:  # Ctrl-C during migrations too: never leave Postgres behind
        stop()
        raise
    return LocalDatabase(
        admin_url=db_admin,
        app_url=with_user(db_admin, migrate.APP, passwords[migrate.APP]),
        worker_url=with_user(db_admin, migrate.WORKER, passwords[migrate.WORKER]),
        stop=stop,
        directory_url=with_user(db_admin, migrate.DIRECTORY, passwords[migrate.DIRECTORY]),
    )
