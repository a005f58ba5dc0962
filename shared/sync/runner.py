"""The sync runner: one invocation leases due connections and syncs them within a budget.

    report = run(runtime)          # what POST /sync and `cosma sync` call

Per invocation: lease a few due connections at a time (`shared.sync.leases`),
sync each, lease again, until nothing is due or the time budget (below the
function timeout) nears its end; leases taken but not started are given back.
Several invocations at once share the work: each connection is leased by one.

Per connection (`sync_connection`), with one `sync_runs` row and one audit record:

1. the client's dataset for the platform must exist (`datasets`, status ready).
   The worker role cannot create it (provisioning is the datasets function's
   job, done when the connection is made); a missing one fails the run with
   error_class `dataset_missing` and a health text, never silently;
2. refresh the access token (`shared.sync.refresh`: single-flight, rotation);
3. the connector lists the accounts (the connection's chosen ones);
4. per account: the window (`shared.sync.windows`), fetch, and replace the
   (account, window) slice atomically through the warehouse port. A permission
   error on an account is recorded in the connection's health and the run is
   `partial`; the other accounts still load. A 401 refreshes the token once and
   retries; a second refusal fails the run.

Errors are classified for the run record (`error_class`) and never carry a
token or a provider body.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from shared import errors
from shared.errors import (
    InvalidGrant,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from shared.sync import leases, refresh, runs, windows
from shared.sync.runs import RunResult

if TYPE_CHECKING:
    import pyarrow as pa
    import requests

    from shared.platforms.base import Account
    from shared.platforms.entry import Platform
    from shared.platforms.reports import ApiClient, Connector
    from shared.runtime import Runtime

__all__ = ["RunResult", "SyncReport", "new_owner", "run", "sync_connection"]

log = logging.getLogger("cosma.sync")

T = TypeVar("T")

_DATASET = """
select dataset_id, status from public.datasets where client_id = %s and platform = %s
"""


@dataclass
class SyncReport:
    """What one invocation did; `public()` is the trigger's answer."""

    owner: str
    budget_s: float
    results: list[RunResult] = field(default_factory=list)
    stopped: str = "idle"  # idle: nothing left due; budget: time ran out
    elapsed_s: float = 0.0

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)

    def public(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "connections": [r.public() for r in self.results],
            "synced": len(self.results),
            "rows": self.rows,
            "stopped": self.stopped,
            "elapsed_s": round(self.elapsed_s, 3),
            "budget_s": self.budget_s,
        }


def new_owner(prefix: str = "sync") -> str:
    """A lease owner id unique to this invocation (host and pid help operators)."""
    return f"{prefix}:{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def run(
    runtime: Runtime,
    *,
    owner: str | None = None,
    budget_s: float | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
    session: requests.Session | None = None,
) -> SyncReport:
    """Lease and sync due connections until none is due or the budget nears its end."""
    settings = runtime.settings
    budget = settings.sync_budget_s if budget_s is None else budget_s
    report = SyncReport(owner or new_owner(), budget)
    started = clock()
    deadline = started + budget
    # Leave room for one connection's work before the deadline: no new lease after.
    reserve = min(60.0, budget / 4)
    # One HTTP session for the invocation, opened with the first lease: an idle
    # trigger (most of them) never loads `requests`.
    http = session
    try:
        while True:
            if deadline - clock() < reserve:
                report.stopped = "budget"
                break
            taken = leases.take(
                runtime.worker_db,
                report.owner,
                limit=settings.sync_batch,
                lease_s=settings.sync_lease_s,
            )
            if not taken:
                break
            for index, lease in enumerate(taken):
                if deadline - clock() < reserve:
                    for unstarted in taken[index:]:
                        leases.give_back(runtime.worker_db, unstarted)
                    report.stopped = "budget"
                    break
                if http is None:
                    import requests

                    http = requests.Session()
                result = sync_connection(
                    runtime, lease, deadline=deadline, clock=clock, rng=rng, session=http
                )
                report.results.append(result)
                if on_result is not None:
                    on_result(result)
            if report.stopped == "budget":
                break
    finally:
        if session is None and http is not None:
            http.close()
    report.elapsed_s = clock() - started
    log.info(
        "sync invocation finished",
        extra={
            "fields": {
                "owner": report.owner,
                "synced": len(report.results),
                "rows": report.rows,
                "stopped": report.stopped,
                "elapsed_s": round(report.elapsed_s, 3),
            }
        },
    )
    return report


