"""Meta (Facebook/Instagram) Marketing API: ad-level daily insights.

Requests (Graph API, token in the Authorization header, which Graph accepts;
paths are relative to the registry's api_base_url, which carries the Graph
version, `cloud.META_GRAPH_VERSION`):
    GET  /{v}/me/adaccounts?fields=account_id,name,currency,timezone_name   (grant's accounts)
    GET  /{v}/act_{id}?fields=account_id,name,currency,timezone_name        (configured ones)
    GET  /{v}/act_{id}/insights   level=ad, time_increment=1, time_range, fields, limit
         paginated by `paging.cursors.after` until no `paging.next`
    ranges longer than ASYNC_AFTER_DAYS run as asynchronous report runs:
    POST /{v}/act_{id}/insights -> {report_run_id}
    GET  /{v}/{report_run_id}   until async_status == "Job Completed"
         ("Job Failed" / "Job Skipped" -> ProviderUnavailable)
    GET  /{v}/{report_run_id}/insights   paginated as above

Choices:
- Insights days are in the ad account's timezone (`timezone_name`).
- `spend` is a decimal string in the account currency -> micros exactly.
- Conversions: Meta reports the same purchase under several overlapping
  action types (`omni_purchase` includes pixel, app and offline purchases;
  `purchase` and `offsite_conversion.fb_pixel_purchase` are subsets), so
  summing them double counts. We take the FIRST present of CONVERSION_ACTIONS
  per row, for both `actions` (count) and `action_values` (value).
- lookback 28 days (Meta's longest default attribution window);
  retention 1095 days (Meta serves about 37 months of insights; conservative).
- We follow cursors, never `paging.next` URLs (they can carry a token).
- Error 100 with subcode 1504018 (the insights query is too large or timed out)
  is `ReportTooLarge`, and Meta's guidance is followed: a synchronous request
  is asked again as an asynchronous report run, and a run that is still too
  large is split into two halves of the range (down to single days). Rows of a
  refused attempt are dropped, so nothing is counted twice.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.errors import (
    AccessTokenRejected,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ReportTooLarge,
)
from shared.platforms.base import Account
from shared.platforms.reports.base import days, provider_data
from shared.platforms.reports.normalize import DailyColumns, count, micros, number
from shared.platforms.transport import retry_after_seconds

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.platforms.reports.http import ApiClient

FIELDS = (
    "date_start,account_currency,campaign_id,campaign_name,adset_id,ad_id,"
    "impressions,clicks,spend,actions,action_values"
)
ACCOUNT_FIELDS = "account_id,name,currency,timezone_name"
CONVERSION_ACTIONS = (
    "omni_purchase",
    "purchase",
    "offsite_conversion.fb_pixel_purchase",
)
PAGE_LIMIT = 500
ASYNC_AFTER_DAYS = 31
POLL_INTERVAL_S = 2.0
POLL_TIMEOUT_S = 600.0

_RATE_CODES = {4, 17, 32, 613} | set(range(80000, 80015))
_TOKEN_CODES = {102, 190}
_PERMISSION_CODES = {10, 294} | set(range(200, 300))
_TRANSIENT_CODES = {1, 2}
# Code 100 with this subcode: "the insights query is too large / timed out".
_TOO_LARGE_SUBCODE = 1504018


def meta_errors(status: int, body: Any, headers: Mapping[str, str]) -> ProviderError | None:
    """Meta's error object: `{"error": {"code": 17, "type": "OAuthException", ...}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    if code == 100 and error.get("error_subcode") == _TOO_LARGE_SUBCODE:
        return ReportTooLarge("meta: the insights query was too large for one request.")
    if code in _TOKEN_CODES:
        return AccessTokenRejected("meta: the access token was refused.")
    if code in _RATE_CODES:
        retry = headers.get("Retry-After")
        return RateLimited("meta: rate limited.", retry_after=retry_after_seconds(retry))
    if code in _PERMISSION_CODES:
        return PermissionDenied("meta: the grant may not read this ad account.")
    if code in _TRANSIENT_CODES or error.get("is_transient"):
        return ProviderUnavailable("meta: a transient provider error.")
    return None


def account_id(value: str) -> str:
    digits = value.strip().removeprefix("act_")
    if not digits.isdigit():
        raise errors.ValidationFailed("Not a Meta ad account id.")
    return digits


