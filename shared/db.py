"""Postgres access: pooled connections, one transaction per unit of work.

Everything here works through a transaction-mode pooler (Supabase's
Supavisor, PgBouncer): no session-level SET, no server-side prepared
statements (`prepare_threshold=None`), claims set with `set_config(..., true)`
so they vanish at commit. The pool is created on first use, not at import.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq, sql

from shared import errors

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

# A connection that committed this recently is known to work: pinging it again
# before the next transaction would add a round trip to every request. Older ones
# (a restarted database or a pooler's idle timeout leaves dead sockets) are checked.
FRESH_S = 2.0


class Database:
    def __init__(
        self, url: str, *, max_size: int = 4, name: str = "app", timeout_s: float = 10.0
    ) -> None:
        self._url = url
        self._max_size = max_size
        self._name = name
        self._timeout_s = timeout_s
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._committed_at: weakref.WeakKeyDictionary[psycopg.Connection, float] = (
            weakref.WeakKeyDictionary()
        )

    def _get_pool(self) -> ConnectionPool:
        if not self._url:  # raised on use, so routes that need no database still work
            raise errors.Unavailable("The database is not configured.")
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    from psycopg_pool import ConnectionPool

                    self._pool = ConnectionPool(
                        self._url,
                        min_size=1,
                        max_size=self._max_size,
                        kwargs={"autocommit": True, "prepare_threshold": None},
                        # A restarted database leaves dead sockets in the pool:
                        # check each one before handing it out, unless it just worked.
                        check=self._check,
                        name=f"cosma-{self._name}",
                        open=True,
                        timeout=self._timeout_s,
                    )
        return self._pool

    def connect_ahead(self) -> None:
        """Start the first connection on the pool's own thread and return at once.

        For a cold start that knows it will need the database shortly: the connection
        (backend start, authentication) proceeds while this thread does other work.
        """
        with contextlib.suppress(errors.Unavailable):  # not configured: the route says so
            self._get_pool()

    def _check(self, conn: psycopg.Connection) -> None:
        committed = self._committed_at.get(conn)
        if committed is not None and time.monotonic() - committed < FRESH_S:
            return
        from psycopg_pool import ConnectionPool

        ConnectionPool.check_connection(conn)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; database failures become errors of our tree, here."""
        pool = self._get_pool()
        from psycopg_pool import PoolTimeout  # loaded with the pool

        try:
            with pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise translate(exc) from exc
        except PoolTimeout as exc:  # no connection in time: the server is gone
            raise errors.Unavailable("The database is unavailable.") from exc

    @contextmanager
    def transaction(
        self, claims: Mapping[str, Any] | None = None
    ) -> Iterator[psycopg.Connection[Any]]:
        """One transaction; database failures become errors of our tree.

        BEGIN and the claims travel in one round trip (a simple-query batch with
        the claims quoted by psycopg), so RLS costs no extra trip per request.
        """
        with self._connection() as conn:
            conn.execute(_begin(conn, claims))
            try:
                yield conn
            except BaseException:
                if not conn.closed:
                    conn.execute("rollback")
                raise
            conn.execute("commit")
            self._committed_at[conn] = time.monotonic()

    def run_once(
        self, claims: Mapping[str, Any] | None, statement: sql.Composable | TextStatement
    ) -> None:
        """One whole transaction in one round trip: BEGIN, the claims, `statement`,
        COMMIT, sent as one simple-query batch with every value quoted.

        For short writes whose result nobody reads (the audit record of a read
        request): it saves two round trips per request on the hot path.
        """
        self._once(claims, statement)

    def read_once(
        self, claims: Mapping[str, Any] | None, statement: sql.Composable | TextStatement
    ) -> list[tuple[Any, ...]]:
        """`run_once` for one SELECT: its rows, read in the same single round trip."""
        return self._once(claims, statement)

    def _once(
        self, claims: Mapping[str, Any] | None, statement: sql.Composable | TextStatement
    ) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            try:
                batch = b"; ".join((_begin(conn, claims), statement.as_bytes(conn), b"commit"))
                cur = conn.execute(batch)
                # Results in order: BEGIN, [claims], the statement, COMMIT.
                for _ in range(1 if claims is None else 2):
                    cur.nextset()
                # The result's status, not `cur.description`: that builds a column
                # object per column, which a read of fifteen columns pays for.
                result = cur.pgresult
                returns_rows = result is not None and result.status == pq.ExecStatus.TUPLES_OK
                rows: list[tuple[Any, ...]] = cur.fetchall() if returns_rows else []
            except BaseException:
                if not conn.closed:
                    conn.execute("rollback")
                raise
            self._committed_at[conn] = time.monotonic()
            return rows


class TextStatement:
    """A statement whose values are all text, for `Database.run_once`.

    `template` has one `{}` per value. The values are quoted here (and so are
    `_begin`'s claims), since psycopg's `sql.Literal` costs more than the round
    trip's whole batch: with standard_conforming_strings on (PostgreSQL's
    default since 9.1) only a quote needs escaping inside '...', by doubling
    it. A NUL cannot be in a text value, and refused as psycopg refuses it; a
    server configured otherwise, or not speaking UTF-8, gets psycopg's own
    quoting.
    """

    __slots__ = ("template", "values")

    def __init__(self, template: str, values: tuple[str, ...]) -> None:
        self.template = template
        self.values = values

    def as_bytes(self, conn: psycopg.Connection[Any]) -> bytes:
        if not _plain_quoting(conn):
            composed = sql.SQL(self.template).format(*(sql.Literal(v) for v in self.values))
            return composed.as_bytes(conn)
        if any("\x00" in v for v in self.values):
            raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        quoted = ("'" + v.replace("'", "''") + "'" for v in self.values)
        try:
            return self.template.format(*quoted).encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: not text Postgres can store
            raise psycopg.DataError("text is not valid UTF-8") from exc


def _plain_quoting(conn: psycopg.Connection[Any]) -> bool:
    info = conn.info
    return info.parameter_status("standard_conforming_strings") == "on" and info.encoding == "utf-8"


_BEGIN_WITH_CLAIMS = "begin; select set_config('request.jwt.claims', {}, true)"


def _begin(conn: psycopg.Connection, claims: Mapping[str, Any] | None) -> bytes:
    """BEGIN, and the claims set for this transaction only, as one simple-query batch.

    The claims are quoted as `TextStatement` quotes (`json.dumps` output is
    ASCII with every control character escaped, so no NUL can reach it).
    """
    if claims is None:
        return b"begin"
    text = json.dumps(claims, separators=(",", ":"))
    return TextStatement(_BEGIN_WITH_CLAIMS, (text,)).as_bytes(conn)


def translate(exc: psycopg.Error) -> errors.CosmaError:
    """Map a database error to our tree once, here. SQL text never reaches a caller."""
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return errors.Forbidden("This action is not allowed.")
    if isinstance(exc, pg_errors.UniqueViolation):
        return errors.Conflict("The resource already exists.")
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return errors.NotFound("A referenced resource does not exist.")
    if isinstance(exc, pg_errors.CheckViolation | pg_errors.DataError):
        return errors.ValidationFailed("A value is out of range.")
    if isinstance(exc, psycopg.OperationalError | pg_errors.AdminShutdown):
        return errors.Unavailable("The database is unavailable.")
    return errors.CosmaError()
