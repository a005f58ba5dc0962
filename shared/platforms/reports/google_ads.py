"""Google Ads: GAQL over `googleAds:searchStream`, one row per ad and day.

Requests (REST, JSON field names in lowerCamelCase):
    GET  /{v}/customers:listAccessibleCustomers            roots the grant reaches
    POST /{v}/customers/{root}/googleAds:searchStream      customer_client of each root
    POST /{v}/customers/{id}/googleAds:searchStream        the report (two GAQL queries below)
Headers: `developer-token` (the engine passes it in ApiClient headers) and
`login-customer-id` = the manager through which an account is reached.

Invariants and choices:
- A manager account is never fetched itself: `accounts()` expands every root
  (configured id or accessible customer) to its non-manager `customer_client`
  rows at any depth, remembering the root as the account's login-customer-id.
- `segments.date` is in the account's timezone (`customer.time_zone`), which
  `accounts()` returns as the Account timezone.
- Performance Max campaigns have no ad groups or ads: Google documents that
  `ad_group` and `ad_group_ad` queries return no data for them. Their spend is
  read `FROM campaign`, one row per campaign and day with ad group and ad empty
  (PMAX_GAQL); every other campaign comes from the ad-level query. Together they
  equal the account's totals (`FROM customer`), which the tests hold them to.
- int64 metrics arrive as JSON strings, doubles as numbers; cost is already
  micros. `metrics.conversions_value` is a currency amount -> micros exactly.
- lookback 14 days (conversions keep arriving); retention: 1095 days is our
  conservative bound (Google documents the window per report; not confirmed
  for every field combination).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.platforms import versions
from shared.platforms.base import Account
from shared.platforms.reports.base import check_range, provider_data
from shared.platforms.reports.normalize import DailyColumns, count, micros, number

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.platforms.reports.http import ApiClient

API_VERSION = versions.GOOGLE_ADS.version

REPORT_GAQL = (
    "SELECT segments.date, customer.currency_code, campaign.id, campaign.name, "
    "ad_group.id, ad_group_ad.ad.id, metrics.impressions, metrics.clicks, "
    "metrics.cost_micros, metrics.conversions, metrics.conversions_value "
    "FROM ad_group_ad "
    "WHERE segments.date BETWEEN '{date_from}' AND '{date_to}'"
)
PMAX_GAQL = (
    "SELECT segments.date, customer.currency_code, campaign.id, campaign.name, "
    "metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions, "
    "metrics.conversions_value "
    "FROM campaign "
    "WHERE segments.date BETWEEN '{date_from}' AND '{date_to}' "
    "AND campaign.advertising_channel_type = 'PERFORMANCE_MAX'"
)
CLIENTS_GAQL = (
    "SELECT customer_client.id, customer_client.descriptive_name, "
    "customer_client.currency_code, customer_client.time_zone, customer_client.level, "
    "customer_client.manager, customer_client.status "
    "FROM customer_client "
    "WHERE customer_client.manager = false AND customer_client.status = 'ENABLED' "
    "ORDER BY customer_client.level"
)


@dataclass(frozen=True)
class GoogleAdsAccount(Account):
    """A client account and the manager (or itself) that opens it."""

    login_customer_id: str = ""


def customer_id(value: str) -> str:
    """'123-456-7890' or 'customers/1234567890' -> '1234567890'; anything else is refused."""
    digits = value.strip().removeprefix("customers/").replace("-", "")
    if not digits.isdigit() or not 1 <= len(digits) <= 12:
        raise errors.ValidationFailed("Not a Google Ads customer id.")
    return digits


class GoogleAdsConnector:
    platform = "google_ads"
    lookback_days = 14
    retention_days = 1095
    # Supplied by the sync engine from secrets, as ApiClient headers.
    required_headers = ("developer-token",)

    def accounts(self, api: ApiClient, configured: Sequence[str]) -> list[Account]:
        if configured:
            roots = [customer_id(c) for c in configured]
        else:
            answer = api.get(f"/{API_VERSION}/customers:listAccessibleCustomers")
            roots = [customer_id(r) for r in (answer or {}).get("resourceNames", [])]
        found: dict[str, Account] = {}
        for root in roots:
            for batch in self._stream(api, root, root, CLIENTS_GAQL):
                for row in batch.get("results", ()):
                    client = row.get("customerClient", {})
                    if client.get("manager"):
                        continue
                    cid = str(client.get("id", ""))
                    if not cid or cid in found:
                        continue
                    found[cid] = GoogleAdsAccount(
                        id=cid,
                        currency=client.get("currencyCode") or "USD",
                        timezone=client.get("timeZone") or "UTC",
                        name=client.get("descriptiveName") or "",
                        login_customer_id=root,
                    )
        return list(found.values())

    def fetch(
        self, api: ApiClient, account: Account, date_from: dt.date, date_to: dt.date
    ) -> pa.Table:
        check_range(date_from, date_to)
        cid = customer_id(account.id)
        login = getattr(account, "login_customer_id", "") or api.headers.get(
            "login-customer-id", ""
        )
        span = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()}
        cols = DailyColumns()
        currency = account.currency
        for template in (REPORT_GAQL, PMAX_GAQL):
            for batch in self._stream(api, cid, login, template.format(**span)):
                results = batch.get("results")
                if not results:
                    continue
                with provider_data(self.platform):
                    append_rows(cols, results)
                currency = results[0].get("customer", {}).get("currencyCode") or currency
        with provider_data(self.platform):
            return cols.table(cid, currency, date_from, date_to)

    def _stream(self, api: ApiClient, cid: str, login: str, query: str) -> list[dict[str, Any]]:
        headers = {"login-customer-id": customer_id(login)} if login else None
        answer = api.post(
            f"/{API_VERSION}/customers/{cid}/googleAds:searchStream",
            json={"query": query},
            headers=headers,
        )
        # searchStream over REST answers one JSON array of batches.
        if isinstance(answer, dict):
            return [answer]
        return list(answer or [])


def append_rows(cols: DailyColumns, results: list[dict[str, Any]]) -> None:
    """One searchStream batch into the column lists (the hot loop)."""
    date, cid, cname = cols.date.append, cols.campaign_id.append, cols.campaign_name.append
    agid, adid = cols.ad_group_id.append, cols.ad_id.append
    imp, clk, spend = cols.impressions.append, cols.clicks.append, cols.spend_micros.append
    conv, value = cols.conversions.append, cols.conversion_value_micros.append
    for row in results:
        campaign = row["campaign"]
        metrics = row.get("metrics") or {}
        date(row["segments"]["date"])
        cid(str(campaign["id"]))
        cname(campaign.get("name"))
        ad_group = row.get("adGroup")
        agid(str(ad_group["id"]) if ad_group else None)
        ad = (row.get("adGroupAd") or {}).get("ad")
        adid(str(ad["id"]) if ad else None)
        imp(count(metrics.get("impressions")))
        clk(count(metrics.get("clicks")))
        spend(count(metrics.get("costMicros")))
        conv(number(metrics.get("conversions")))
        value(micros(metrics.get("conversionsValue")))
