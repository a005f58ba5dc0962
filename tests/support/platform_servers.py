"""Local servers speaking each ad platform's report protocol, for connector tests.

Every server records the requests it gets (`server.requests`), serves the rows
a test put in `server.rows` in that platform's wire format, filtered by account
and date range as the real API would, and has switches:

    server.page_size = 2            pagination (cursor, page number or token)
    server.fail(429, retry_after=7) the next request(s) answer a fault instead:
    server.fail(500) / fail(403) / fail(401) / fail("timeout", delay=1.0)
    server.polls_before_done = 2    asynchronous jobs (Meta report runs, Microsoft)

Like the real APIs, each answers only the fields a request asks for (Google's
SELECT list, Meta's and LinkedIn's `fields`, TikTok's `metrics`, Microsoft's
`Columns`): a connector that stops asking for a field stops getting it, and its
tests (and tests/conformance/) see the loss. The shapes are held to the official
SDKs' models in tests/conformance/.

    with serve(MetaServer(rows)) as url: ...
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time
import zipfile
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, unquote

from werkzeug.wrappers import Request, Response

from shared.platforms.reports.normalize import micros_to_text

__all__ = [
    "GoogleAdsServer",
    "LinkedInServer",
    "MetaServer",
    "MicrosoftServer",
    "Row",
    "TikTokServer",
    "Totals",
    "sample_rows",
]


@dataclass(frozen=True)
class Row:
    """One ad-day as the platform holds it; money in micros, rendered as decimal text."""

    account_id: str
    date: dt.date
    campaign_id: str
    ad_group_id: str
    ad_id: str
    campaign_name: str = "Campaign"
    impressions: int = 100
    clicks: int = 5
    spend_micros: int = 1_230_000
    conversions: float = 1.0
    value_micros: int = 10_000_000
    currency: str = "USD"
    # Google Ads' advertising_channel_type: PERFORMANCE_MAX rows have no ad group or
    # ad, and Google serves them at campaign level only.
    channel: str = "SEARCH"


def sample_rows(account_id: str, start: dt.date, days: int, ads: int = 2, **kw: Any) -> list[Row]:
    rows = []
    for d in range(days):
        for a in range(ads):
            rows.append(
                Row(
                    account_id=account_id,
                    date=start + dt.timedelta(days=d),
                    campaign_id=f"{account_id}1{a % 2}",
                    ad_group_id=f"{account_id}2{a}",
                    ad_id=f"{account_id}3{a}{d}",
                    campaign_name=f"Campaign {a % 2}",
                    impressions=100 + d + a,
                    clicks=5 + a,
                    spend_micros=1_230_000 + 10_001 * d + a,
                    conversions=1.5 * a,
                    value_micros=9_990_000 + a,
                    **kw,
                )
            )
    return rows


@dataclass(frozen=True, order=True)
class Totals:
    """One day of an account-level report."""

    date: dt.date
    impressions: int
    clicks: int
    spend_micros: int


@dataclass
class _Fault:
    kind: int | str
    retry_after: str | None = None
    delay: float = 0.0
    path: str = ""


@dataclass
class PlatformServer:
    """WSGI base: record, inject faults, dispatch to `handle`."""

    rows: list[Row] = field(default_factory=list)
    page_size: int = 1000
    polls_before_done: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: deque[_Fault] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(
        self,
        kind: int | str,
        *,
        times: int = 1,
        retry_after: str | None = None,
        delay: float = 1.0,
        path: str = "",
    ) -> None:
        for _ in range(times):
            self.faults.append(_Fault(kind, retry_after, delay, path))

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self.lock:
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": environ.get("QUERY_STRING", ""),
                    "args": {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()},
                    "headers": dict(request.headers),
                    "body": body,
                    "json": json.loads(body) if body[:1] in (b"{", b"[") else None,
                }
            )
            fault = None
            if self.faults and self.faults[0].path in request.path:
                fault = self.faults.popleft()
        response = self._fault(fault) if fault is not None else self.handle(request)
        return response(environ, start_response)

    def _fault(self, fault: _Fault) -> Response:
        if fault.kind == "timeout":
            time.sleep(fault.delay)
            return _json({"late": True})
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        assert isinstance(fault.kind, int)
        return _json({"error": {"message": "fault"}}, fault.kind, headers)

    def handle(self, request: Request) -> Response:  # pragma: no cover - overridden
        raise NotImplementedError

    def select(self, account_id: str, start: dt.date, end: dt.date) -> list[Row]:
        return [r for r in self.rows if r.account_id == account_id and start <= r.date <= end]

    def daily_totals(self, account_id: str, start: dt.date, end: dt.date) -> list[Totals]:
        """The account's totals per day, as the platform's account-level report serves
        them (every row, whatever campaign type: what the account was billed)."""
        days: dict[dt.date, list[Row]] = {}
        for r in self.select(account_id, start, end):
            days.setdefault(r.date, []).append(r)
        return [
            Totals(
                day,
                sum(r.impressions for r in rows),
                sum(r.clicks for r in rows),
                sum(r.spend_micros for r in rows),
            )
            for day, rows in sorted(days.items())
        ]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def _page(items: list[Any], token: str | None, size: int) -> tuple[list[Any], str | None]:
    start = int(token or 0)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


# ---------------------------------------------------------------- Google Ads


@dataclass
class GoogleAdsServer(PlatformServer):
    """searchStream: a JSON array of batches of `page_size` results. `clients` maps a
    root customer id to its customer_client rows (dicts in API field names)."""

    clients: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    accessible: list[str] = field(default_factory=list)

    def handle(self, request: Request) -> Response:
        if request.path.endswith("customers:listAccessibleCustomers"):
            return _json({"resourceNames": [f"customers/{c}" for c in self.accessible]})
        if not request.path.endswith("googleAds:searchStream"):
            return _json({"error": {"code": 404}}, 404)
        cid = request.path.split("/customers/")[1].split("/")[0]
        query = json.loads(request.get_data())["query"]
        resource = query.split(" FROM ")[1].split()[0]
        if resource == "customer_client":
            results = [{"customerClient": c} for c in self.clients.get(cid, [])]
            results = [r for r in results if not r["customerClient"].get("manager")]
        elif resource in ("campaign", "customer"):
            results = self._aggregate(cid, query, resource)
        else:
            between = query.split("BETWEEN '")[1]
            start = dt.date.fromisoformat(between[:10])
            end = dt.date.fromisoformat(between.split("AND '")[1][:10])
            results = [
                {
                    "customer": {"resourceName": f"customers/{cid}", "currencyCode": r.currency},
                    "campaign": {"resourceName": "x", "id": r.campaign_id, "name": r.campaign_name},
                    "adGroup": {"resourceName": "x", "id": r.ad_group_id},
                    "adGroupAd": {"resourceName": "x", "ad": {"resourceName": "x", "id": r.ad_id}},
                    "metrics": {
                        "impressions": str(r.impressions),
                        "clicks": str(r.clicks),
                        "costMicros": str(r.spend_micros),
                        "conversions": r.conversions,
                        "conversionsValue": float(micros_to_text(r.value_micros)),
                    },
                    "segments": {"date": r.date.isoformat()},
                }
                for r in self.select(cid, start, end)
                if r.channel != "PERFORMANCE_MAX"  # as Google: no ad-level rows for PMax
            ]
        selected = gaql_fields(query)
        results = [_prune(result, selected) for result in results]
        mask = ",".join(".".join(_camel(p) for p in path.split(".")) for path in selected)
        batches = [
            {"results": results[i : i + self.page_size], "fieldMask": mask, "requestId": "r"}
            for i in range(0, len(results), self.page_size)
        ] or [{"fieldMask": mask, "requestId": "r"}]
        return _json(batches)

    def _aggregate(self, cid: str, query: str, resource: str) -> list[dict[str, Any]]:
        """`FROM campaign` (per campaign and day, optionally of one channel type) and
        `FROM customer` (the account's daily totals), summed from the rows."""
        between = query.split("BETWEEN '")[1]
        start = dt.date.fromisoformat(between[:10])
        end = dt.date.fromisoformat(between.split("AND '")[1][:10])
        channel = (
            query.split("advertising_channel_type = '")[1].split("'")[0]
            if ("advertising_channel_type = '" in query)
            else None
        )
        groups: dict[tuple[str, ...], list[Row]] = {}
        for r in self.select(cid, start, end):
            if channel is not None and r.channel != channel:
                continue
            key = (
                (r.date.isoformat(), r.campaign_id)
                if resource == "campaign"
                else (r.date.isoformat(),)
            )
            groups.setdefault(key, []).append(r)
        results = []
        for key, rows in groups.items():
            first = rows[0]
            result: dict[str, Any] = {
                "customer": {"resourceName": f"customers/{cid}", "currencyCode": first.currency},
                "metrics": {
                    "impressions": str(sum(r.impressions for r in rows)),
                    "clicks": str(sum(r.clicks for r in rows)),
                    "costMicros": str(sum(r.spend_micros for r in rows)),
                    "conversions": sum(r.conversions for r in rows),
                    "conversionsValue": float(micros_to_text(sum(r.value_micros for r in rows))),
                },
                "segments": {"date": key[0]},
            }
            if resource == "campaign":
                result["campaign"] = {
                    "resourceName": f"customers/{cid}/campaigns/{first.campaign_id}",
                    "id": first.campaign_id,
                    "name": first.campaign_name,
                    "advertisingChannelType": first.channel,
                }
            results.append(result)
        return results


# ---------------------------------------------------------------- Meta


@dataclass
class MetaServer(PlatformServer):
    """Insights with cursor paging, report runs, ad accounts. Conversions are
    rendered under all three overlapping purchase action types, as Meta does."""

    accounts: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Ranges longer than these many days are refused as too large (error 100,
    # subcode 1504018): synchronous requests, and report runs. 0: never.
    sync_limit_days: int = 0
    async_limit_days: int = 0

    def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")[1:]  # drop the version
        args = request.args
        fields = args.get("fields", "")
        if parts == ["me", "adaccounts"]:
            return _json({"data": [_only(a, fields, "id") for a in self.accounts]})
        if len(parts) == 1 and parts[0].startswith("act_"):
            aid = parts[0][4:]
            found = [a for a in self.accounts if a["account_id"] == aid]
            if not found:
                return _json({"error": {"code": 100}}, 400)
            return _json(_only(found[0], fields, "id"))
        if len(parts) == 2 and parts[0].startswith("act_") and parts[1] == "insights":
            params = dict(args)
            limit = self.async_limit_days if request.method == "POST" else self.sync_limit_days
            if limit and _span_days(params["time_range"]) > limit:
                return _json(_TOO_LARGE, 400)
            if request.method == "POST":
                run_id = str(1000 + len(self.runs))
                self.runs[run_id] = {"params": params, "polls": 0, "account": parts[0][4:]}
                return _json({"report_run_id": run_id})
            return self._insights(parts[0][4:], params)
        if len(parts) == 1 and parts[0] in self.runs:
            run = self.runs[parts[0]]
            run["polls"] += 1
            done = run["polls"] > self.polls_before_done
            return _json(
                {
                    "id": parts[0],
                    "async_status": "Job Completed" if done else "Job Running",
                    "async_percent_completion": 100 if done else 50,
                }
            )
        if len(parts) == 2 and parts[0] in self.runs and parts[1] == "insights":
            run = self.runs[parts[0]]
            return self._insights(run["account"], {**run["params"], **dict(args)})
        return _json({"error": {"code": 100}}, 400)

    def _insights(self, aid: str, params: dict[str, Any]) -> Response:
        span = json.loads(params["time_range"])
        since, until = dt.date.fromisoformat(span["since"]), dt.date.fromisoformat(span["until"])
        if params.get("level") == "account":
            totals = self.daily_totals(aid, since, until)
            return _json(
                {
                    "data": [
                        {
                            "account_id": aid,
                            "date_start": t.date.isoformat(),
                            "date_stop": t.date.isoformat(),
                            "impressions": str(t.impressions),
                            "clicks": str(t.clicks),
                            "spend": micros_to_text(t.spend_micros),
                        }
                        for t in totals
                    ]
                }
            )
        rows = self.select(aid, since, until)
        data = [
            {
                "date_start": r.date.isoformat(),
                "date_stop": r.date.isoformat(),
                "account_currency": r.currency,
                "campaign_id": r.campaign_id,
                "campaign_name": r.campaign_name,
                "adset_id": r.ad_group_id,
                "ad_id": r.ad_id,
                "impressions": str(r.impressions),
                "clicks": str(r.clicks),
                "spend": micros_to_text(r.spend_micros),
                "actions": [
                    {"action_type": t, "value": str(r.conversions)}
                    for t in (
                        "link_click",
                        "offsite_conversion.fb_pixel_purchase",
                        "purchase",
                        "omni_purchase",
                    )
                ]
                if r.conversions
                else [{"action_type": "link_click", "value": "3"}],
                "action_values": [
                    {"action_type": t, "value": micros_to_text(r.value_micros)}
                    for t in ("offsite_conversion.fb_pixel_purchase", "purchase", "omni_purchase")
                ]
                if r.conversions
                else [],
            }
            for r in rows
        ]
        # Meta returns date_start and date_stop with every insights row.
        data = [_only(d, params.get("fields", ""), "date_start", "date_stop") for d in data]
        page, after = _page(data, params.get("after"), self.page_size)
        body: dict[str, Any] = {"data": page}
        if after:
            body["paging"] = {"cursors": {"before": "0", "after": after}, "next": "https://x/next"}
        return _json(body)


def gaql_fields(query: str) -> list[str]:
    """The SELECT list of a GAQL query ("metrics.cost_micros", ...)."""
    return [f.strip() for f in query.split("SELECT ", 1)[1].split(" FROM ", 1)[0].split(",")]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _prune(result: dict[str, Any], selected: list[str]) -> dict[str, Any]:
    """Only the selected fields (and each resource's resourceName, which Google
    always returns), in REST JSON's lowerCamelCase."""
    kept: dict[str, Any] = {}
    for path in selected:
        source, target = result, kept
        names = [_camel(p) for p in path.split(".")]
        for name in names[:-1]:
            if not isinstance(source.get(name), dict):
                break
            source = source[name]
            target = target.setdefault(name, {})
            if "resourceName" in source:
                target["resourceName"] = source["resourceName"]
        else:
            if names[-1] in source:
                target[names[-1]] = source[names[-1]]
    return kept


def _only(item: dict[str, Any], fields: str, *always: str) -> dict[str, Any]:
    wanted = {f for f in fields.split(",") if f} | set(always)
    return {k: v for k, v in item.items() if k in wanted}


_TOO_LARGE = {
    "error": {
        "message": "Please reduce the amount of data you're asking for, then retry your request",
        "type": "OAuthException",
        "code": 100,
        "error_subcode": 1504018,
    }
}


def _span_days(time_range: str) -> int:
    span = json.loads(time_range)
    since, until = dt.date.fromisoformat(span["since"]), dt.date.fromisoformat(span["until"])
    return (until - since).days + 1


# ---------------------------------------------------------------- LinkedIn


@dataclass
class LinkedInServer(PlatformServer):
    accounts: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)  # campaign group id -> name

    def handle(self, request: Request) -> Response:
        query = request.environ.get("QUERY_STRING", "")
        path = request.path
        if path == "/rest/adAnalytics":
            return self._analytics(query)
        if path == "/rest/adAccounts" and "q=search" in query:
            items, nxt = _page(self.accounts, request.args.get("pageToken"), self.page_size)
            return _json({"elements": items, "metadata": {"nextPageToken": nxt}})
        if path.startswith("/rest/adAccounts/") and path.endswith("/adCampaignGroups"):
            groups = [{"id": int(k), "name": v} for k, v in self.groups.items()]
            items, nxt = _page(groups, request.args.get("pageToken"), self.page_size)
            return _json({"elements": items, "metadata": {"nextPageToken": nxt}})
        if path.startswith("/rest/adAccounts/"):
            aid = path.rsplit("/", 1)[1]
            found = [a for a in self.accounts if str(a["id"]) == aid]
            return _json(found[0]) if found else _json({"status": 404}, 404)
        return _json({"status": 404}, 404)

    def _analytics(self, query: str) -> Response:
        # Rest.li: dateRange=(start:(year:2024,month:1,day:2),end:(...)), accounts=List(urn...)
        fields = dict(part.split("=", 1) for part in query.split("&"))
        aid = unquote(fields["accounts"])[len("List(") : -1].rsplit(":", 1)[1]
        spec = fields["dateRange"]

        def _day(text: str) -> dt.date:
            values = dict(p.split(":") for p in text.strip("()").split(","))
            return dt.date(int(values["year"]), int(values["month"]), int(values["day"]))

        start_text = spec.split("start:")[1].split(")")[0] + ")"
        end_text = spec.split("end:")[1].split(")")[0] + ")"
        if fields["pivots"] == "List(ACCOUNT)":
            totals = self.daily_totals(aid, _day(start_text), _day(end_text))
            return _json({"elements": [_linkedin_total(aid, t) for t in totals]})
        rows = self.select(aid, _day(start_text), _day(end_text))
        asked = unquote(fields.get("fields", ""))
        elements = [
            {
                "dateRange": {
                    "start": {"year": r.date.year, "month": r.date.month, "day": r.date.day},
                    "end": {"year": r.date.year, "month": r.date.month, "day": r.date.day},
                },
                "pivotValues": [
                    f"urn:li:sponsoredCampaignGroup:{r.campaign_id}",
                    f"urn:li:sponsoredCampaign:{r.ad_group_id}",
                    f"urn:li:sponsoredCreative:{r.ad_id}",
                ],
                "impressions": r.impressions,
                "clicks": r.clicks,
                "costInLocalCurrency": micros_to_text(r.spend_micros),
                "externalWebsiteConversions": r.conversions,
                "conversionValueInLocalCurrency": micros_to_text(r.value_micros),
            }
            for r in rows
        ]
        elements = [_only(e, asked) for e in elements]
        return _json({"elements": elements, "paging": {"count": 10, "start": 0, "links": []}})


def _linkedin_total(aid: str, t: Totals) -> dict[str, Any]:
    day = {"year": t.date.year, "month": t.date.month, "day": t.date.day}
    return {
        "dateRange": {"start": day, "end": day},
        "pivotValues": [f"urn:li:sponsoredAccount:{aid}"],
        "impressions": t.impressions,
        "clicks": t.clicks,
        "costInLocalCurrency": micros_to_text(t.spend_micros),
    }


# ---------------------------------------------------------------- TikTok


@dataclass
class TikTokServer(PlatformServer):
    """Answers HTTP 200 with {code, message, data}; `error_code` makes the next
    answer carry that code instead (TikTok's way of failing)."""

    advertisers: list[dict[str, Any]] = field(default_factory=list)
    error_codes: deque[int] = field(default_factory=deque)

    def handle(self, request: Request) -> Response:
        if self.error_codes:
            return _json({"code": self.error_codes.popleft(), "message": "no", "data": {}})
        args = request.args
        if request.path == "/open_api/v1.3/advertiser/info/":
            ids = json.loads(args["advertiser_ids"])
            found = [a for a in self.advertisers if a["advertiser_id"] in ids]
            return _json({"code": 0, "message": "OK", "data": {"list": found}})
        if request.path != "/open_api/v1.3/report/integrated/get/":
            return _json({"code": 40008, "message": "no such endpoint", "data": {}})
        start = dt.date.fromisoformat(args["start_date"])
        end = dt.date.fromisoformat(args["end_date"])
        if args["data_level"] == "AUCTION_ADVERTISER":
            totals = [
                {
                    "dimensions": {
                        "advertiser_id": args["advertiser_id"],
                        "stat_time_day": f"{t.date.isoformat()} 00:00:00",
                    },
                    "metrics": {
                        "impressions": str(t.impressions),
                        "clicks": str(t.clicks),
                        "spend": micros_to_text(t.spend_micros),
                    },
                }
                for t in self.daily_totals(args["advertiser_id"], start, end)
            ]
            info = {"page": 1, "page_size": 1000, "total_number": len(totals), "total_page": 1}
            return _json({"code": 0, "message": "OK", "data": {"list": totals, "page_info": info}})
        rows = self.select(args["advertiser_id"], start, end)
        size = int(args["page_size"])
        page = int(args["page"])
        chosen = rows[(page - 1) * size : page * size]
        total_page = max(1, -(-len(rows) // size))
        data = [
            {
                "dimensions": {"ad_id": r.ad_id, "stat_time_day": f"{r.date.isoformat()} 00:00:00"},
                "metrics": {
                    "campaign_id": r.campaign_id,
                    "campaign_name": r.campaign_name,
                    "adgroup_id": r.ad_group_id,
                    "impressions": str(r.impressions),
                    "clicks": str(r.clicks),
                    "spend": micros_to_text(r.spend_micros),
                    # The optimisation event's count, which need not be purchases.
                    "conversion": str(r.conversions + 3),
                    "complete_payment": str(r.conversions),
                    "total_complete_payment_rate": micros_to_text(r.value_micros),
                },
            }
            for r in chosen
        ]
        asked = ",".join(json.loads(args["metrics"]))
        for item in data:
            item["metrics"] = _only(item["metrics"], asked)
        info = {
            "page": page,
            "page_size": size,
            "total_number": len(rows),
            "total_page": total_page,
        }
        return _json({"code": 0, "message": "OK", "data": {"list": data, "page_info": info}})


# ---------------------------------------------------------------- Microsoft


_MS_COLUMNS = (
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


@dataclass
class MicrosoftServer(PlatformServer):
    """Customer management and reporting on one host; the report ZIP is served at
    /download/{id} (the test may point `download_base` at another origin)."""

    accounts: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    download_base: str = ""
    report_status: str = "Success"
    date_style: str = "iso"

    def handle(self, request: Request) -> Response:
        path = request.path
        body = json.loads(request.get_data() or b"{}")
        if path == "/CustomerManagement/v13/AccountsInfo/Query":
            # Ids are strings in Microsoft's REST models (the official SDK types them so).
            return _json(
                {
                    "AccountsInfo": [
                        {"Id": str(a["Id"]), "Name": a["Name"], "AccountLifeCycleStatus": "Active"}
                        for a in self.accounts
                    ]
                }
            )
        if path == "/CustomerManagement/v13/Account/Query":
            found = [a for a in self.accounts if str(a["Id"]) == body["AccountId"]]
            if not found:
                return _json(self.fault("ApiFaultDetail", 1102), 400)
            account = {k: str(v) if k.endswith("Id") else v for k, v in found[0].items()}
            return _json({"Account": account})
        if path == "/Reporting/v13/GenerateReport/Submit":
            job = str(len(self.jobs) + 1)
            self.jobs[job] = {"request": body["ReportRequest"], "polls": 0}
            return _json({"ReportRequestId": job})
        if path == "/Reporting/v13/GenerateReport/Poll":
            job = self.jobs[body["ReportRequestId"]]
            job["polls"] += 1
            if job["polls"] <= self.polls_before_done:
                return _json({"ReportRequestStatus": {"Status": "Pending"}})
            url = f"{self.download_base}/download/{body['ReportRequestId']}"
            status: dict[str, Any] = {"Status": self.report_status}
            if self.report_status == "Success" and self._rows(job["request"]):
                status["ReportDownloadUrl"] = url
            return _json({"ReportRequestStatus": status})
        if path.startswith("/download/"):
            spec = self.jobs[path.rsplit("/", 1)[1]]["request"]
            if spec["Type"] == "AccountPerformanceReportRequest":
                return Response(self.totals_archive(spec), mimetype="application/zip")
            archive = self.archive(self._rows(spec), spec["Columns"])
            return Response(archive, mimetype="application/zip")
        return _json({"Code": 404}, 404)

    def _rows(self, spec: dict[str, Any]) -> list[Row]:
        def _day(d: dict[str, int]) -> dt.date:
            return dt.date(d["Year"], d["Month"], d["Day"])

        (aid,) = spec["Scope"]["AccountIds"]
        return self.select(
            aid,
            _day(spec["Time"]["CustomDateRangeStart"]),
            _day(spec["Time"]["CustomDateRangeEnd"]),
        )

    def totals_archive(self, spec: dict[str, Any]) -> bytes:
        """An AccountPerformanceReport (TimePeriod, AccountId, Impressions, Clicks, Spend)."""
        (aid,) = spec["Scope"]["AccountIds"]
        time = spec["Time"]
        start, end = (
            dt.date(time[k]["Year"], time[k]["Month"], time[k]["Day"])
            for k in ("CustomDateRangeStart", "CustomDateRangeEnd")
        )
        lines = ['"TimePeriod","AccountId","Impressions","Clicks","Spend"']
        for t in self.daily_totals(aid, start, end):
            values = [t.date.isoformat(), aid, str(t.impressions), str(t.clicks)]
            lines.append(",".join(f'"{v}"' for v in [*values, micros_to_text(t.spend_micros)]))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("report.csv", "\ufeff" + "\r\n".join(lines) + "\r\n")
        return buffer.getvalue()

    @staticmethod
    def fault(kind: str, *codes: int) -> dict[str, Any]:
        """An ApplicationFault body: AdApiFaultDetail (authentication: `Errors`) or
        ApiFaultDetail (operations: `OperationErrors`)."""
        key = "Errors" if kind == "AdApiFaultDetail" else "OperationErrors"
        errors = [{"Code": c, "ErrorCode": "E", "Message": "x"} for c in codes]
        return {"Type": kind, "TrackingId": "t-1", key: errors}

    def archive(self, rows: Iterable[Row], columns: Iterable[str] = _MS_COLUMNS) -> bytes:
        """The report CSV with the requested `Columns`, in the requested order."""
        names = list(columns)
        lines = [",".join(f'"{name}"' for name in names)]
        for r in rows:
            day = (
                r.date.isoformat()
                if self.date_style == "iso"
                else f"{r.date.month}/{r.date.day}/{r.date.year}"
            )
            cells = {
                "TimePeriod": day,
                "AccountId": r.account_id,
                "CampaignId": r.campaign_id,
                "CampaignName": r.campaign_name,
                "AdGroupId": r.ad_group_id,
                "AdId": r.ad_id,
                "Impressions": str(r.impressions),
                "Clicks": str(r.clicks),
                "Spend": micros_to_text(r.spend_micros),
                "Conversions": str(r.conversions),
                "Revenue": micros_to_text(r.value_micros),
                "CurrencyCode": r.currency,
            }
            values = [cells[name] for name in names]
            lines.append(",".join('"' + v.replace('"', '""') + '"' for v in values))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("report.csv", "\ufeff" + "\r\n".join(lines) + "\r\n")
        return buffer.getvalue()


def with_currency(rows: list[Row], currency: str) -> list[Row]:
    return [replace(r, currency=currency) for r in rows]
