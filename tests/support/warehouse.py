"""Helpers for warehouse tests: daily rows as Arrow tables, and adapters on local peers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from shared.warehouse import DAILY_SCHEMA

SYNCED_AT = dt.datetime(2024, 2, 1, 12, 0, tzinfo=dt.UTC)


def daily_rows(
    account_id: str,
    days: Sequence[dt.date],
    *,
    campaigns: Sequence[str] = ("c1",),
    clicks: int = 10,
    **overrides: Any,
) -> pa.Table:
    """One row per (day, campaign) for `account_id`, with simple, checkable metrics."""
    rows: list[dict[str, Any]] = []
    for day in days:
        for campaign in campaigns:
            row = {
                "date": day,
                "account_id": account_id,
                "campaign_id": campaign,
                "campaign_name": f"Campaign {campaign}",
                "ad_group_id": None,
                "ad_id": None,
                "impressions": 100,
                "clicks": clicks,
                "spend_micros": 1_500_000,
                "conversions": 1.5,
                "conversion_value_micros": 3_000_000,
                "currency": "EUR",
                "synced_at": SYNCED_AT,
            }
            row.update(overrides)
            rows.append(row)
    return pa.Table.from_pylist(rows, schema=DAILY_SCHEMA)


def days(start: dt.date, count: int) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(count)]
