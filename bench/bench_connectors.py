"""Report normalisation: provider JSON pages (bytes, as they come off the wire)
to the daily Arrow table. Subject: the connectors' column-list path (orjson,
string micros). Baseline: the obvious path (stdlib json, one dict per row,
Decimal money, `pa.Table.from_pylist`). The end-to-end figure that carries
the sync goal (JSON pages to the warehouse) is `bench_sync`'s; this one shows
what each real platform's format costs on its own."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from decimal import Decimal

import pyarrow as pa

from shared.platforms.reports import google_ads, meta
from shared.platforms.reports.http import loads
from shared.platforms.reports.normalize import DailyColumns, micros_to_text
from shared.warehouse import DAILY_SCHEMA

ROWS = 200_000
PAGE = 10_000
D1 = dt.date(2024, 1, 1)


def _meta_pages() -> list[bytes]:
    pages = []
    for start in range(0, ROWS, PAGE):
        data = []
        for i in range(start, start + PAGE):
            day = (D1 + dt.timedelta(days=i % 28)).isoformat()
            data.append(
                {
                    "date_start": day,
                    "date_stop": day,
                    "account_currency": "EUR",
                    "campaign_id": str(100 + i % 50),
                    "campaign_name": f"Campaign {i % 50}",
                    "adset_id": str(1000 + i % 500),
                    "ad_id": str(10_000 + i),
                    "impressions": str(1000 + i % 977),
                    "clicks": str(i % 53),
                    "spend": micros_to_text(1_234_567 + i * 101),
                    "actions": [
                        {"action_type": "link_click", "value": "4"},
                        {"action_type": "omni_purchase", "value": "2"},
                    ],
                    "action_values": [{"action_type": "omni_purchase", "value": "25.5"}],
                }
            )
        pages.append(json.dumps({"data": data}).encode())
    return pages


def _google_pages() -> list[bytes]:
    batches = []
    for start in range(0, ROWS, PAGE):
        results = [
            {
                "customer": {"resourceName": "customers/1", "currencyCode": "USD"},
                "campaign": {"resourceName": "x", "id": str(100 + i % 50), "name": "C"},
                "adGroup": {"resourceName": "x", "id": str(1000 + i % 500)},
                "adGroupAd": {"resourceName": "x", "ad": {"resourceName": "x", "id": str(i)}},
                "metrics": {
                    "impressions": str(1000 + i % 977),
                    "clicks": str(i % 53),
                    "costMicros": str(1_234_567 + i),
                    "conversions": 1.5,
                    "conversionsValue": 12.25,
                },
                "segments": {"date": (D1 + dt.timedelta(days=i % 28)).isoformat()},
            }
            for i in range(start, start + PAGE)
        ]
        batches.append({"results": results})
    return [json.dumps(batches).encode()]


def _subject_meta(pages: list[bytes]) -> pa.Table:
    cols = DailyColumns()
    for page in pages:
        meta.append_rows(cols, loads(page)["data"], "EUR")
    return cols.table("1", "EUR", D1, D1 + dt.timedelta(days=30))


def _subject_google(pages: list[bytes]) -> pa.Table:
    cols = DailyColumns()
    for body in pages:
        for batch in loads(body):
            google_ads.append_rows(cols, batch["results"])
    return cols.table("1", "USD", D1, D1 + dt.timedelta(days=30))


def _baseline_meta(pages: list[bytes]) -> pa.Table:
    synced = dt.datetime.now(dt.UTC)
    records = []
    for page in pages:
        for row in json.loads(page)["data"]:
            purchases = [a for a in row["actions"] if a["action_type"] == "omni_purchase"]
            values = [a for a in row["action_values"] if a["action_type"] == "omni_purchase"]
            records.append(
                {
                    "date": dt.date.fromisoformat(row["date_start"]),
                    "account_id": "1",
                    "campaign_id": row["campaign_id"],
                    "campaign_name": row["campaign_name"],
                    "ad_group_id": row["adset_id"],
                    "ad_id": row["ad_id"],
                    "impressions": int(row["impressions"]),
                    "clicks": int(row["clicks"]),
                    "spend_micros": int(Decimal(row["spend"]) * 1_000_000),
                    "conversions": float(purchases[0]["value"]) if purchases else 0.0,
                    "conversion_value_micros": int(Decimal(values[0]["value"]) * 1_000_000)
                    if values
                    else 0,
                    "currency": row["account_currency"],
                    "synced_at": synced,
                }
            )
    return pa.Table.from_pylist(records, schema=DAILY_SCHEMA)


def _once(fn: Callable[[list[bytes]], pa.Table], pages: list[bytes]) -> float:
    started = time.perf_counter()
    table = fn(pages)
    elapsed = time.perf_counter() - started
    if table.num_rows != ROWS:
        raise RuntimeError("wrong row count")
    return elapsed


def run() -> list[str]:
    meta_pages, google_pages = _meta_pages(), _google_pages()
    # Best of three, alternating, so machine load hits baseline and subject alike.
    times: dict[str, float] = {"baseline": 1e9, "meta": 1e9, "google": 1e9}
    for _ in range(3):
        times["baseline"] = min(times["baseline"], _once(_baseline_meta, meta_pages))
        times["meta"] = min(times["meta"], _once(_subject_meta, meta_pages))
        times["google"] = min(times["google"], _once(_subject_google, google_pages))
    baseline, subject, google = (ROWS / times[k] for k in ("baseline", "meta", "google"))
    return [
        f"connectors_meta_json_to_arrow: {subject:,.0f} rows/s ({subject / baseline:.1f}x vs "
        f"per-row dicts + Decimal at {baseline:,.0f} rows/s)",
        f"connectors_google_json_to_arrow: {google:,.0f} rows/s "
        f"({google / baseline:.1f}x vs the same baseline)",
    ]
