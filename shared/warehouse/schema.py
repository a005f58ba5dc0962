"""The normalized daily table every dataset holds, and the checks a slice must pass.

`DAILY_SCHEMA` is the Arrow schema loads are made of; the BigQuery and DuckDB
column types below are derived from the same list, so the three cannot drift.
Money is in micros (integers), never floats; conversions may be fractional.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, NamedTuple

from shared import errors

if TYPE_CHECKING:
    import pyarrow as pa

TABLE = "ad_performance_daily"
PARTITION_FIELD = "date"
CLUSTER_FIELDS: tuple[str, ...] = ("account_id", "campaign_id")


class Column(NamedTuple):
    name: str
    arrow: str  # a pyarrow type factory name
    bigquery: str
    duckdb: str
    required: bool


COLUMNS: tuple[Column, ...] = (
    Column("date", "date32", "DATE", "DATE", True),
    Column("account_id", "string", "STRING", "VARCHAR", True),
    Column("campaign_id", "string", "STRING", "VARCHAR", True),
    Column("campaign_name", "string", "STRING", "VARCHAR", False),
    Column("ad_group_id", "string", "STRING", "VARCHAR", False),
    Column("ad_id", "string", "STRING", "VARCHAR", False),
    Column("impressions", "int64", "INTEGER", "BIGINT", True),
    Column("clicks", "int64", "INTEGER", "BIGINT", True),
    Column("spend_micros", "int64", "INTEGER", "BIGINT", True),
    Column("conversions", "float64", "FLOAT", "DOUBLE", True),
    Column("conversion_value_micros", "int64", "INTEGER", "BIGINT", True),
    Column("currency", "string", "STRING", "VARCHAR", True),
    Column("synced_at", "timestamp_utc", "TIMESTAMP", "TIMESTAMPTZ", True),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    if name == "timestamp_utc":
        return pa.timestamp("us", tz="UTC")
    factory = getattr(pa, name)
    result: pa.DataType = factory()
    return result


def daily_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [pa.field(c.name, _arrow_type(c.arrow), nullable=not c.required) for c in COLUMNS]
    )


def conform(table: pa.Table, account_id: str, date_from: date, date_to: date) -> pa.Table:
    """The slice as `DAILY_SCHEMA`, or ValidationFailed with nothing written.

    Every row must belong to `account_id` and fall in [date_from, date_to]; a row
    outside would be deleted by no one and duplicated by the next load.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not account_id or date_from > date_to:
        raise errors.ValidationFailed("The slice needs an account and date_from <= date_to.")
    missing = [n for n in COLUMN_NAMES if n not in table.column_names]
    extra = [n for n in table.column_names if n not in COLUMN_NAMES]
    if missing or extra:
        raise errors.ValidationFailed(
            "The table does not have the daily columns.",
            errors=[{"loc": ["table"], "msg": f"missing {missing}, unexpected {extra}"}],
        )
    try:
        conformed = table.select(list(COLUMN_NAMES)).cast(daily_schema())
    except (ValueError, TypeError, pa.ArrowNotImplementedError) as exc:
        # Arrow's errors derive from these; a null in a required column is one of them.
        raise errors.ValidationFailed(
            "The table's column types or empty values do not fit."
        ) from exc
    for column in COLUMNS:
        if column.required and conformed.column(column.name).null_count:
            raise errors.ValidationFailed(f"Column {column.name} may not be empty.")
    if conformed.num_rows:
        accounts = pc.unique(conformed.column("account_id")).to_pylist()
        if accounts != [account_id]:
            raise errors.ValidationFailed("Every row must belong to the slice's account.")
        dates = conformed.column("date")
        low, high = pc.min(dates).as_py(), pc.max(dates).as_py()
        if low < date_from or high > date_to:
            raise errors.ValidationFailed("Every row must fall in the slice's date range.")
    return conformed
