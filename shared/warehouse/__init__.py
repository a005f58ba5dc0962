"""The warehouse port and its ids and schema; adapters live in their own modules.

    from shared.warehouse import Warehouse, DatasetSpec, dataset_id_for, DAILY_SCHEMA

`BigQueryWarehouse` (`shared.warehouse.bigquery`) and `DuckDBWarehouse`
(`shared.warehouse.duckdb`) are imported only by the runtime that picks one,
so neither google.cloud.bigquery nor duckdb loads unless it is used.
`DAILY_SCHEMA` is built on first access (pyarrow costs ~100 ms to import).
"""

from __future__ import annotations

from typing import Any

from shared.warehouse.ids import dataset_id_for, labels_for
from shared.warehouse.port import (
    DatasetSpec,
    Dialect,
    QueryParam,
    QueryResult,
    Warehouse,
)
from shared.warehouse.schema import COLUMN_NAMES, TABLE

__all__ = [
    "COLUMN_NAMES",
    "DAILY_SCHEMA",
    "TABLE",
    "DatasetSpec",
    "Dialect",
    "QueryParam",
    "QueryResult",
    "Warehouse",
    "dataset_id_for",
    "labels_for",
]


def __getattr__(name: str) -> Any:
    if name == "DAILY_SCHEMA":
        from shared.warehouse.schema import daily_schema

        value = daily_schema()
        globals()[name] = value
        return value
    raise AttributeError(name)
