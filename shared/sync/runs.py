"""Sync-run records: one `sync_runs` row per connection run, closed together with
the connection's schedule and one audit record, in one worker transaction.

Outcomes and what they do to the connection's schedule:

    ok, partial       next_sync_at = now + next_in_s, failures and backoff cleared,
                      last_synced_at = now (partial: some accounts refused access;
                      the health text names them)
    failed            failures + 1, backoff_until = now + backoff.delay_s(...);
                      next_sync_at stays due, so it runs again after the backoff
    reauth_required   the refresh already set the status; only the lease goes
    unfinished        (budget ran out) lease returned, still due, no failure counted;
                      recorded as outcome 'partial' with error_class 'budget'

Every write to the connection is conditioned on the run's lease owner.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared import audit
from shared.sync import backoff

if TYPE_CHECKING:
    from shared.db import Database
    from shared.sync.leases import Lease

log = logging.getLogger("cosma.sync")

ACTOR = "system:sync"
ACTION = "sync.run"

_START = """
insert into public.sync_runs (org_id, client_id, connection_id)
values (%s, %s, %s) returning id::text
"""

_FINISH_RUN = """
update public.sync_runs
   set window_start = %s, window_end = %s, rows_loaded = %s, finished_at = now(),
       duration_ms = %s, outcome = %s, error_class = %s
 where id = %s
"""

_LOCK_CONNECTION = """
select failures from public.connections where id = %s and lease_owner = %s for update
"""

_DONE = """
update public.connections
   set lease_owner = null, lease_until = null, health = %s, failures = 0, backoff_until = null,
       last_synced_at = now(), next_sync_at = now() + make_interval(secs => %s),
       updated_at = now()
 where id = %s and lease_owner = %s
"""

_FAILED = """
update public.connections
   set lease_owner = null, lease_until = null, health = %s, failures = failures + 1,
       backoff_until = now() + make_interval(secs => %s), updated_at = now()
 where id = %s and lease_owner = %s
"""

_RELEASE = """
update public.connections
   set lease_owner = null, lease_until = null, health = coalesce(%s, health),
       updated_at = now()
 where id = %s and lease_owner = %s
"""


@dataclass
class RunResult:
    """What one connection's run did; `public()` is what the trigger answers."""

    connection_id: str
    outcome: str = "running"  # ok | partial | failed | reauth_required | unfinished
    error_class: str | None = None
    rows: int = 0
    accounts: int = 0
    window_from: dt.date | None = None
    window_to: dt.date | None = None
    health: list[str] = field(default_factory=list)
    retry_after: float | None = None
    duration_ms: int = 0

    def widen(self, date_from: dt.date, date_to: dt.date) -> None:
        if self.window_from is None or date_from < self.window_from:
            self.window_from = date_from
        if self.window_to is None or date_to > self.window_to:
            self.window_to = date_to

    @property
    def recorded_outcome(self) -> str:
        return "partial" if self.outcome == "unfinished" else self.outcome

    def health_text(self) -> str | None:
        return "; ".join(self.health)[:1000] if self.health else None

    def public(self) -> dict[str, object]:
        return {
            "connection_id": self.connection_id,
            "outcome": self.recorded_outcome,
            "error_class": self.error_class,
            "rows": self.rows,
            "accounts": self.accounts,
            "window": [str(self.window_from), str(self.window_to)] if self.window_from else None,
            "duration_ms": self.duration_ms,
        }


def start(db: Database, lease: Lease) -> str:
    with db.transaction() as conn:
        row = conn.execute(_START, (lease.org_id, lease.client_id, lease.connection_id)).fetchone()
    if row is None:  # an insert ... returning always gives a row
        raise RuntimeError("sync_runs insert returned nothing")
    return str(row[0])


def finish(
    db: Database,
    lease: Lease,
    run_id: str,
    result: RunResult,
    *,
    next_in_s: float,
    rng: Callable[[], float] = random.random,
) -> bool:
    """Close the run, reschedule the connection, audit; False if the lease was lost."""
    outcome = result.recorded_outcome
    with db.transaction() as conn:
        conn.execute(
            _FINISH_RUN,
            (
                result.window_from,
                result.window_to,
                result.rows,
                result.duration_ms,
                outcome,
                result.error_class,
                run_id,
            ),
        )
        held = conn.execute(_LOCK_CONNECTION, (lease.connection_id, lease.owner)).fetchone()
        if held is not None:
            health = result.health_text()
            if result.outcome in ("ok", "partial"):
                conn.execute(_DONE, (health, next_in_s, lease.connection_id, lease.owner))
            elif result.outcome == "failed":
                wait = backoff.delay_s(int(held[0]) + 1, result.retry_after, rng=rng)
                conn.execute(_FAILED, (health, wait, lease.connection_id, lease.owner))
            else:
                conn.execute(_RELEASE, (health, lease.connection_id, lease.owner))
        audit.record(
            conn,
            org_id=lease.org_id,
            actor=ACTOR,
            action=ACTION,
            resource=f"/connections/{lease.connection_id}",
            outcome=outcome,
            detail=_detail(result),
        )
    if held is None:
        log.warning(
            "sync lease lost before the run finished",
            extra={"fields": {"connection_id": lease.connection_id, "run_id": run_id}},
        )
    return held is not None


def _detail(result: RunResult) -> str:
    parts = [f"rows={result.rows}", f"accounts={result.accounts}"]
    if result.window_from is not None:
        parts.append(f"window={result.window_from}..{result.window_to}")
    if result.error_class:
        parts.append(f"error_class={result.error_class}")
    return " ".join(parts)
