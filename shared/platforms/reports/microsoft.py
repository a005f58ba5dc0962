"""Microsoft Advertising: Reporting API v13 over its REST (JSON) endpoints.

Requests (headers `Authorization: Bearer`, `DeveloperToken` from the engine's
ApiClient headers, `CustomerId`, `CustomerAccountId`):
    POST {clientcenter}/CustomerManagement/v13/AccountsInfo/Query   the grant's accounts
    POST {clientcenter}/CustomerManagement/v13/Account/Query        currency, timezone, customer
    POST {reporting}/Reporting/v13/GenerateReport/Submit  {"ReportRequest": {...}}
         -> ReportRequestId
    POST {reporting}/Reporting/v13/GenerateReport/Poll    {"ReportRequestId"} until
         ReportRequestStatus.Status == "Success" ("Error" -> ProviderUnavailable)
    GET  ReportRequestStatus.ReportDownloadUrl   a ZIP holding one CSV, fetched
         WITHOUT our token (a pre-signed storage URL on another host); no URL
         means the report is empty.

The reporting and customer-management services live on different hosts
(reporting.api... and clientcenter.api...); the customer host is derived from
the configured base URL by that prefix, or is the same host (local servers).

Choices:
- AdPerformanceReportRequest, Aggregation Daily, FormatVersion 2.0 (ISO dates;
  M/D/YYYY is accepted too), header and footer excluded, ReturnOnlyCompleteData false.
- Days are UTC days: Microsoft documents downloaded report data as relative to
  UTC (`ReportTimeZone` only fixes "today" for predefined periods, which we never
  use), so every account's reporting timezone is UTC, whatever its own zone.
  `ReportTimeZone` is still sent, valid: the account's zone in the report enum's
  spelling (`report_time_zone`).
- `AccountIds` and `AccountId` are strings, as the official REST models type them.
- Spend and Revenue are decimal text -> micros exactly.
- lookback 30 days; retention 1095 days (daily data: conservative, not confirmed).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from shared import errors
from shared.errors import (
    AccessTokenRejected,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from shared.platforms.base import Account
from shared.platforms.reports.base import check_range, provider_data
from shared.platforms.reports.normalize import DailyColumns, count, micros, number
from shared.platforms.transport import retry_after_seconds

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.platforms.reports.http import ApiClient

COLUMNS = (
    "TimePeriod",
    "AccountId",
    "CampaignId",
    "CampaignName",
    "AdGroupId",
    "AdId",
    "Impressions",
    "Clicks",
    "Spend",
    "Conversions",
    "Revenue",
    "CurrencyCode",
)
# The account's `TimeZone` (Customer Management's TimeZoneType) as a `ReportTimeZone`:
# the two enums spell four zones differently; every other name is the same in both
# (tests/conformance/ checks all of them against the official SDK's models).
REPORT_TIME_ZONE_RENAMES: dict[str, str] = {
    "AthensBuckarestIstanbul": "AthensIslandanbulMinsk",
    "IslamabadKarachiTashkent": "IslandamabadKarachiTashkent",
    "MidwayIslandAndSamoa": "MidwayIslandandSamoa",
    "SolomonIslandNewCaledonia": "MagadanSolomonIslandNewCaledonia",
}
POLL_INTERVAL_S = 2.0
POLL_TIMEOUT_S = 900.0


def microsoft_errors(status: int, body: Any, headers: Mapping[str, str]) -> ProviderError | None:
    """The `ApplicationFault` of a failed call: authentication faults are an
    `AdApiFaultDetail` with `Errors`, operation faults an `ApiFaultDetail` with
    `OperationErrors` and `BatchErrors` (codes per Microsoft's "Operation Error
    Codes" page): 117 CallRateExceeded, 109 AuthenticationTokenExpired, 105
    InvalidCredentials (the access token OR the developer token: a refresh is tried
    once, and it is never a dead grant), 106 UserIsNotAuthorized."""
    codes = set(_codes(body))
    if 117 in codes:
        retry = retry_after_seconds(headers.get("Retry-After"))
        return RateLimited("microsoft: call rate exceeded.", retry_after=retry)
    if 109 in codes:
        return AccessTokenRejected("microsoft: the access token has expired.")
    if 105 in codes:
        return AccessTokenRejected(
            "microsoft: the access token or the developer token was refused."
        )
    if 106 in codes:
        return PermissionDenied("microsoft: the user may not read this account.")
    return None


def _codes(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        return []
    codes = [body.get("Code")]
    for key in ("Errors", "OperationErrors", "BatchErrors"):
        items = body.get(key)
        if isinstance(items, list):
            codes.extend(e.get("Code") for e in items if isinstance(e, dict))
    return codes


def report_time_zone(account_zone: str) -> str | None:
    """The account's `TimeZone` in `ReportTimeZone` spelling; None when unknown."""
    if not account_zone.isalpha():
        return None
    return REPORT_TIME_ZONE_RENAMES.get(account_zone, account_zone)


@dataclass(frozen=True)
class MicrosoftAccount(Account):
    """An ad account, the customer that owns it (the CustomerId header) and its own
    time zone as Microsoft names it (`TimeZone`); its reporting days are UTC days."""

    customer_id: str = ""
    time_zone: str = ""


def _digits(value: str, what: str) -> str:
    value = value.strip()
    if not value.isdigit():
        raise errors.ValidationFailed(f"Not a Microsoft Advertising {what} id.")
    return value


def customer_host(base_url: str) -> str:
    parts = urlsplit(base_url)
    if not parts.netloc.startswith("reporting."):
        return base_url  # a local server speaks both services
    host = "clientcenter." + parts.netloc.removeprefix("reporting.")
    return urlunsplit((parts.scheme, host, "", "", ""))


class MicrosoftConnector:
    platform = "microsoft"
    lookback_days = 30
    retention_days = 1095
    required_headers = ("DeveloperToken",)

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval_s: float = POLL_INTERVAL_S,
        poll_timeout_s: float = POLL_TIMEOUT_S,
    ) -> None:
        self.sleep = sleep
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s

    def accounts(self, api: ApiClient, configured: Sequence[str]) -> list[Account]:
        customers = api.with_base_url(customer_host(api.base_url))
        ids = [_digits(c, "account") for c in configured]
        if not ids:
            info = (
                customers.post(
                    "/CustomerManagement/v13/AccountsInfo/Query",
                    json={"CustomerId": None, "OnlyParentAccounts": False},
                    errors=microsoft_errors,
                )
                or {}
            )
            ids = [
                str(a["Id"])
                for a in info.get("AccountsInfo") or []
                if a.get("AccountLifeCycleStatus", "Active") == "Active"
            ]
        found: list[Account] = []
        for aid in ids:
            answer = (
                customers.post(
                    "/CustomerManagement/v13/Account/Query",
                    json={"AccountId": str(aid)},
                    errors=microsoft_errors,
                )
                or {}
            )
            acct = answer.get("Account") or {}
            found.append(
                MicrosoftAccount(
                    id=aid,
                    currency=acct.get("CurrencyCode") or "USD",
                    timezone="UTC",
                    name=acct.get("Name") or "",
                    customer_id=str(acct.get("ParentCustomerId") or ""),
                    time_zone=str(acct.get("TimeZone") or ""),
                )
            )
        return found

    def fetch(
        self, api: ApiClient, account: Account, date_from: dt.date, date_to: dt.date
    ) -> pa.Table:
        check_range(date_from, date_to)
        aid = _digits(account.id, "account")
        headers = {"CustomerAccountId": aid}
        customer = getattr(account, "customer_id", "") or api.headers.get("CustomerId", "")
        if customer:
            headers["CustomerId"] = customer
        time_spec: dict[str, Any] = {
            "CustomDateRangeStart": _date(date_from),
            "CustomDateRangeEnd": _date(date_to),
        }
        zone = report_time_zone(getattr(account, "time_zone", ""))
        if zone:
            time_spec["ReportTimeZone"] = zone
        request = {
            "ReportRequest": {
                "Type": "AdPerformanceReportRequest",
                "ReportName": "cosma-ad-performance",
                "Format": "Csv",
                "FormatVersion": "2.0",
                "ExcludeColumnHeaders": False,
                "ExcludeReportHeader": True,
                "ExcludeReportFooter": True,
                "ReturnOnlyCompleteData": False,
                "Aggregation": "Daily",
                "Columns": list(COLUMNS),
                "Scope": {"AccountIds": [aid]},
                "Time": time_spec,
            }
        }
        submitted = (
            api.post(
                "/Reporting/v13/GenerateReport/Submit",
                json=request,
                headers=headers,
                errors=microsoft_errors,
            )
            or {}
        )
        request_id = submitted.get("ReportRequestId")
        if not request_id:
            raise ProviderUnavailable("microsoft: the report was not accepted.")
        url = self._poll(api, str(request_id), headers)
        cols = DailyColumns()
        if url:
            data = api.get_bytes(url, auth=None)
            with provider_data(self.platform):
                append_csv(cols, _unzip(data), aid, account.currency)
        with provider_data(self.platform):
            return cols.table(aid, account.currency, date_from, date_to)

    def _poll(self, api: ApiClient, request_id: str, headers: dict[str, str]) -> str:
        waited = 0.0
        while True:
            answer = (
                api.post(
                    "/Reporting/v13/GenerateReport/Poll",
                    json={"ReportRequestId": request_id},
                    headers=headers,
                    errors=microsoft_errors,
                )
                or {}
            )
            status = answer.get("ReportRequestStatus") or {}
            state = status.get("Status")
            if state == "Success":
                return str(status.get("ReportDownloadUrl") or "")
            if state == "Error":
                raise ProviderUnavailable("microsoft: the report failed.")
            if waited >= self.poll_timeout_s:
                raise ProviderUnavailable("microsoft: the report did not finish in time.")
            self.sleep(self.poll_interval_s)
            waited += self.poll_interval_s


