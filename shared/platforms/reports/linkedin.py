"""LinkedIn Marketing API (versioned /rest): ad analytics by creative, daily.

Requests (headers `LinkedIn-Version: YYYYMM`, `X-Restli-Protocol-Version: 2.0.0`,
queries in Rest.li 2.0 syntax encoded exactly as LinkedIn's official client
encodes them (`restli.py`); paths relative to the registry's api_base_url,
https://api.linkedin.com/rest):
    GET /rest/adAccounts/{id}                                   configured accounts
    GET /rest/adAccounts?pageSize=100[&pageToken=...]&q=search
        &search=(status:(values:List(ACTIVE)))                   the grant's accounts
    GET /rest/adAnalytics?accounts=List(urn%3Ali%3AsponsoredAccount%3A{id})
        &dateRange=(end:(day:D,month:M,year:Y),start:(day:D,month:M,year:Y))
        &fields=dateRange%2CpivotValues%2C...&pivots=List(CAMPAIGN_GROUP,CAMPAIGN,CREATIVE)
        &q=statistics&timeGranularity=DAILY
    GET /rest/adAccounts/{id}/adCampaignGroups?pageSize=100&q=search   group names

Choices and simplifications:
- The brief's `q=analytics&pivot=CREATIVE` gives creatives only; the
  statistics finder with three pivots returns each creative's campaign and
  campaign group in the same row (`pivotValues` in pivot order), so no
  creative -> campaign lookups are needed. Mapping: campaign group ->
  campaign_id/campaign_name, LinkedIn campaign -> ad_group_id, creative -> ad_id.
- adAnalytics has no pagination (one answer per request); we ask per range.
- LinkedIn reports days in UTC and ad accounts carry no timezone: Account.timezone = "UTC".
- Conversions = externalWebsiteConversions; value = conversionValueInLocalCurrency;
  spend = costInLocalCurrency (decimal strings -> micros exactly).
- lookback 30 days (post-click conversion window); retention 730 days
  (conservative; LinkedIn documents retention per request type, not confirmed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.platforms import versions
from shared.platforms.base import Account
from shared.platforms.reports import restli
from shared.platforms.reports.base import check_range, provider_data
from shared.platforms.reports.normalize import DailyColumns, count, micros, number

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.platforms.reports.http import ApiClient

LINKEDIN_VERSION = versions.LINKEDIN.version
HEADERS = {"LinkedIn-Version": LINKEDIN_VERSION, "X-Restli-Protocol-Version": "2.0.0"}
FIELDS = (
    "dateRange,pivotValues,impressions,clicks,costInLocalCurrency,"
    "externalWebsiteConversions,conversionValueInLocalCurrency"
)
ACCOUNT_URN = "urn:li:sponsoredAccount:"


def account_id(value: str) -> str:
    digits = value.strip().removeprefix(ACCOUNT_URN)
    if not digits.isdigit():
        raise errors.ValidationFailed("Not a LinkedIn ad account id.")
    return digits


def _rest_date(day: dt.date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}


def analytics_params(aid: str, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
    """The adAnalytics statistics finder for one account and range, by creative."""
    return {
        "q": "statistics",
        "pivots": ["CAMPAIGN_GROUP", "CAMPAIGN", "CREATIVE"],
        "timeGranularity": "DAILY",
        "dateRange": {"start": _rest_date(date_from), "end": _rest_date(date_to)},
        "accounts": [ACCOUNT_URN + aid],
        "fields": FIELDS,
    }


ACTIVE_ACCOUNTS: dict[str, Any] = {"q": "search", "search": {"status": {"values": ["ACTIVE"]}}}
GROUPS: dict[str, Any] = {"q": "search"}


def _urn_id(urn: str) -> str:
    return urn.rsplit(":", 1)[-1]


class LinkedInConnector:
    platform = "linkedin"
    lookback_days = 30
    retention_days = 730

    def accounts(self, api: ApiClient, configured: Sequence[str]) -> list[Account]:
        if configured:
            items = [api.get(f"adAccounts/{account_id(c)}", headers=HEADERS) for c in configured]
        else:
            items = list(self._search(api, "adAccounts", ACTIVE_ACCOUNTS))
        return [
            Account(
                id=str(item.get("id")),
                currency=item.get("currency") or "USD",
                timezone="UTC",
                name=item.get("name") or "",
            )
            for item in items
            if item
        ]

    def fetch(
        self, api: ApiClient, account: Account, date_from: dt.date, date_to: dt.date
    ) -> pa.Table:
        check_range(date_from, date_to)
        aid = account_id(account.id)
        # Built into the URL by hand: requests would percent-encode the Rest.li syntax.
        query = restli.query(analytics_params(aid, date_from, date_to))
        answer = api.get(f"adAnalytics?{query}", headers=HEADERS) or {}
        elements = answer.get("elements") or []
        names = self._group_names(api, aid) if elements else {}
        cols = DailyColumns()
        with provider_data(self.platform):
            append_rows(cols, elements, names)
        with provider_data(self.platform):
            return cols.table(aid, account.currency, date_from, date_to)

    def _group_names(self, api: ApiClient, aid: str) -> dict[str, str]:
        return {
            str(g.get("id")): g.get("name") or ""
            for g in self._search(api, f"adAccounts/{aid}/adCampaignGroups", GROUPS)
        }

    def _search(self, api: ApiClient, path: str, params: dict[str, Any]) -> Any:
        token = ""
        while True:
            page_params = {**params, "pageSize": 100, **({"pageToken": token} if token else {})}
            page = api.get(f"{path}?{restli.query(page_params)}", headers=HEADERS) or {}
            yield from page.get("elements", ())
            token = (page.get("metadata") or {}).get("nextPageToken") or ""
            if not token:
                return


def append_rows(cols: DailyColumns, elements: list[dict[str, Any]], names: dict[str, str]) -> None:
    for element in elements:
        start = element["dateRange"]["start"]
        pivots = element.get("pivotValues") or []
        if len(pivots) != 3:
            continue
        group, campaign, creative = (_urn_id(p) for p in pivots)
        cols.date.append(f"{start['year']:04d}-{start['month']:02d}-{start['day']:02d}")
        cols.campaign_id.append(group)
        cols.campaign_name.append(names.get(group))
        cols.ad_group_id.append(campaign)
        cols.ad_id.append(creative)
        cols.impressions.append(count(element.get("impressions")))
        cols.clicks.append(count(element.get("clicks")))
        cols.spend_micros.append(micros(element.get("costInLocalCurrency")))
        cols.conversions.append(number(element.get("externalWebsiteConversions")))
        cols.conversion_value_micros.append(micros(element.get("conversionValueInLocalCurrency")))
