"""RLS cost: the same tenant query as the app role (RLS, claims set per
transaction, exactly as a request runs) vs as the owner with an explicit WHERE
and no RLS, over 1M clients in 10k organizations. Goal: at most 1.2x."""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from cosma import localdb
from shared.db import Database

ORGS = 10_000
ROWS = 1_000_000
QUERIES = 3_000
QUERY = "select id, name, created_at from clients {where} order by created_at desc limit 20"


def _load(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "insert into organizations (id, name) select 'org_' || g, 'Org ' || g"
            " from generate_series(1, %s) g",
            (ORGS,),
        )
        conn.execute(
            "insert into members (org_id, user_id, role) select 'org_' || g, 'user_' || g, 'admin'"
            " from generate_series(1, %s) g",
            (ORGS,),
        )
        conn.execute(
            "insert into clients (org_id, name, created_at)"
            " select 'org_' || (g %% %s + 1), 'client ' || g, now() - g * interval '1 second'"
            " from generate_series(1, %s) g",
            (ORGS, ROWS),
        )
        conn.execute("vacuum analyze clients")
        conn.execute("vacuum analyze members")


def _time_pair(
    first: Callable[[int], None], second: Callable[[int], None], orgs: list[int]
) -> tuple[float, float]:
    """Medians of both, sampled alternately so machine load hits both alike."""
    a, b = [], []
    for org in orgs:
        for fn, samples in ((first, a), (second, b)):
            started = time.perf_counter()
            fn(org)
            samples.append(time.perf_counter() - started)
    return statistics.median(a), statistics.median(b)


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        db = localdb.prepare(admin_url=None, datadir=Path(tmp) / "pg", dbname="bench_rls")
        try:
            _load(db.admin_url)
            rng = random.Random(7)
            orgs = [rng.randint(1, ORGS) for _ in range(QUERIES)]
            # Both sides go through the same pooled transaction code a request uses.
            app, owner = Database(db.app_url, max_size=1), Database(db.admin_url, max_size=1)
            try:

                def as_app(org: int) -> None:
                    claims = {"sub": f"user_{org}", "o": {"id": f"org_{org}"}}
                    with app.transaction(claims) as conn:
                        rows = conn.execute(QUERY.format(where="")).fetchall()
                    assert len(rows) == 20

                def as_owner(org: int) -> None:
                    with owner.transaction() as conn:
                        rows = conn.execute(
                            QUERY.format(where="where org_id = %s"), (f"org_{org}",)
                        ).fetchall()
                    assert len(rows) == 20

                pinned = _pin(app, owner)
                _time_pair(as_owner, as_app, orgs[:300])  # warm caches for both
                baseline, subject = _time_pair(as_owner, as_app, orgs)
            finally:
                app.close()
                owner.close()
        finally:
            db.stop()
    return [
        f"rls_tenant_query_1M_rows_10k_orgs: {subject * 1e6:.0f} us/query median "
        f"({subject / baseline:.2f}x vs owner without RLS at {baseline * 1e6:.0f} us"
        f"{'; client and server pinned to separate cores' if pinned else ''})"
    ]


def _pin(*databases: Database) -> bool:
    """Client on one core, both Postgres backends on the other.

    On a 2-core machine the scheduler otherwise places each backend beside or
    apart from the client run by run, and a round trip costs ~150 us more one
    way than the other: the ratio then measures placement, not RLS. Returns
    whether pinning took (it needs permission over the server's processes).
    """
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return False
    try:
        for database in databases:
            with database.transaction() as conn:
                os.sched_setaffinity(conn.info.backend_pid, {cores[1]})
        os.sched_setaffinity(0, {cores[0]})
    except OSError:
        return False
    return True