def _date(day: dt.date) -> dict[str, int]:
    return {"Day": day.day, "Month": day.month, "Year": day.year}


def _unzip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if not names:
                raise ProviderUnavailable("microsoft: the report archive holds no CSV.")
            return archive.read(names[0]).decode("utf-8-sig")
    except zipfile.BadZipFile as exc:
        raise ProviderUnavailable("microsoft: the report archive is unreadable.") from exc


def _iso(value: str) -> str:
    if "/" in value:  # FormatVersion 1.0 spells dates M/D/YYYY
        month, day, year = value.split("/")
        return f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
    return value[:10]


def append_csv(cols: DailyColumns, text: str, account_id: str, currency: str) -> None:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return
    at = {name: i for i, name in enumerate(header)}
    missing = [c for c in COLUMNS if c not in at]
    if missing:
        raise ProviderUnavailable("microsoft: the report lacks expected columns.")
    i_date, i_acct, i_cid = at["TimePeriod"], at["AccountId"], at["CampaignId"]
    i_cname, i_ag, i_ad = at["CampaignName"], at["AdGroupId"], at["AdId"]
    i_imp, i_clk, i_spend = at["Impressions"], at["Clicks"], at["Spend"]
    i_conv, i_rev, i_cur = at["Conversions"], at["Revenue"], at["CurrencyCode"]
    for row in reader:
        if len(row) < len(header) or row[i_acct] != account_id:
            continue  # footers, blank lines, other accounts
        cols.date.append(_iso(row[i_date]))
        cols.campaign_id.append(row[i_cid])
        cols.campaign_name.append(row[i_cname] or None)
        cols.ad_group_id.append(row[i_ag] or None)
        cols.ad_id.append(row[i_ad] or None)
        cols.impressions.append(count(row[i_imp]))
        cols.clicks.append(count(row[i_clk]))
        cols.spend_micros.append(micros(row[i_spend]))
        cols.conversions.append(number(row[i_conv]))
        cols.conversion_value_micros.append(micros(row[i_rev]))
        cols.currency.append(row[i_cur] or currency)
