"""Group commit: the one-round-trip writes of concurrent requests share a transaction.

Against the real Postgres, with the audit insert every read request writes:
each caller's record is durable when its call returns, none is lost or
written twice, RLS checks each under its own claims, and one refused write
fails only its own caller.
"""

from __future__ import annotations

import threading
import uuid

import psycopg

from shared import audit, errors
from shared.db import Database, GroupCommit, PendingWrite
from tests.support.seed import Org, Seeder


def _record(org: Org, request_id: str, statement_org: str | None = None) -> PendingWrite:
    p = org.principal(org.user("admin"))
    statement = audit.record_statement(
        org_id=statement_org or org.id, actor=p.user_id, action="group", request_id=request_id
    )
    return PendingWrite(p.claims(), statement)


def _stored(admin_url: str, request_ids: list[str]) -> list[str]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "select request_id from audit_log where request_id = any(%s)", (request_ids,)
        ).fetchall()
    return sorted(r[0] for r in rows)


def test_one_batch_writes_every_organizations_record_in_one_transaction(pg, seeder: Seeder) -> None:
    db = Database(pg.app_url)
    try:
        orgs = [seeder.org() for _ in range(3)]
        ids = [f"grp-{uuid.uuid4().hex}" for _ in orgs]
        group = GroupCommit(db)
        batch = [_record(org, rid) for org, rid in zip(orgs, ids, strict=True)]
        group.flush(batch)
        assert [w.error for w in batch] == [None, None, None]
        assert group.batches == 1 and group.writes == 3
        assert _stored(pg.admin_url, ids) == sorted(ids)
        with psycopg.connect(pg.admin_url) as conn:
            for org in orgs:
                assert audit.verify(conn, org.id) == []
    finally:
        db.close()


def test_a_refused_write_fails_alone_and_the_others_are_written(pg, seeder: Seeder) -> None:
    db = Database(pg.app_url)
    try:
        a, b = seeder.org(), seeder.org()
        good = [f"grp-{uuid.uuid4().hex}" for _ in range(2)]
        forged_id = f"grp-{uuid.uuid4().hex}"
        # Claims of `a`, a record for `b`: RLS refuses it.
        batch = [
            _record(a, good[0]),
            _record(a, forged_id, statement_org=b.id),
            _record(b, good[1]),
        ]
        GroupCommit(db).flush(batch)
        assert batch[0].error is None and batch[2].error is None
        assert isinstance(batch[1].error, errors.Forbidden)
        assert _stored(pg.admin_url, [*good, forged_id]) == sorted(good)
    finally:
        db.close()


def test_concurrent_callers_each_return_with_their_record_durable(pg, seeder: Seeder) -> None:
    db = Database(pg.app_url, max_size=4)
    try:
        orgs = [seeder.org() for _ in range(4)]
        callers = 24
        ids = [f"grp-{uuid.uuid4().hex}" for _ in range(callers)]
        start = threading.Barrier(callers)
        missing: list[str] = []
        failures: list[BaseException] = []

        def call(i: int) -> None:
            org = orgs[i % len(orgs)]
            p = org.principal(org.user("admin"))
            statement = audit.record_statement(
                org_id=org.id, actor=p.user_id, action="group", request_id=ids[i]
            )
            start.wait()
            try:
                db.run_once(p.claims(), statement)
            except BaseException as exc:
                failures.append(exc)
                return
            # Returned: the record is committed, visible to anyone now.
            if _stored(pg.admin_url, [ids[i]]) != [ids[i]]:
                missing.append(ids[i])

        threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [] and missing == []
        assert _stored(pg.admin_url, ids) == sorted(ids)  # each once, none lost
        group = db._group
        assert group.writes == callers
        assert group.batches < callers  # callers arriving together shared transactions
        with psycopg.connect(pg.admin_url) as conn:
            for org in orgs:
                assert audit.verify(conn, org.id) == []
    finally:
        db.close()


def test_a_failed_connection_sends_no_write_twice(pg, seeder: Seeder) -> None:
    # A server that went away mid-batch may or may not have committed it: every
    # caller fails (503) and nothing is sent again.
    db = Database("postgresql://cosma_app:x@127.0.0.1:9/none?connect_timeout=1", timeout_s=0.5)
    try:
        org = seeder.org()
        batch = [_record(org, f"grp-{uuid.uuid4().hex}") for _ in range(2)]
        group = GroupCommit(db)
        group.flush(batch)
        assert all(isinstance(w.error, errors.Unavailable) for w in batch)
    finally:
        db.close()
