"""The sync engine end to end: real Postgres (worker role), real DuckDB warehouse,
the real sandbox connector and OAuth client, against a provider we control
(tests/support/sync_provider.py) that rotates refresh tokens, paginates, and
answers invalid_grant, 429 with Retry-After, 500, 401, 403 and slow responses.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cosma import localdb, sandbox_platform
from shared.settings import Settings
from shared.sync import leases, runner
from tests.support.seed import Seeder
from tests.support.servers import serve
from tests.support.sync_env import Bench, sync_database
from tests.support.sync_provider import SyncProvider

Rows = list[tuple[Any, ...]]


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[SyncProvider, str]]:
    fake = SyncProvider()
    with serve(fake) as url:
        yield fake, url


@pytest.fixture(scope="module")
def bench(
    pg: localdb.LocalDatabase,
    settings: Settings,
    provider: tuple[SyncProvider, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Bench]:
    db = sync_database(pg)
    _, url = provider
    local = settings.with_changes(
        database_url=db.app_url,
        worker_database_url=db.worker_url,
        warehouse_dir=tmp_path_factory.mktemp("sync_engine_wh"),
        platform_base_urls={"sandbox": url},
        sync_api_timeout_s=1.0,
        sync_first_days=20,
        sync_batch=2,
    )
    runtime = sandbox_platform.local_runtime(local)
    yield Bench(db, runtime, Seeder(db.admin_url))
    runtime.close()


@pytest.fixture
def fake(provider: tuple[SyncProvider, str], bench: Bench) -> Iterator[SyncProvider]:
    """The provider reset, and no other connection due: each test syncs its own."""
    fake, _ = provider
    bench.retire_all()
    fake.rotate, fake.version, fake.accounts_per_grant = True, 1, 1
    fake.token_faults.clear()
    fake.report_faults.clear()
    fake.denied_accounts.clear()
    yield fake


def _connect(bench: Bench, fake: SyncProvider) -> tuple[str, str, str]:
    """(connection id, dataset id, provider family) of a fresh due connection."""
    org = bench.org()
    refresh_token = fake.grant()
    family = fake.family(refresh_token)
    connection_id = bench.connection(org, org.clients[0], refresh_token)
    dataset_id = bench.one(
        "select dataset_id from datasets where client_id = %s", (org.clients[0],)
    )[0]
    return connection_id, dataset_id, family


def _rows(bench: Bench, dataset_id: str) -> Rows:
    result = bench.runtime.warehouse.query(
        "select date, account_id, campaign_id, impressions, clicks, spend_micros, conversions,"
        f" conversion_value_micros, currency from {bench.runtime.warehouse.table_ref(dataset_id)}"
        " order by all",
        {},
        location="US",
        labels={},
        max_bytes_billed=10**9,
        timeout_s=10,
        datasets=[dataset_id],
    )
    return result.rows


def _sync(bench: Bench, **kwargs: Any) -> runner.SyncReport:
    return runner.run(bench.runtime, **kwargs)


def _only(report: runner.SyncReport, connection_id: str) -> dict[str, Any]:
    mine = [r.public() for r in report.results if r.connection_id == connection_id]
    assert len(mine) == 1, report.public()
    return mine[0]


def _make_due(bench: Bench, connection_id: str) -> None:
    bench.sql(
        "update connections set next_sync_at = now(), backoff_until = null where id = %s",
        (connection_id,),
    )


# ---------------------------------------------------------------- happy path, idempotence


def test_sync_loads_the_window_and_records_the_run(bench: Bench, fake: SyncProvider) -> None:
    connection_id, dataset_id, family = _connect(bench, fake)
    result = _only(_sync(bench), connection_id)
    assert result["outcome"] == "ok" and result["error_class"] is None
    today = dt.datetime.now(dt.UTC).date()
    # First sync: sync_first_days (20) back, clamped by nothing; 3 campaigns a day.
    assert result["window"] == [str(today - dt.timedelta(days=20)), str(today)]
    assert result["rows"] == 21 * 3
    rows = _rows(bench, dataset_id)
    assert len(rows) == 63
    assert {r[1] for r in rows} == {f"{family}-a"} and {r[8] for r in rows} == {"EUR"}
    [run] = bench.runs(connection_id)
    assert run["outcome"] == "ok" and run["rows_loaded"] == 63
    assert run["window_start"] == today - dt.timedelta(days=20) and run["window_end"] == today
    assert run["duration_ms"] is not None and run["finished_at"] is not None
    row = bench.connection_row(connection_id)
    assert row["lease_owner"] is None and row["failures"] == 0 and row["health"] is None
    assert row["last_synced_at"] is not None
    # Next sync a day later (the sandbox's idle expiry, 90 days, is no shorter).
    wait = (row["next_sync_at"] - row["last_synced_at"]).total_seconds()
    assert 86_390 <= wait <= 86_410
    audit = bench.sql(
        "select actor, action, outcome, detail from audit_log where resource = %s",
        (f"/connections/{connection_id}",),
    )
    assert len(audit) == 1 and audit[0][:3] == ("system:sync", "sync.run", "ok")
    assert "rows=63" in audit[0][3]


def test_same_sync_twice_gives_the_same_rows(bench: Bench, fake: SyncProvider) -> None:
    connection_id, dataset_id, _ = _connect(bench, fake)
    _sync(bench)
    first = _rows(bench, dataset_id)
    _make_due(bench, connection_id)
    second_report = _only(_sync(bench), connection_id)
    assert second_report["outcome"] == "ok"
    # The second sync re-read only the lookback (3 days + today) and replaced it.
    assert second_report["rows"] == 4 * 3
    assert _rows(bench, dataset_id) == first


def test_later_sync_replaces_revised_days_only(bench: Bench, fake: SyncProvider) -> None:
    connection_id, dataset_id, _ = _connect(bench, fake)
    _sync(bench)
    before = _rows(bench, dataset_id)
    fake.version = 2  # the provider revises every number
    _make_due(bench, connection_id)
    _sync(bench)
    after = _rows(bench, dataset_id)
    assert len(after) == len(before)
    cutoff = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)
    assert [r for r in after if r[0] < cutoff] == [r for r in before if r[0] < cutoff]
    assert [r for r in after if r[0] >= cutoff] != [r for r in before if r[0] >= cutoff]


def test_idle_expiring_refresh_tokens_are_kept_alive(bench: Bench, fake: SyncProvider) -> None:
    # The sandbox's refresh tokens die after 90 idle days (like Microsoft's): even
    # with a sync interval longer than that, the next sync (which refreshes) comes
    # within half of it.
    connection_id, _, _ = _connect(bench, fake)
    runtime = sandbox_platform.local_runtime(
        bench.settings.with_changes(sync_interval_s=200 * 86_400)
    )
    try:
        assert _only(runner.run(runtime), connection_id)["outcome"] == "ok"
    finally:
        runtime.close()
    row = bench.connection_row(connection_id)
    wait = (row["next_sync_at"] - row["last_synced_at"]).total_seconds()
    assert abs(wait - 45 * 86_400) < 10


# ---------------------------------------------------------------- token refresh


def test_rotated_refresh_token_is_stored_and_used_next_time(
    bench: Bench, fake: SyncProvider
) -> None:
    connection_id, _, family = _connect(bench, fake)
    original = bench.stored_token(connection_id)
    _sync(bench)
    rotated = fake.live_refresh_token(family)
    assert rotated != original
    assert bench.stored_token(connection_id) == rotated
    row = bench.connection_row(connection_id)
    assert row["last_refresh_at"] is not None
    assert bytes(row["token_ciphertext"]).find(rotated.encode()) == -1
    _make_due(bench, connection_id)
    assert _only(_sync(bench), connection_id)["outcome"] == "ok"
    assert fake.refreshes[family] == 2


def test_unrotated_refresh_token_is_kept(bench: Bench, fake: SyncProvider) -> None:
    fake.rotate = False
    connection_id, _, _ = _connect(bench, fake)
    before = bench.connection_row(connection_id)["token_ciphertext"]
    assert _only(_sync(bench), connection_id)["outcome"] == "ok"
    row = bench.connection_row(connection_id)
    assert row["token_ciphertext"] == before and row["last_refresh_at"] is not None


def test_invalid_grant_marks_reauth_required_and_stops_trying(
    bench: Bench, fake: SyncProvider
) -> None:
    connection_id, dataset_id, family = _connect(bench, fake)
    fake.token_faults.append("invalid_grant")
    result = _only(_sync(bench), connection_id)
    assert result["outcome"] == "reauth_required" and result["error_class"] == "invalid_grant"
    row = bench.connection_row(connection_id)
    assert row["status"] == "reauth_required" and "reconnect" in row["health"]
    assert row["lease_owner"] is None
    assert [r["outcome"] for r in bench.runs(connection_id)] == ["reauth_required"]
    # Never leased again, however due it looks.
    _make_due(bench, connection_id)
    report = _sync(bench)
    assert all(r.connection_id != connection_id for r in report.results)
    assert fake.refreshes[family] == 0
    assert _rows(bench, dataset_id) == []


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [(("429", 900), "rate_limited"), ("500", "provider_unavailable")],
)
def test_token_endpoint_failure_backs_off(
    bench: Bench, fake: SyncProvider, fault: Any, error_class: str
) -> None:
    connection_id, dataset_id, _ = _connect(bench, fake)
    fake.token_faults.append(fault)
    result = _only(_sync(bench, rng=lambda: 1.0), connection_id)
    assert result["outcome"] == "failed" and result["error_class"] == error_class
    row = bench.connection_row(connection_id)
    assert row["failures"] == 1 and row["status"] == "active" and row["lease_owner"] is None
    wait = (row["backoff_until"] - row["updated_at"]).total_seconds()
    # Retry-After (900 s) wins over the first backoff step (60 s).
    expected = 900 if error_class == "rate_limited" else 60
    assert expected - 2 <= wait <= expected + 2
    assert row["health"]
    # In backoff: not leased again now.
    report = _sync(bench)
    assert all(r.connection_id != connection_id for r in report.results)
    assert _rows(bench, dataset_id) == []


def test_backoff_grows_and_success_clears_it(bench: Bench, fake: SyncProvider) -> None:
    connection_id, _, _ = _connect(bench, fake)
    waits = []
    for _ in range(3):
        fake.token_faults.append("500")
        _sync(bench, rng=lambda: 1.0)
        row = bench.connection_row(connection_id)
        waits.append(round((row["backoff_until"] - row["updated_at"]).total_seconds()))
        bench.sql("update connections set backoff_until = now() where id = %s", (connection_id,))
    assert waits == [60, 120, 240]
    assert bench.connection_row(connection_id)["failures"] == 3
    assert _only(_sync(bench), connection_id)["outcome"] == "ok"
    row = bench.connection_row(connection_id)
    assert row["failures"] == 0 and row["backoff_until"] is None and row["health"] is None


def test_token_endpoint_timeout_is_a_failure_not_a_hang(bench: Bench, fake: SyncProvider) -> None:
    connection_id, _, _ = _connect(bench, fake)
    fake.token_faults.append(("sleep", 2.5))
    started = time.monotonic()
    result = _only(_sync(bench), connection_id)
    assert time.monotonic() - started < 2.4
    assert result["error_class"] == "provider_unavailable"


def test_refused_access_token_is_refreshed_once(bench: Bench, fake: SyncProvider) -> None:
    connection_id, _dataset_id, family = _connect(bench, fake)
    fake.report_faults[f"{family}-a"].append("401")
    result = _only(_sync(bench), connection_id)
    assert result["outcome"] == "ok" and result["rows"] == 63
    assert fake.refreshes[family] == 2
    assert bench.stored_token(connection_id) == fake.live_refresh_token(family)


# ---------------------------------------------------------------- report failures


def test_report_429_mid_pagination_keeps_previous_rows(bench: Bench, fake: SyncProvider) -> None:
    connection_id, dataset_id, family = _connect(bench, fake)
    _sync(bench)
    before = _rows(bench, dataset_id)
    fake.version = 3
    # Page 1 of the re-read answers, page 2 is rate limited.
    fake.report_faults[f"{family}-a"].extend([("sleep", 0), ("429", 120)])
    _make_due(bench, connection_id)
    result = _only(_sync(bench, rng=lambda: 0.0), connection_id)
    assert result["outcome"] == "failed" and result["error_class"] == "rate_limited"
    assert _rows(bench, dataset_id) == before
    row = bench.connection_row(connection_id)
    wait = (row["backoff_until"] - row["updated_at"]).total_seconds()
    assert 118 <= wait <= 122


def test_report_500_and_timeout_keep_previous_rows(bench: Bench, fake: SyncProvider) -> None:
    connection_id, dataset_id, family = _connect(bench, fake)
    _sync(bench)
    before = _rows(bench, dataset_id)
    fake.version = 4
    for fault in ("500", ("sleep", 1.5)):
        fake.report_faults[f"{family}-a"].append(fault)
        _make_due(bench, connection_id)
        result = _only(_sync(bench), connection_id)
        assert result["error_class"] == "provider_unavailable"
        assert _rows(bench, dataset_id) == before


def test_warehouse_failure_keeps_previous_rows(
    bench: Bench, fake: SyncProvider, tmp_path: Any
) -> None:
    connection_id, dataset_id, _ = _connect(bench, fake)
    _sync(bench)
    before = _rows(bench, dataset_id)
    fake.version = 5
    # Another process holds the dataset file's write lock: the load cannot happen.
    path = bench.runtime.warehouse.path_for(dataset_id)  # type: ignore[attr-defined]
    code = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
        "print('locked', flush=True); time.sleep(30)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        _make_due(bench, connection_id)
        result = _only(_sync(bench), connection_id)
    finally:
        holder.kill()
        holder.wait()
    assert result["outcome"] == "failed" and result["error_class"] == "warehouse_unavailable"
    assert "previous data kept" in bench.connection_row(connection_id)["health"]
    assert _rows(bench, dataset_id) == before


def test_permission_denied_account_is_health_and_partial(bench: Bench, fake: SyncProvider) -> None:
    fake.accounts_per_grant = 2
    connection_id, dataset_id, family = _connect(bench, fake)
    fake.denied_accounts.add(f"{family}-b")
    result = _only(_sync(bench), connection_id)
    assert result["outcome"] == "partial" and result["error_class"] == "permission_denied"
    assert result["accounts"] == 1
    row = bench.connection_row(connection_id)
    assert row["health"] == f"account {family}-b: permission denied"
    assert {r[1] for r in _rows(bench, dataset_id)} == {f"{family}-a"}
    # Partial is still a sync: next one tomorrow, no backoff.
    assert row["failures"] == 0 and row["backoff_until"] is None
    # Access restored: the health text clears.
    fake.denied_accounts.clear()
    _make_due(bench, connection_id)
    assert _only(_sync(bench), connection_id)["outcome"] == "ok"
    assert bench.connection_row(connection_id)["health"] is None


def test_chosen_accounts_only(bench: Bench, fake: SyncProvider) -> None:
    fake.accounts_per_grant = 3
    org = bench.org()
    refresh_token = fake.grant()
    family = fake.family(refresh_token)
    connection_id = bench.connection(
        org, org.clients[0], refresh_token, account_ids=(f"{family}-c",)
    )
    result = _only(_sync(bench), connection_id)
    assert result["accounts"] == 1
    assert fake.report_calls[f"{family}-a"] == 0 and fake.report_calls[f"{family}-c"] > 0


# ---------------------------------------------------------------- sharing the work


def test_concurrent_invocations_never_process_one_connection_twice(
    bench: Bench, fake: SyncProvider
) -> None:
    made = [_connect(bench, fake) for _ in range(8)]
    reports: list[runner.SyncReport] = []
    failures: list[BaseException] = []

    def invoke() -> None:
        runtime = sandbox_platform.local_runtime(bench.settings)  # each invocation its own instance
        try:
            reports.append(runner.run(runtime))
        except BaseException as exc:
            failures.append(exc)
        finally:
            runtime.close()

    threads = [threading.Thread(target=invoke) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    processed = [r.connection_id for report in reports for r in report.results]
    assert sorted(processed) == sorted(c for c, _, _ in made)
    assert sum(1 for report in reports if report.results) >= 2, "the work was not shared"
    for connection_id, dataset_id, family in made:
        assert [r["outcome"] for r in bench.runs(connection_id)] == ["ok"]
        assert fake.refreshes[family] == 1
        assert fake.max_in_flight[f"{family}-a"] == 1
        assert len(_rows(bench, dataset_id)) == 63


def test_expired_lease_comes_back_and_closes_the_abandoned_run(
    bench: Bench, fake: SyncProvider
) -> None:
    connection_id, _, _ = _connect(bench, fake)
    # A run that crashed: it leased the connection and opened a run record.
    [lease] = leases.take(bench.runtime.worker_db, "crashed-run", limit=1, lease_s=600)
    from shared.sync import runs

    runs.start(bench.runtime.worker_db, lease)
    assert _sync(bench).results == []  # still leased
    bench.sql(
        "update connections set lease_until = now() - interval '1 second' where id = %s",
        (connection_id,),
    )
    assert _only(_sync(bench), connection_id)["outcome"] == "ok"
    outcomes = [(r["outcome"], r["error_class"]) for r in bench.runs(connection_id)]
    assert outcomes == [("failed", "lease_expired"), ("ok", None)]


def test_lost_lease_cannot_reschedule(bench: Bench, fake: SyncProvider) -> None:
    connection_id, _, _ = _connect(bench, fake)
    [lease] = leases.take(bench.runtime.worker_db, "slow-run", limit=1, lease_s=600)
    bench.sql("update connections set lease_owner = 'other-run' where id = %s", (connection_id,))
    result = runner.sync_connection(bench.runtime, lease, deadline=time.monotonic() + 60)
    assert (result.outcome, result.error_class) == ("failed", "lease_lost")
    row = bench.connection_row(connection_id)
    assert row["lease_owner"] == "other-run" and row["last_synced_at"] is None
    assert row["failures"] == 0 and row["last_refresh_at"] is None


def test_budget_spent_leases_nothing(bench: Bench, fake: SyncProvider) -> None:
    connection_id, _, _ = _connect(bench, fake)
    report = _sync(bench, budget_s=0.0)
    assert report.stopped == "budget" and report.results == []
    assert bench.connection_row(connection_id)["lease_owner"] is None
    assert bench.runs(connection_id) == []


def test_budget_running_out_gives_back_unstarted_leases(bench: Bench, fake: SyncProvider) -> None:
    made = [_connect(bench, fake) for _ in range(2)]
    # run start, lease check, first connection (start, account, end), then time is up.
    ticks = iter([0.0] * 6 + [1000.0] * 100)
    report = _sync(bench, budget_s=100.0, clock=lambda: next(ticks))
    assert report.stopped == "budget"
    assert len(report.results) == 1
    for connection_id, _, _ in made:
        row = bench.connection_row(connection_id)
        assert row["lease_owner"] is None
    started = {r.connection_id for r in report.results}
    [left] = [c for c, _, _ in made if c not in started]
    assert bench.runs(left) == []
    assert bench.connection_row(left)["next_sync_at"] <= dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------- secrets stay secret


def test_no_token_in_logs_or_run_records(
    bench: Bench, fake: SyncProvider, caplog: pytest.LogCaptureFixture
) -> None:
    connection_id, _, family = _connect(bench, fake)
    original = bench.stored_token(connection_id)
    fake.report_faults[f"{family}-a"].append("401")
    with caplog.at_level(logging.DEBUG):
        _sync(bench)
    rotated = fake.live_refresh_token(family)
    issued = [t for t, f in fake.access_tokens.items() if f == family]
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    text += repr(bench.runs(connection_id)) + repr(bench.connection_row(connection_id)["health"])
    for secret in [original, rotated, *issued]:
        assert secret not in text