def sync_connection(
    runtime: Runtime,
    lease: leases.Lease,
    *,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
    session: requests.Session | None = None,
) -> RunResult:
    """Sync one leased connection; always closes its run record and its lease."""
    started = clock()
    result = RunResult(lease.connection_id)
    run_id = runs.start(runtime.worker_db, lease)
    fields = {"connection_id": lease.connection_id, "platform": lease.platform, "run_id": run_id}
    log.info("sync connection started", extra={"fields": fields})
    try:
        _sync(runtime, lease, result, deadline=deadline, clock=clock, session=session)
    except BaseException as exc:
        _classify(exc, result)
        if result.error_class == "internal":
            log.exception("sync connection failed unexpectedly", extra={"fields": fields})
            from shared import observability

            observability.capture_exception(exc, function="sync")
        if not isinstance(exc, Exception):
            raise
    finally:
        result.duration_ms = int((clock() - started) * 1000)
        _version_notice(runtime, lease, result)
        runs.finish(
            runtime.worker_db,
            lease,
            run_id,
            result,
            next_in_s=_next_in_s(runtime, lease.platform),
            rng=rng,
        )
        log.info(
            "sync connection finished",
            extra={"fields": {**fields, **result.public()}},
        )
    return result


# ---------------------------------------------------------------- one connection


def _sync(
    runtime: Runtime,
    lease: leases.Lease,
    result: RunResult,
    *,
    deadline: float,
    clock: Callable[[], float],
    session: requests.Session | None,
) -> None:
    from shared.errors import AccessTokenRejected

    dataset_id = _dataset_id(runtime, lease)
    if dataset_id is None:
        result.outcome, result.error_class = "failed", "dataset_missing"
        result.health.append("no warehouse dataset for this platform: provision it")
        return
    connector = runtime.platforms.connector(lease.platform)
    api = _Api(runtime, lease, connector, session)

    def call(fn: Callable[[ApiClient], T]) -> T:
        # A refused access token gets one fresh token and one retry.
        try:
            return fn(api.client())
        except AccessTokenRejected:
            api.renew()
            return fn(api.client())

    accounts: list[Account] = call(lambda client: connector.accounts(client, lease.account_ids))
    now = dt.datetime.now(dt.UTC)
    finished = True
    for account in accounts:
        if clock() >= deadline:
            finished = False
            break
        window = windows.window_for(
            now,
            account.timezone,
            lookback_days=connector.lookback_days,
            retention_days=connector.retention_days,
            last_synced_at=lease.last_synced_at,
            first_days=runtime.settings.sync_first_days,
        )
        try:
            table = call(_fetcher(connector, account, window))
        except PermissionDenied:
            result.health.append(f"account {account.id}: permission denied")
            continue
        try:
            loaded = runtime.warehouse.replace_slice(
                dataset_id, table, account.id, window.date_from, window.date_to
            )
        except errors.ValidationFailed as exc:
            raise errors.LoadRefused("rows_rejected") from exc
        except errors.CosmaError as exc:
            raise errors.LoadRefused("warehouse_unavailable") from exc
        result.rows += loaded
        result.accounts += 1
        result.widen(window.date_from, window.date_to)
        log.info(
            "sync slice replaced",
            extra={
                "fields": {
                    "connection_id": lease.connection_id,
                    "account_id": account.id,
                    "date_from": str(window.date_from),
                    "date_to": str(window.date_to),
                    "rows": loaded,
                }
            },
        )
    if not finished:
        result.outcome, result.error_class = "unfinished", "budget"
    elif result.health:
        result.outcome = "partial" if result.accounts else "failed"
        result.error_class = "permission_denied"
    else:
        result.outcome = "ok"


def _fetcher(
    connector: Connector, account: Account, window: windows.Window
) -> Callable[[ApiClient], pa.Table]:
    def fetch(client: ApiClient) -> pa.Table:
        return connector.fetch(client, account, window.date_from, window.date_to)

    return fetch


