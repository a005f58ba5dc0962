"""The sandbox platform's report connector: our own small report API
(`cosma/sandbox_reports.py`), so the local system syncs real HTTP end to end
without any ad platform. Registered by the local bootstrap only
(`cosma/sandbox_platform.py`), never deployed.

    GET /sandbox/api/accounts                 {"accounts": [{id, name, currency, timezone}]}
    GET /sandbox/api/report?account_id=&date_from=&date_to=[&page_token=]
        {"rows": [...], "next_page_token": "..."|null}

Rows carry spend and conversion value as decimal text, like the real platforms,
so the same exact conversion runs. lookback 3 days, retention 365 days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.platforms.base import Account
from shared.platforms.reports.base import check_range, provider_data
from shared.platforms.reports.normalize import DailyColumns, count, micros, number

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.platforms.reports.http import ApiClient


class SandboxConnector:
    platform = "sandbox"
    lookback_days = 3
    retention_days = 365

    def accounts(self, api: ApiClient, configured: Sequence[str]) -> list[Account]:
        answer = api.get("accounts") or {}
        items = [
            Account(
                id=str(a["id"]),
                currency=a.get("currency") or "USD",
                timezone=a.get("timezone") or "UTC",
                name=a.get("name") or "",
            )
            for a in answer.get("accounts", ())
        ]
        if configured:
            wanted = set(configured)
            items = [a for a in items if a.id in wanted]
        return items

    def fetch(
        self, api: ApiClient, account: Account, date_from: dt.date, date_to: dt.date
    ) -> pa.Table:
        check_range(date_from, date_to)
        cols = DailyColumns()
        params: dict[str, Any] = {
            "account_id": account.id,
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
        }
        while True:
            page = api.get("report", params=params) or {}
            with provider_data(self.platform):
                append_rows(cols, page.get("rows") or ())
            token = page.get("next_page_token")
            if not token:
                break
            params = {**params, "page_token": token}
        with provider_data(self.platform):
            return cols.table(account.id, account.currency, date_from, date_to)


def append_rows(cols: DailyColumns, rows: Any) -> None:
    for row in rows:
        cols.date.append(row["date"])
        cols.campaign_id.append(str(row["campaign_id"]))
        cols.campaign_name.append(row.get("campaign_name"))
        cols.ad_group_id.append(row.get("ad_group_id"))
        cols.ad_id.append(row.get("ad_id"))
        cols.impressions.append(count(row.get("impressions")))
        cols.clicks.append(count(row.get("clicks")))
        cols.spend_micros.append(micros(row.get("spend")))
        cols.conversions.append(number(row.get("conversions")))
        cols.conversion_value_micros.append(micros(row.get("conversion_value")))
