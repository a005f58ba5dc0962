"""The completeness check: an account's daily totals, read with each platform's own
account-level report, against the sum of the rows a connector loaded.

The fakes serve both, as the real APIs do; a connector whose report misses a
campaign type (Google's Performance Max has no ad-level rows) loads less than the
account was billed, and `assert_complete` says by how much on which day.

    totals = account_totals("google_ads", api, account_id, date_from, date_to)
    assert_complete(table, totals)
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections import defaultdict
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from shared.platforms.reports import ApiClient
from shared.platforms.reports.linkedin import HEADERS
from shared.platforms.reports.normalize import micros
from tests.support.platform_servers import Row, Totals


def assert_complete(table: pa.Table, totals: list[Totals]) -> None:
    loaded: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in table.to_pylist():
        day = loaded[row["date"]]
        day[0] += row["impressions"]
        day[1] += row["clicks"]
        day[2] += row["spend_micros"]
    expected = {t.date: [t.impressions, t.clicks, t.spend_micros] for t in totals}
    assert totals, "the account-level report served no day: nothing to compare"
    assert dict(loaded) == expected, "loaded rows differ from the account's totals"


def account_totals(
    platform: str, api: ApiClient, account_id: str, date_from: dt.date, date_to: dt.date
) -> list[Totals]:
    return _READERS[platform](api, account_id, date_from, date_to)


def _google(api: ApiClient, cid: str, start: dt.date, end: dt.date) -> list[Totals]:
    query = (
        "SELECT segments.date, metrics.impressions, metrics.clicks, metrics.cost_micros "
        f"FROM customer WHERE segments.date BETWEEN '{start}' AND '{end}'"
    )
    batches = api.post(f"/v26/customers/{cid}/googleAds:searchStream", json={"query": query})
    return sorted(
        Totals(
            dt.date.fromisoformat(r["segments"]["date"]),
            int(r["metrics"]["impressions"]),
            int(r["metrics"]["clicks"]),
            int(r["metrics"]["costMicros"]),
        )
        for batch in batches
        for r in batch.get("results", ())
    )


def _meta(api: ApiClient, aid: str, start: dt.date, end: dt.date) -> list[Totals]:
    span = json.dumps({"since": str(start), "until": str(end)}, separators=(",", ":"))
    params = {
        "level": "account",
        "time_increment": 1,
        "time_range": span,
        "fields": "impressions,clicks,spend",
    }
    page = api.get(f"act_{aid}/insights", params=params)
    return [
        Totals(
            dt.date.fromisoformat(d["date_start"]),
            int(d["impressions"]),
            int(d["clicks"]),
            micros(d["spend"]),
        )
        for d in page["data"]
    ]


def _linkedin(api: ApiClient, aid: str, start: dt.date, end: dt.date) -> list[Totals]:
    def day(d: dt.date) -> str:
        return f"(day:{d.day},month:{d.month},year:{d.year})"

    urn = quote(f"urn:li:sponsoredAccount:{aid}", safe="")
    query = (
        f"accounts=List({urn})&dateRange=(end:{day(end)},start:{day(start)})"
        "&fields=dateRange%2Cimpressions%2Cclicks%2CcostInLocalCurrency"
        "&pivots=List(ACCOUNT)&q=statistics&timeGranularity=DAILY"
    )
    answer = api.get(f"adAnalytics?{query}", headers=HEADERS)
    return [
        Totals(
            dt.date(
                e["dateRange"]["start"]["year"],
                e["dateRange"]["start"]["month"],
                e["dateRange"]["start"]["day"],
            ),
            int(e["impressions"]),
            int(e["clicks"]),
            micros(e["costInLocalCurrency"]),
        )
        for e in answer["elements"]
    ]


def _tiktok(api: ApiClient, adv: str, start: dt.date, end: dt.date) -> list[Totals]:
    params = {
        "advertiser_id": adv,
        "report_type": "BASIC",
        "data_level": "AUCTION_ADVERTISER",
        "dimensions": json.dumps(["advertiser_id", "stat_time_day"]),
        "metrics": json.dumps(["impressions", "clicks", "spend"]),
        "start_date": str(start),
        "end_date": str(end),
        "page": 1,
        "page_size": 1000,
    }
    answer = api.get("report/integrated/get/", params=params, auth="access-token")
    return [
        Totals(
            dt.date.fromisoformat(item["dimensions"]["stat_time_day"][:10]),
            int(item["metrics"]["impressions"]),
            int(item["metrics"]["clicks"]),
            micros(item["metrics"]["spend"]),
        )
        for item in answer["data"]["list"]
    ]


def _microsoft(api: ApiClient, aid: str, start: dt.date, end: dt.date) -> list[Totals]:
    def day(d: dt.date) -> dict[str, int]:
        return {"Day": d.day, "Month": d.month, "Year": d.year}

    request: dict[str, Any] = {
        "ReportRequest": {
            "Type": "AccountPerformanceReportRequest",
            "Format": "Csv",
            "FormatVersion": "2.0",
            "ExcludeReportHeader": True,
            "ExcludeReportFooter": True,
            "Aggregation": "Daily",
            "Columns": ["TimePeriod", "AccountId", "Impressions", "Clicks", "Spend"],
            "Scope": {"AccountIds": [aid]},
            "Time": {"CustomDateRangeStart": day(start), "CustomDateRangeEnd": day(end)},
        }
    }
    submitted = api.post("/Reporting/v13/GenerateReport/Submit", json=request)
    status = api.post(
        "/Reporting/v13/GenerateReport/Poll",
        json={"ReportRequestId": submitted["ReportRequestId"]},
    )["ReportRequestStatus"]
    if not status.get("ReportDownloadUrl"):
        return []
    data = api.get_bytes(status["ReportDownloadUrl"], auth=None)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        text = archive.read(archive.namelist()[0]).decode("utf-8-sig")
    return [
        Totals(
            dt.date.fromisoformat(r["TimePeriod"]),
            int(r["Impressions"]),
            int(r["Clicks"]),
            micros(r["Spend"]),
        )
        for r in csv.DictReader(io.StringIO(text))
    ]


_READERS = {
    "google_ads": _google,
    "meta": _meta,
    "linkedin": _linkedin,
    "tiktok": _tiktok,
    "microsoft": _microsoft,
}


def assert_round_trip(table: pa.Table, rows: list[Row]) -> None:
    """Every column of every loaded row is the value the fake platform held: a field
    the connector stops asking for (the fake then stops answering it) shows here."""

    def key(values: tuple[Any, ...]) -> tuple[str, ...]:
        return tuple(str(v) for v in values)

    expected = sorted(
        key(
            (
                r.date,
                r.campaign_id,
                r.campaign_name,
                r.ad_group_id,
                r.ad_id,
                r.impressions,
                r.clicks,
                r.spend_micros,
                float(r.conversions),
                r.value_micros,
                r.currency,
            )
        )
        for r in rows
    )
    got = sorted(
        key(
            (
                r["date"],
                r["campaign_id"],
                r["campaign_name"],
                r["ad_group_id"],
                r["ad_id"],
                r["impressions"],
                r["clicks"],
                r["spend_micros"],
                r["conversions"],
                r["conversion_value_micros"],
                r["currency"],
            )
        )
        for r in table.to_pylist()
    )
    assert got == expected