class MetaConnector:
    platform = "meta"
    lookback_days = 28
    retention_days = 1095

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval_s: float = POLL_INTERVAL_S,
        poll_timeout_s: float = POLL_TIMEOUT_S,
        async_after_days: int = ASYNC_AFTER_DAYS,
    ) -> None:
        self.sleep = sleep
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s
        self.async_after_days = async_after_days

    def accounts(self, api: ApiClient, configured: Sequence[str]) -> list[Account]:
        if configured:
            items = [
                api.get(
                    f"act_{account_id(c)}",
                    params={"fields": ACCOUNT_FIELDS},
                    errors=meta_errors,
                )
                for c in configured
            ]
        else:
            items = list(
                self._pages(api, "me/adaccounts", {"fields": ACCOUNT_FIELDS, "limit": 100})
            )
        return [
            Account(
                id=str(item.get("account_id") or account_id(str(item.get("id", "")))),
                currency=item.get("currency") or "USD",
                timezone=item.get("timezone_name") or "UTC",
                name=item.get("name") or "",
            )
            for item in items
        ]

    def fetch(
        self, api: ApiClient, account: Account, date_from: dt.date, date_to: dt.date
    ) -> pa.Table:
        days(date_from, date_to)
        aid = account_id(account.id)
        cols = DailyColumns()
        self._collect(api, aid, account.currency, date_from, date_to, cols)
        with provider_data(self.platform):
            return cols.table(aid, account.currency, date_from, date_to)

    def _collect(
        self,
        api: ApiClient,
        aid: str,
        currency: str,
        date_from: dt.date,
        date_to: dt.date,
        cols: DailyColumns,
    ) -> None:
        """The range's rows into `cols`: synchronously, else as a report run, else
        in halves (see the module docstring). A refused attempt adds nothing."""
        params: dict[str, Any] = {
            "level": "ad",
            "time_increment": 1,
            "time_range": json.dumps(
                {"since": date_from.isoformat(), "until": date_to.isoformat()},
                separators=(",", ":"),
            ),
            "fields": FIELDS,
            "limit": PAGE_LIMIT,
        }
        if days(date_from, date_to) <= self.async_after_days:
            try:
                cols.extend(self._read(api, f"act_{aid}/insights", params, currency))
                return
            except ReportTooLarge:
                pass  # asked again as a report run
        try:
            path = self._run_async(api, aid, params)
            cols.extend(self._read(api, path, {"limit": PAGE_LIMIT}, currency))
        except ReportTooLarge:
            if date_from == date_to:
                raise
            middle = date_from + (date_to - date_from) // 2
            self._collect(api, aid, currency, date_from, middle, cols)
            self._collect(api, aid, currency, middle + dt.timedelta(days=1), date_to, cols)

    def _read(
        self, api: ApiClient, path: str, params: dict[str, Any], currency: str
    ) -> DailyColumns:
        """Every page of one request, into columns of its own."""
        part = DailyColumns()
        with provider_data(self.platform):
            append_rows(part, self._pages(api, path, params), currency)
        return part

    def _run_async(self, api: ApiClient, aid: str, params: dict[str, Any]) -> str:
        started = api.post(
            f"act_{aid}/insights",
            params={k: v for k, v in params.items() if k != "limit"},
            errors=meta_errors,
        )
        run_id = str((started or {}).get("report_run_id", ""))
        if not run_id.isdigit():
            raise ProviderUnavailable("meta: the report run was not created.")
        waited = 0.0
        while True:
            status = (
                api.get(
                    f"{run_id}",
                    params={"fields": "async_status,async_percent_completion"},
                    errors=meta_errors,
                )
                or {}
            )
            state = status.get("async_status")
            if state == "Job Completed":
                return f"{run_id}/insights"
            if state in ("Job Failed", "Job Skipped"):
                raise ProviderUnavailable("meta: the report run failed.")
            if waited >= self.poll_timeout_s:
                raise ProviderUnavailable("meta: the report run did not finish in time.")
            self.sleep(self.poll_interval_s)
            waited += self.poll_interval_s

    def _pages(self, api: ApiClient, path: str, params: dict[str, Any]) -> Any:
        """Every `data` item over cursor pagination."""
        query = dict(params)
        while True:
            page = api.get(path, params=query, errors=meta_errors) or {}
            yield from page.get("data", ())
            paging = page.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return
            query = {**params, "after": after}


_RANK: dict[Any, int] = {name: rank for rank, name in enumerate(CONVERSION_ACTIONS)}


def _first_action(items: list[dict[str, Any]] | None) -> Any:
    """The value of the highest-precedence conversion action type present."""
    if not items:
        return None
    best, rank = None, len(_RANK)
    for item in items:
        r = _RANK.get(item.get("action_type"), rank)
        if r < rank:
            best, rank = item.get("value"), r
    return best


def append_rows(cols: DailyColumns, rows: Any, currency: str = "USD") -> None:
    """Insights rows into the column lists (the hot loop)."""
    date, cid, cname = cols.date.append, cols.campaign_id.append, cols.campaign_name.append
    agid, adid = cols.ad_group_id.append, cols.ad_id.append
    imp, clk, spend = cols.impressions.append, cols.clicks.append, cols.spend_micros.append
    conv, value = cols.conversions.append, cols.conversion_value_micros.append
    cur = cols.currency.append
    for row in rows:
        date(row["date_start"])
        cid(row["campaign_id"])
        cname(row.get("campaign_name"))
        agid(row.get("adset_id"))
        adid(row.get("ad_id"))
        imp(count(row.get("impressions")))
        clk(count(row.get("clicks")))
        spend(micros(row.get("spend")))
        conv(number(_first_action(row.get("actions"))))
        value(micros(_first_action(row.get("action_values"))))
        cur(row.get("account_currency") or currency)
