"""The caller's transaction: one Postgres transaction under the caller's claims.

`tenant(db, principal)` opens it with the claims set for this transaction
only (`set_config(..., true)`, Supabase's `request.jwt.claims`), so Row Level
Security sees the caller on every statement and forgets them at commit.
Work registered with `on_commit` runs only once the transaction committed
(the request's audit counts as written only then).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from shared.db import Database
    from shared.principal import Principal


class TenantTransaction:
    def __init__(self, conn: psycopg.Connection[Any], principal: Principal) -> None:
        self.conn = conn
        self.principal = principal
        self._on_commit: list[Callable[[], None]] = []

    def execute(self, query: Any, params: Any = None) -> psycopg.Cursor[Any]:
        return self.conn.execute(query, params)

    def on_commit(self, callback: Callable[[], None]) -> None:
        self._on_commit.append(callback)


@contextmanager
def tenant(db: Database, principal: Principal) -> Iterator[TenantTransaction]:
    with db.transaction(principal.claims()) as conn:
        tx = TenantTransaction(conn, principal)
        yield tx
    for callback in tx._on_commit:
        callback()