class _Api:
    """The connection's ApiClient, with its token refreshed on first use and on a 401."""

    def __init__(
        self,
        runtime: Runtime,
        lease: leases.Lease,
        connector: Connector,
        session: requests.Session | None,
    ) -> None:
        self.runtime = runtime
        self.lease = lease
        self.session = session
        self.entry = runtime.platforms.platform(lease.platform)
        self.credentials = (
            runtime.platforms.client_id(lease.platform),
            _client_secret(runtime, self.entry),
        )
        self.headers = {
            name: runtime.secrets.get(_header_secret_name(lease.platform, name))
            for name in getattr(connector, "required_headers", ())
        }
        self._client: ApiClient | None = None

    def client(self) -> ApiClient:
        if self._client is None:
            self.renew()
        if self._client is None:  # renew() sets it or raises
            raise RuntimeError("no API client")
        return self._client

    def renew(self) -> None:
        from shared.platforms.reports import ApiClient

        token = refresh.refresh(
            self.runtime,
            self.lease,
            platform=self.entry,
            credentials=self.credentials,
            http=self.session,
            timeout=min(10.0, self.runtime.settings.sync_api_timeout_s),
        )
        self._client = ApiClient(
            self.entry.api_base_url,
            token.access_token,
            timeout=self.runtime.settings.sync_api_timeout_s,
            headers=self.headers,
            session=self.session,
            platform=self.lease.platform,
        )


def _version_notice(runtime: Runtime, lease: leases.Lease, result: RunResult) -> None:
    """Within `versions.WARN_DAYS` of the platform API's sunset the connection's
    health says so, whatever the run's outcome (it changes no outcome)."""
    try:
        version = runtime.platforms.platform(lease.platform).api_version
    except errors.CosmaError:
        return
    if version is None:
        return
    today = dt.datetime.fromtimestamp(runtime.clock(), dt.UTC).date()
    notice = version.notice(today)
    if notice and notice not in result.health:
        result.health.append(notice)


def _client_secret(runtime: Runtime, entry: Platform) -> str:
    from shared.platforms.registry import client_secret_name

    try:
        return runtime.secrets.get(client_secret_name(entry.name))
    except errors.CosmaError:
        # A public client (PKCE) refreshes without one; a configured secret is still used.
        if entry.public_client:
            return ""
        raise


def _header_secret_name(platform: str, header: str) -> str:
    """Where a platform header's value lives in the secrets port: Google Ads'
    `developer-token` is "google-ads-developer-token", Microsoft's `DeveloperToken`
    "microsoft-developer-token"."""
    import re

    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", header).lower().replace("_", "-")
    return f"{platform.replace('_', '-')}-{words}"


def _dataset_id(runtime: Runtime, lease: leases.Lease) -> str | None:
    with runtime.worker_db.transaction() as conn:
        row = conn.execute(_DATASET, (lease.client_id, lease.platform)).fetchone()
    if row is None or row[1] != "ready":
        return None
    return str(row[0])


def _next_in_s(runtime: Runtime, platform: str) -> float:
    """The regular interval, shortened so a refresh token that dies when idle is
    refreshed at least every half of its idle lifetime (every sync refreshes)."""
    interval = float(runtime.settings.sync_interval_s)
    try:
        idle = runtime.platforms.platform(platform).refresh_idle_expiry_s
    except errors.CosmaError:
        idle = None
    return min(interval, idle / 2) if idle else interval


def _classify(exc: BaseException, result: RunResult) -> None:
    """The run's outcome, error class and health text for a failure."""
    from shared.errors import AccessTokenRejected

    result.outcome = "failed"
    if isinstance(exc, InvalidGrant):
        result.outcome, result.error_class = "reauth_required", "invalid_grant"
        result.health.append(refresh.REAUTH_HEALTH)
    elif isinstance(exc, errors.NotActive):
        result.error_class = "not_active"
    elif isinstance(exc, errors.LeaseLost):
        result.error_class = "lease_lost"
    elif isinstance(exc, errors.InvalidToken):
        result.error_class = "credential_unreadable"
        result.health.append(refresh.UNREADABLE_HEALTH)
    elif isinstance(exc, RateLimited):
        result.error_class, result.retry_after = "rate_limited", exc.retry_after
        result.health.append("the provider is rate limiting: retrying after a pause")
    elif isinstance(exc, AccessTokenRejected):
        result.error_class = "access_token_rejected"
        result.health.append("the provider refused a fresh access token")
    elif isinstance(exc, PermissionDenied):
        result.error_class = "permission_denied"
        result.health.append("permission denied by the provider")
    elif isinstance(exc, ProviderUnavailable):
        result.error_class = "provider_unavailable"
        result.health.append("the provider is unavailable: retrying after a pause")
    elif isinstance(exc, ProviderError):
        result.error_class = "provider_error"
        result.health.append("the provider refused a report request")
    elif isinstance(exc, errors.LoadRefused):
        result.error_class = exc.error_class
        result.health.append("the warehouse load failed: previous data kept")
    elif isinstance(exc, errors.Unavailable):
        result.error_class = "unavailable"
    else:
        result.error_class = "internal"
