"""The soak's verdicts (`soak.checks`): each invariant fails on the evidence of its breach.

The soak itself runs in `make soak`; these hold its checks to failing when they
must, on small hand-made evidence, so a passing soak means something.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from soak import checks
from soak.checks import Evidence, Fault

T0 = 1_800_000_000.0
ORG, OTHER = "org_zq01xq", "org_zq02xq"
MINE, THEIRS = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def record(rid: str, status: int = 200, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rid": rid,
        "proc": "c1",
        "kind": "load",
        "org": ORG,
        "user": "user_zq01xq_admin1",
        "method": "GET",
        "route": "GET /clients",
        "server": 0,
        "t0": T0,
        "t1": T0 + 0.01,
        "status": status,
        "expected": [200],
        "lost": "",
        "failovers": 0,
        "retry_after": None,
        "ids": [],
        "tags": [],
    }
    base.update(extra)
    return base


def evidence(records: list[dict[str, Any]], **changes: Any) -> Evidence:
    base = Evidence(
        records=records,
        faults=[],
        load_start=T0 - 1,
        load_end=T0 + 60,
        principal_ttl_s=5.0,
        first_days=30,
        audit_rows=[],
        broken_chains=[],
        audit_orgs=1,
        owners={MINE: ORG, THEIRS: OTHER},
        sync_runs=[],
        connections=[],
        datasets={},
    )
    return replace(base, **changes)


def test_a_2xx_answer_needs_exactly_one_record_and_every_record_an_answer() -> None:
    answered = [record("r1"), record("r2", status=404, expected=[404])]
    rows = [(ORG, "u", "r1", "ok"), (ORG, "u", "r2", "denied")]
    assert checks.check_audit(evidence(answered, audit_rows=rows)).ok
    assert not checks.check_audit(evidence(answered, audit_rows=rows[1:])).ok
    assert not checks.check_audit(evidence(answered, audit_rows=[*rows, rows[0]])).ok
    orphan = [*rows, (ORG, "u", "never-sent", "ok")]
    assert not checks.check_audit(evidence(answered, audit_rows=orphan)).ok
    broken = evidence(answered, audit_rows=rows, broken_chains=[f"{ORG} seq 3: hash mismatch"])
    assert not checks.check_audit(broken).ok


def test_an_answer_lost_to_the_kill_may_have_its_record() -> None:
    lost = record("r1", status=0, lost="RemoteDisconnected")
    line = checks.check_audit(evidence([lost], audit_rows=[(ORG, "u", "r1", "ok")]))
    assert line.ok and "SIGKILL" in line.text


def test_another_organizations_id_or_name_in_an_answer_is_a_leak_but_an_echo_is_not() -> None:
    assert checks.check_isolation(evidence([record("r1", ids=[MINE], tags=[1])])).ok
    assert not checks.check_isolation(evidence([record("r1", ids=[THEIRS])])).ok
    assert not checks.check_isolation(evidence([record("r1", tags=[2])])).ok
    # What a member of the organization sent comes back to it (its audit trail).
    echoed = [record("r1", ids=[THEIRS]), record("r0", sent=[THEIRS], status=404, kind="hostile")]
    assert checks.check_isolation(evidence(echoed)).ok
    granted = record("r2", kind="hostile", expected=[403, 404])
    assert not checks.check_isolation(evidence([granted])).ok


def test_only_a_503_or_a_429_with_retry_after_during_a_fault_is_forgiven() -> None:
    fault = Fault("postgres", T0 - 1, T0 + 1, True, "")
    during = {"faults": [fault]}
    unavailable = record("r1", status=503)
    assert checks.check_errors(evidence([unavailable], **during))[0].ok
    assert not checks.check_errors(evidence([unavailable]))[0].ok
    late = record("r1", status=503, t0=T0 + 1 + checks.RECOVERY_BOUND_S + 1)
    assert not checks.check_errors(evidence([late], **during))[0].ok
    assert not checks.check_errors(evidence([record("r1", status=500)], **during))[0].ok
    assert not checks.check_errors(evidence([record("r1", status=429)], **during))[0].ok
    limited = record("r1", status=429, retry_after="3")
    assert checks.check_errors(evidence([limited], **during))[0].ok


def test_a_removed_member_served_after_the_bound_fails() -> None:
    removed = {"kind": "removed", "removed_at": T0 - 10, "expected": [401, 403, 404, 429]}
    refused = record("r1", status=403, **removed)
    assert checks.check_removal(evidence([refused])).ok
    assert not checks.check_removal(evidence([refused, record("r2", **removed)])).ok


def _run(started: dt.datetime, rows: int, outcome: str = "ok") -> dict[str, Any]:
    return {
        "id": f"run-{started:%H%M}",
        "connection_id": "c",
        "started_at": started,
        "finished_at": started + dt.timedelta(seconds=2),
        "rows_loaded": rows,
        "outcome": outcome,
        "error_class": None if outcome == "ok" else "provider_unavailable",
    }


def test_the_windows_are_the_syncs_own_rule_and_a_failed_run_wrote_its_first_accounts() -> None:
    noon = dt.datetime(2026, 6, 10, 12, tzinfo=dt.UTC)
    accounts = [("a1", "UTC"), ("a2", "Asia/Tokyo")]
    first = _run(noon, rows=2 * 31 * 12)
    later = _run(noon + dt.timedelta(hours=1), rows=2 * 4 * 12)  # the lookback: 4 days each
    failed = _run(noon + dt.timedelta(hours=2), rows=4 * 12, outcome="failed")
    windows = checks.expected_windows(
        [first, later, failed], accounts, first_days=30, lookback_days=3, retention_days=365
    )
    assert windows.problems == []
    days = {d for a, d in windows.sure if a == "a1"}
    assert min(days) == dt.date(2026, 5, 11) and max(days) == dt.date(2026, 6, 10)
    assert (("a2", dt.date(2026, 6, 10))) in windows.sure  # 21:00 in Tokyo
    wrong = checks.expected_windows(
        [_run(noon, rows=5)], accounts, first_days=30, lookback_days=3, retention_days=365
    )
    assert wrong.problems  # no prefix of its accounts' windows has 5 rows


def test_the_warehouse_check_sees_a_row_twice_a_day_missing_and_a_wrong_value() -> None:
    day = dt.date(2026, 6, 10)
    rows = [
        (day, "sbx-1001", ad, *values)
        for ad, values in checks.expected_rows("sbx-1001", day).items()
    ]
    noon = dt.datetime(2026, 6, 10, 12, tzinfo=dt.UTC)
    run = _run(noon, rows=12) | {"connection_id": "k"}
    connection = {"id": "k", "client_id": MINE, "account_ids": ["sbx-1001"], "status": "active"}
    base = {"sync_runs": [run], "connections": [connection], "final_queries": [{"match": True}]}

    def verdict(held: list[tuple[Any, ...]]) -> bool:
        ev = evidence([], warehouse_rows={MINE: held}, first_days=0, **base)
        windows = checks.client_windows(ev, lookback_days=0, retention_days=365)
        return checks.check_warehouse(ev, windows).ok

    assert verdict(rows)
    assert not verdict([*rows, rows[0]])
    assert not verdict(rows[1:])
    assert not verdict([(*rows[0][:6], rows[0][6] + 1, *rows[0][7:]), *rows[1:]])
    assert not verdict([*rows, (day - dt.timedelta(days=9), *rows[0][1:])])


def test_a_query_answering_a_day_its_client_never_synced_carries_another_clients_rows() -> None:
    noon = dt.datetime(2026, 6, 10, 12, tzinfo=dt.UTC)
    run = _run(noon, rows=12) | {"connection_id": "k"}
    connection = {"id": "k", "client_id": MINE, "account_ids": ["sbx-1001"], "status": "active"}
    ev = evidence([], sync_runs=[run], connections=[connection], first_days=0)
    windows = checks.client_windows(ev, lookback_days=0, retention_days=365)
    own = record("q1", route="POST /query", client=MINE, days=["2026-06-10|sbx-1001"])
    assert checks.check_isolation(replace(ev, records=[own]), windows).ok
    other = record("q2", route="POST /query", client=MINE, days=["2026-06-01|sbx-1001"])
    assert not checks.check_isolation(replace(ev, records=[own, other]), windows).ok
