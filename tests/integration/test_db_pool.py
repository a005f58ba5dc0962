"""The pool's liveness check: skipped right after a commit, kept for idle connections.

A connection that committed within `shared.db.FRESH_S` is handed out without a
ping (one round trip less per request); one idle for longer is checked first,
so a backend that died while idle (database restart, pooler idle timeout) is
replaced instead of failing the request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from cosma import localdb
from shared import db as db_module
from shared import errors
from shared.db import Database


@pytest.fixture
def database(pg: localdb.LocalDatabase) -> Iterator[Database]:
    database = Database(pg.app_url, max_size=1)
    yield database
    database.close()


def _backend(database: Database) -> int:
    with database.transaction() as conn:
        row = conn.execute("select pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def _kill(pg: localdb.LocalDatabase, pid: int) -> None:
    with psycopg.connect(pg.admin_url, autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)  # the backend is gone before the next checkout


def test_a_connection_killed_while_idle_is_replaced(
    database: Database, pg: localdb.LocalDatabase
) -> None:
    pid = _backend(database)
    _kill(pg, pid)
    time.sleep(db_module.FRESH_S + 0.1)
    assert _backend(database) != pid  # checked, discarded, reconnected: no error


def test_a_recently_used_connection_is_not_pinged(
    database: Database, pg: localdb.LocalDatabase
) -> None:
    """The trade-off, made visible: a backend killed within FRESH_S of its last
    commit fails one transaction with 503, and the pool replaces it after."""
    pid = _backend(database)
    _kill(pg, pid)
    with pytest.raises(errors.Unavailable):
        _backend(database)
    assert _backend(database) != pid
