"""Sync load path: provider JSON pages -> daily table -> warehouse slice, vs dlt.

Subject: what the engine does per account once the pages have arrived: parse
each JSON page (the ApiClient's parser), normalise its rows with the sandbox
connector (`append_rows` into `DailyColumns`, exact micros), build the Arrow
table and replace the (account, window) slice in DuckDB through the warehouse
port (one transaction). Baseline: dlt's default path loading the same rows,
already parsed into Python dicts (a head start), into DuckDB
(`dlt.pipeline(destination="duckdb").run(rows)`). Same rows, same run.

dlt is an optional benchmark dependency (`pip install -e '.[bench]'`, which
`make bench` does); without it the baseline line says so.
Goal: at least 200k rows/s, and at least 10x dlt's default path.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cosma.sandbox_connector import append_rows
from shared.platforms.reports.http import loads
from shared.platforms.reports.normalize import DailyColumns
from shared.warehouse import DatasetSpec, dataset_id_for
from shared.warehouse.duckdb import DuckDBWarehouse

DAYS = 365
ADS_PER_DAY = 2_000  # one account: 730k rows in the window
PAGE_ROWS = 10_000
DLT_ROWS = 40_000  # dlt's default path runs at a few thousand rows/s
START = dt.date(2025, 1, 1)
ACCOUNT = "bench-acct-1"


def _rows(days: int, per_day: int) -> list[dict[str, Any]]:
    rows = []
    for d in range(days):
        day = (START + dt.timedelta(days=d)).isoformat()
        for i in range(per_day):
            seed = (d * 7919 + i * 104729) % 1_000_003
            rows.append(
                {
                    "date": day,
                    "campaign_id": f"c{i % 40}",
                    "campaign_name": f"Campaign {i % 40}",
                    "ad_group_id": f"g{i % 400}",
                    "ad_id": f"ad{i}",
                    "impressions": str(seed % 100_000),
                    "clicks": str(seed % 3_000),
                    "spend": f"{seed % 500_000 / 100:.2f}",
                    "conversions": (seed % 70) / 10,
                    "conversion_value": f"{seed % 900_000 / 100:.2f}",
                }
            )
    return rows


def _pages(rows: list[dict[str, Any]]) -> list[bytes]:
    pages = []
    for offset in range(0, len(rows), PAGE_ROWS):
        more = offset + PAGE_ROWS < len(rows)
        body = {"rows": rows[offset : offset + PAGE_ROWS], "next_page_token": "x" if more else None}
        pages.append(json.dumps(body).encode())
    return pages


def _subject(pages: list[bytes], warehouse: DuckDBWarehouse, dataset_id: str) -> tuple[int, float]:
    date_to = START + dt.timedelta(days=DAYS - 1)
    started = time.perf_counter()
    cols = DailyColumns()
    for page in pages:
        append_rows(cols, loads(page)["rows"])
    table = cols.table(ACCOUNT, "USD", START, date_to)
    loaded = warehouse.replace_slice(dataset_id, table, ACCOUNT, START, date_to)
    return loaded, time.perf_counter() - started


def _dlt(rows: list[dict[str, Any]], folder: Path) -> float | None:
    try:
        import dlt
    except ImportError:
        return None
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_sync_{uuid.uuid4().hex[:8]}",
        destination=dlt.destinations.duckdb(str(folder / "dlt.duckdb")),
        dataset_name="bench",
        pipelines_dir=str(folder / "pipelines"),
    )
    started = time.perf_counter()
    pipeline.run(rows, table_name="ad_performance_daily")
    return time.perf_counter() - started


def run() -> list[str]:
    rows = _rows(DAYS, ADS_PER_DAY)
    pages = _pages(rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        warehouse = DuckDBWarehouse(folder / "warehouse")
        dataset_id = dataset_id_for("bench", str(uuid.uuid4()), "sandbox")
        warehouse.ensure_dataset(DatasetSpec(dataset_id, "US"))
        _subject(pages[:2], warehouse, dataset_id)  # warm imports and the file
        best = min(_subject(pages, warehouse, dataset_id)[1] for _ in range(3))
        subject_rate = len(rows) / best
        dlt_seconds = _dlt(rows[:DLT_ROWS], folder)
        warehouse.close()
    name = f"sync_json_pages_to_duckdb_{len(rows) // 1000}k_rows"
    if dlt_seconds is None:
        return [
            f"{name}: {subject_rate:,.0f} rows/s (dlt not installed: pip install -e '.[bench]')"
        ]
    dlt_rate = DLT_ROWS / dlt_seconds
    return [
        f"{name}: {subject_rate:,.0f} rows/s ({subject_rate / dlt_rate:.1f}x vs dlt default path"
        f" into DuckDB at {dlt_rate:,.0f} rows/s on {DLT_ROWS // 1000}k dict rows)"
    ]
