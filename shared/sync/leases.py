"""Leases: how concurrent sync invocations share the due connections without overlap.

A connection is due when it is active, `next_sync_at` has passed, it is out of
backoff, no unexpired lease holds it and its organization is not suspended
(deleted in Clerk, its clients being erased). `take` claims a few due rows in one
statement (`FOR UPDATE SKIP LOCKED`: concurrent invocations skip each other's
rows instead of waiting) and stamps them with the caller's owner id and an
expiry. A lease outlives the function timeout, so a crashed run's connections
come back by themselves once it expires; their 'running' sync_runs rows are
then closed as `lease_expired` by the next taker.

Every later write to a leased row is conditioned on `lease_owner`, so a run
that lost its lease (it ran past the expiry and another run took over) can no
longer change the row's schedule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.db import Database

_TAKE = """
update public.connections c
   set lease_owner = %(owner)s,
       lease_until = now() + make_interval(secs => %(lease_s)s)
 where c.id in (
   select id from public.connections
    where status = 'active'
      and next_sync_at <= now()
      and (lease_until is null or lease_until < now())
      and (backoff_until is null or backoff_until <= now())
      -- An organization deleted in Clerk is suspended until its clients are erased.
      and not exists (select 1 from public.organizations o
                       where o.id = connections.org_id and o.suspended_at is not null)
    order by next_sync_at
    limit %(limit)s
    for update skip locked)
returning c.id::text, c.org_id, c.client_id::text, c.platform, c.account_ids,
          c.last_synced_at, c.last_refresh_at, c.failures
"""

# Runs left 'running' by a crashed invocation whose lease has since expired.
_CLOSE_ABANDONED = """
update public.sync_runs
   set outcome = 'failed', error_class = 'lease_expired', finished_at = now()
 where connection_id = any(%s::uuid[]) and outcome = 'running'
"""

_RETURN = """
update public.connections
   set lease_owner = null, lease_until = null
 where id = %s and lease_owner = %s
"""

_MAKE_DUE = """
update public.connections
   set next_sync_at = now(), backoff_until = null
 where status = 'active' and (%s::uuid[] is null or id = any(%s::uuid[]))
"""


@dataclass(frozen=True)
class Lease:
    """A claimed connection: what the runner needs before it reads the token."""

    connection_id: str
    org_id: str
    client_id: str
    platform: str
    account_ids: tuple[str, ...]
    last_synced_at: dt.datetime | None
    last_refresh_at: dt.datetime | None
    failures: int
    owner: str


def take(db: Database, owner: str, *, limit: int, lease_s: int) -> list[Lease]:
    """Claim up to `limit` due connections for `owner` until now + `lease_s`."""
    if limit <= 0:
        return []
    with db.transaction() as conn:
        rows = conn.execute(_TAKE, {"owner": owner, "lease_s": lease_s, "limit": limit}).fetchall()
        if rows:
            conn.execute(_CLOSE_ABANDONED, ([r[0] for r in rows],))
    return [
        Lease(
            connection_id=r[0],
            org_id=r[1],
            client_id=r[2],
            platform=r[3],
            account_ids=tuple(r[4] or ()),
            last_synced_at=r[5],
            last_refresh_at=r[6],
            failures=int(r[7]),
            owner=owner,
        )
        for r in rows
    ]


def give_back(db: Database, lease: Lease) -> None:
    """Release a lease without touching the schedule (the run did not start it)."""
    with db.transaction() as conn:
        conn.execute(_RETURN, (lease.connection_id, lease.owner))


def make_due(db: Database, connection_ids: list[str] | None = None) -> int:
    """Make active connections due now (all, or the given ones); the local
    `cosma sync --now` uses it to sync again without waiting a day."""
    with db.transaction() as conn:
        cursor = conn.execute(_MAKE_DUE, (connection_ids, connection_ids))
        return cursor.rowcount
