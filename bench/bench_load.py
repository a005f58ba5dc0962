"""Bulk load into DuckDB: `replace_slice` through the port vs a plain INSERT ... SELECT.

Both load the same Arrow table (200k daily rows) in the same run: the baseline
is DuckDB's own arrow scan into a fresh table with nothing else, the subject
is the port (validation, per-file lock, DELETE of the slice, INSERT, COMMIT).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa

from shared.warehouse import DAILY_SCHEMA, DatasetSpec, dataset_id_for
from shared.warehouse.duckdb import DuckDBWarehouse

ROWS = 200_000
ROUNDS = 3
START = dt.date(2024, 1, 1)


def _table(rows: int) -> pa.Table:
    span = 365
    dates = [START + dt.timedelta(days=i % span) for i in range(rows)]
    synced = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)
    return pa.table(
        {
            "date": pa.array(dates, pa.date32()),
            "account_id": pa.array(["acct-1"] * rows),
            "campaign_id": pa.array([f"c{i % 500}" for i in range(rows)]),
            "campaign_name": pa.array([f"Campaign {i % 500}" for i in range(rows)]),
            "ad_group_id": pa.array([f"g{i % 2000}" for i in range(rows)]),
            "ad_id": pa.array([f"ad{i}" for i in range(rows)]),
            "impressions": pa.array(range(rows), pa.int64()),
            "clicks": pa.array([i % 100 for i in range(rows)], pa.int64()),
            "spend_micros": pa.array([i * 1000 for i in range(rows)], pa.int64()),
            "conversions": pa.array([i % 7 / 2 for i in range(rows)], pa.float64()),
            "conversion_value_micros": pa.array([i * 10 for i in range(rows)], pa.int64()),
            "currency": pa.array(["EUR"] * rows),
            "synced_at": pa.array([synced] * rows, pa.timestamp("us", tz="UTC")),
        },
        schema=DAILY_SCHEMA,
    )


def _baseline(folder: Path, table: pa.Table) -> float:
    best = float("inf")
    for i in range(ROUNDS):
        conn = duckdb.connect(str(folder / f"plain_{i}.duckdb"))
        conn.execute(
            "create table t (date date, account_id varchar, campaign_id varchar,"
            " campaign_name varchar, ad_group_id varchar, ad_id varchar, impressions bigint,"
            " clicks bigint, spend_micros bigint, conversions double,"
            " conversion_value_micros bigint, currency varchar, synced_at timestamptz)"
        )
        conn.register("incoming", table)
        started = time.perf_counter()
        conn.execute("insert into t select * from incoming")
        best = min(best, time.perf_counter() - started)
        conn.close()
    return best


def _subject(folder: Path, table: pa.Table) -> float:
    warehouse = DuckDBWarehouse(folder / "warehouse")
    dataset_id = dataset_id_for("bench", str(uuid.uuid4()), "sandbox")
    warehouse.ensure_dataset(DatasetSpec(dataset_id, "US"))
    end = START + dt.timedelta(days=364)
    best = float("inf")
    for _ in range(ROUNDS):  # each round replaces the previous round's rows
        started = time.perf_counter()
        loaded = warehouse.replace_slice(dataset_id, table, "acct-1", START, end)
        best = min(best, time.perf_counter() - started)
        assert loaded == table.num_rows
    return best


def run() -> list[str]:
    table = _table(ROWS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plain = _baseline(folder, table)
        port = _subject(folder, table)
    port_rate, plain_rate = ROWS / port, ROWS / plain
    return [
        f"load.duckdb.replace_slice: {port_rate:,.0f} rows/s "
        f"({port_rate / plain_rate:.2f}x vs plain INSERT ... SELECT at {plain_rate:,.0f} rows/s)"
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
