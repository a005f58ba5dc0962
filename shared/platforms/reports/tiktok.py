"""TikTok API for Business: the synchronous integrated report, ad level, daily.

Requests (token in the `Access-Token` header, no Bearer prefix; paths relative
to the registry's api_base_url, which ends in /open_api/v1.3):
    GET /open_api/v1.3/advertiser/info/?advertiser_ids=[...]&fields=[...]
    GET /open_api/v1.3/report/integrated/get/
        advertiser_id, report_type=BASIC, data_level=AUCTION_AD,
        dimensions=["ad_id","stat_time_day"], metrics=[...],
        start_date, end_date (advertiser timezone), page, page_size
Every answer is the envelope {code, message, request_id, data}; HTTP 200 with a
non-zero `code` is an error (see `tiktok_error`), `data.page_info.total_page`
drives pagination.

Choices:
- Listing the grant's advertisers needs the app secret in the query string
  (`oauth2/advertiser/get`), which we refuse to send: the token exchange already
  answers `advertiser_ids`, and the connection stores them as its configured
  accounts. With none configured, `accounts()` returns [].
- A report with stat_time_day may span at most 30 days: longer ranges are
  split into 30-day chunks.
- `spend` and `total_complete_payment_rate` (the purchase value) are decimal
  strings -> micros exactly. Conversions are `complete_payment`, the purchases
  whose value that is: the optimisation event's count (`conversion`) would pair
  one event's count with another event's value.
- lookback 28 days; retention 365 days (conservative, not confirmed).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.errors import (
    AccessTokenRejected,
    InvalidGrant,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from shared.platforms import tiktok_codes
from shared.platforms.base import Account
from shared.platforms.reports.base import check_range, provider_data
from shared.platforms.reports.normalize import DailyColumns, count, micros, number

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.platforms.reports.http import ApiClient

METRICS = (
    "campaign_id",
    "campaign_name",
    "adgroup_id",
    "impressions",
    "clicks",
    "spend",
    "complete_payment",
    "total_complete_payment_rate",
)
PAGE_SIZE = 1000
MAX_DAYS = 30


def tiktok_error(code: int) -> ProviderError:
    """The envelope's non-zero `code` as our error (the table is `tiktok_codes`)."""
    kind = tiktok_codes.classify(code)
    if kind == "rate":
        return RateLimited("tiktok: rate limited.", retry_after=tiktok_codes.RATE_LIMIT_RETRY_S)
    if kind == "token":
        return AccessTokenRejected("tiktok: the access token was refused.")
    if kind == "grant":
        return InvalidGrant("tiktok: the grant is no longer valid.")
    if kind == "permission":
        return PermissionDenied("tiktok: the grant may not read this advertiser.")
    if kind == "unavailable":
        return ProviderUnavailable(f"tiktok: service error {code}.")
    return ProviderError(f"tiktok: the request was refused ({code}).")


def _data(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ProviderUnavailable("tiktok: an unexpected answer.")
    code = answer.get("code")
    if code != 0:
        raise tiktok_error(int(code) if isinstance(code, int) else -1)
    data = answer.get("data")
    return data if isinstance(data, dict) else {}


def _list(values: Sequence[str]) -> str:
    return json.dumps(list(values), separators=(",", ":"))


class TikTokConnector:
    platform = "tiktok"
    lookback_days = 28
    retention_days = 365

    def accounts(self, api: ApiClient, configured: Sequence[str]) -> list[Account]:
        ids = [c.strip() for c in configured if c.strip()]
        if not ids:
            return []
        if not all(i.isdigit() for i in ids):
            raise errors.ValidationFailed("Not a TikTok advertiser id.")
        found: list[Account] = []
        for start in range(0, len(ids), 100):
            data = _data(
                api.get(
                    "advertiser/info/",
                    params={
                        "advertiser_ids": _list(ids[start : start + 100]),
                        "fields": _list(["advertiser_id", "name", "currency", "timezone"]),
                    },
                    auth="access-token",
                )
            )
            for item in data.get("list", ()):
                found.append(
                    Account(
                        id=str(item.get("advertiser_id")),
                        currency=item.get("currency") or "USD",
                        timezone=item.get("timezone") or "UTC",
                        name=item.get("name") or "",
                    )
                )
        return found

    def fetch(
        self, api: ApiClient, account: Account, date_from: dt.date, date_to: dt.date
    ) -> pa.Table:
        check_range(date_from, date_to)
        if not account.id.isdigit():
            raise errors.ValidationFailed("Not a TikTok advertiser id.")
        cols = DailyColumns()
        start = date_from
        while start <= date_to:
            end = min(date_to, start + dt.timedelta(days=MAX_DAYS - 1))
            self._chunk(api, account, start, end, cols)
            start = end + dt.timedelta(days=1)
        with provider_data(self.platform):
            return cols.table(account.id, account.currency, date_from, date_to)

    def _chunk(
        self, api: ApiClient, account: Account, start: dt.date, end: dt.date, cols: DailyColumns
    ) -> None:
        page = 1
        while True:
            data = _data(
                api.get(
                    "report/integrated/get/",
                    params={
                        "advertiser_id": account.id,
                        "report_type": "BASIC",
                        "data_level": "AUCTION_AD",
                        "dimensions": _list(["ad_id", "stat_time_day"]),
                        "metrics": _list(METRICS),
                        "start_date": start.isoformat(),
                        "end_date": end.isoformat(),
                        "page": page,
                        "page_size": PAGE_SIZE,
                    },
                    auth="access-token",
                )
            )
            with provider_data(self.platform):
                append_rows(cols, data.get("list") or ())
            total = int((data.get("page_info") or {}).get("total_page") or 1)
            if page >= total:
                return
            page += 1


def append_rows(cols: DailyColumns, rows: Any) -> None:
    date, cid, cname = cols.date.append, cols.campaign_id.append, cols.campaign_name.append
    agid, adid = cols.ad_group_id.append, cols.ad_id.append
    imp, clk, spend = cols.impressions.append, cols.clicks.append, cols.spend_micros.append
    conv, value = cols.conversions.append, cols.conversion_value_micros.append
    for row in rows:
        dims = row["dimensions"]
        metrics = row.get("metrics") or {}
        # "2024-01-31 00:00:00" -> "2024-01-31"
        date(dims["stat_time_day"][:10])
        adid(str(dims["ad_id"]))
        cid(str(metrics.get("campaign_id") or ""))
        cname(metrics.get("campaign_name"))
        agid(str(metrics["adgroup_id"]) if metrics.get("adgroup_id") else None)
        imp(count(metrics.get("impressions")))
        clk(count(metrics.get("clicks")))
        spend(micros(metrics.get("spend")))
        conv(number(metrics.get("complete_payment")))
        value(micros(metrics.get("total_complete_payment_rate")))
