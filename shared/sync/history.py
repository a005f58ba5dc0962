"""What a member sees of a connection's syncs, and "sync now".

    runs       the connection's sync runs, newest first, page by page (anyone
               who may see the client): window, rows, outcome, error class,
               duration; never a token or a provider's message
    sync now   make the connection due at once (editors and admins), so the
               next invocation of the sync function takes it. Refused with a
               429 and `Retry-After` while the connection is backing off (the
               platform asked us to wait, or it keeps failing) or within the
               cool-down after the last request or run start
               (`sync_now_cooldown_s`), and with a 409 when the connection is
               not active (reconnect it first).

Each writes the request's one audit record in its own transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.policy import access_connection
from shared.tenancy import tenant

if TYPE_CHECKING:
    from shared.audit import RequestAudit
    from shared.principal import Principal
    from shared.runtime import Runtime

_RUNS = (
    "select id::text, window_start, window_end, rows_loaded, outcome, error_class,"
    " started_at, finished_at, duration_ms from sync_runs"
    " where connection_id = %s and (started_at, id) < (%s, %s)"
    " order by started_at desc, id desc limit %s"
)
_CURSOR = "select started_at, id from sync_runs where connection_id = %s and id = %s"
_FIELDS = (
    "id",
    "window_start",
    "window_end",
    "rows",
    "outcome",
    "error_class",
    "started_at",
    "finished_at",
    "duration_ms",
)
# The newest possible key: a first page starts below it.
_TOP = (dt.datetime.max.replace(tzinfo=dt.UTC), "ffffffff-ffff-ffff-ffff-ffffffffffff")


@dataclass(frozen=True)
class RunPage:
    runs: list[dict[str, Any]]
    next_before: str | None

    def public(self) -> dict[str, Any]:
        return {"runs": self.runs, "next_before": self.next_before}


def list_runs(
    runtime: Runtime,
    principal: Principal,
    audit: RequestAudit,
    connection_id: str,
    *,
    before: str | None,
    limit: int,
) -> RunPage:
    """One page of runs, newest first; `before` is the last run id of the page before."""
    with tenant(runtime.db, principal) as tx:
        connection = access_connection(tx, principal, "read", connection_id)
        start: tuple[Any, ...] = _TOP
        if before is not None:
            found = tx.execute(_CURSOR, (connection.id, before)).fetchone()
            if found is None:
                raise errors.NotFound("No such run of this connection.")
            start = (found[0], str(found[1]))
        rows = tx.execute(_RUNS, (connection.id, *start, limit + 1)).fetchall()
        audit.record(tx, resource=f"/connections/{connection.id}/runs")
    page = [
        {
            name: (value.isoformat() if isinstance(value, dt.date) else value)
            for name, value in zip(_FIELDS, row, strict=True)
        }
        for row in rows[:limit]
    ]
    more = len(rows) > limit
    return RunPage(page, page[-1]["id"] if more else None)


@dataclass(frozen=True)
class SyncRequested:
    connection_id: str
    due_at: str

    def public(self) -> dict[str, Any]:
        return {"id": self.connection_id, "status": "due", "due_at": self.due_at}


_STATE = (
    "select c.backoff_until, c.sync_requested_at,"
    " (select max(started_at) from sync_runs r where r.connection_id = c.id), now()"
    " from connections c where c.id = %s for update"
)
_MAKE_DUE = (
    "update connections set next_sync_at = now(), sync_requested_at = now(),"
    " updated_at = now() where id = %s returning next_sync_at"
)


def request_sync(
    runtime: Runtime, principal: Principal, audit: RequestAudit, connection_id: str
) -> SyncRequested:
    """Make the connection due now, within the limits in the module docstring."""
    cooldown = dt.timedelta(seconds=runtime.settings.sync_now_cooldown_s)
    with tenant(runtime.db, principal) as tx:
        connection = access_connection(tx, principal, "sync", connection_id)
        if connection.status != "active":
            raise errors.Conflict(
                f"The connection is {connection.status.replace('_', ' ')}: reconnect it first."
            )
        state = tx.execute(_STATE, (connection.id,)).fetchone()
        if state is None:  # deleted since it was resolved, in this same transaction
            raise errors.NotFound("No such connection.")
        backoff_until, requested_at, last_started, now = state
        waits = [backoff_until - now] if backoff_until is not None else []
        waits += [t + cooldown - now for t in (requested_at, last_started) if t is not None]
        wait = max(waits, default=dt.timedelta(0))
        if wait > dt.timedelta(0):
            raise errors.TooManyRequests(retry_after=math.ceil(wait.total_seconds()))
        row = tx.execute(_MAKE_DUE, (connection.id,)).fetchone()
        audit.record(tx, resource=f"/connections/{connection.id}/sync", detail="sync_now")
    due = row[0].isoformat() if row is not None else ""
    return SyncRequested(connection.id, due)
