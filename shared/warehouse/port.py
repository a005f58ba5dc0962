"""The warehouse port: what the rest of Cosma asks of BigQuery or DuckDB.

Invariants every adapter keeps (the contract tests check them on both):

- `ensure_dataset` is idempotent: an existing dataset with the same location is
  success, and its labels and access entries are brought to the spec; a dataset
  in another location is a Conflict (data never moves silently).
- `replace_slice` replaces one (account, date range) slice in one transaction:
  afterwards the slice holds exactly the given rows, and on any failure it
  still holds the previous ones. Rows outside the slice are rejected before
  anything is written.
- `query` takes values only as parameters; identifiers in the SQL come from
  `table_ref`, which accepts only dataset ids made by `dataset_id_for`.
- Library errors leave an adapter only as `shared.errors` (NotFound, Forbidden,
  Conflict, ValidationFailed, Unavailable). A query in a location other than its
  datasets' is NotFound on both ("No such dataset in this location.").
- `export_parquet` writes the dataset's rows as Parquet objects named
  `<dataset_id>-<shard>.parquet` into an `ExportTarget`, with the daily schema
  exactly (`schema.daily_schema()`: required columns not null, timestamps in UTC):
  BigQuery by an extract job straight into the bucket (no row passes through
  the function), DuckDB through the target's `open_write`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

Dialect = Literal["bigquery", "duckdb"]
WRONG_LOCATION = "No such dataset in this location."

Location = Literal["US", "EU"]
LOCATIONS: tuple[str, ...] = ("US", "EU")


@dataclass(frozen=True)
class DatasetSpec:
    dataset_id: str
    location: str
    labels: Mapping[str, str] = field(default_factory=dict)
    readers: tuple[str, ...] = ()  # service-account emails: READER (the query function)
    writers: tuple[str, ...] = ()  # service-account emails: WRITER (the sync function)


@dataclass(frozen=True)
class QueryParam:
    """A named query parameter. `type` is a BigQuery type name, inferred when omitted."""

    name: str
    value: Any
    type: str | None = None

    def resolved_type(self) -> str:
        return self.type or infer_type(self.value)


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    bytes_processed: int | None = None


class ExportTarget(Protocol):
    """The folder of one export (`shared.export.ExportFolder` is one)."""

    def uri(self, name: str) -> str:
        """`gs://...` where a warehouse writes object `name` by itself, or "" if it cannot."""
        ...

    def open_write(self, name: str, content_type: str = ...) -> AbstractContextManager[BinaryIO]:
        """A binary stream for the new object `name`."""
        ...


def infer_type(value: Any) -> str:
    """The BigQuery type of a Python value (ARRAY<...> for lists)."""
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, Decimal):
        return "NUMERIC"
    if isinstance(value, datetime):
        return "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, list | tuple) and value:
        inner = {infer_type(v) for v in value}
        if len(inner) == 1:
            return f"ARRAY<{inner.pop()}>"
    raise TypeError("query parameters are scalars or non-empty lists of one type")


def as_params(params: Sequence[QueryParam] | Mapping[str, Any]) -> list[QueryParam]:
    if isinstance(params, Mapping):
        return [QueryParam(name, value) for name, value in params.items()]
    return list(params)


class Warehouse(abc.ABC):
    """One isolated dataset per client per platform, each holding the daily table."""

    dialect: Dialect

    @abc.abstractmethod
    def ensure_dataset(self, spec: DatasetSpec) -> None:
        """Create the dataset and its daily table, or confirm they are as specified."""

    @abc.abstractmethod
    def drop_dataset(self, dataset_id: str) -> None:
        """Delete the dataset and everything in it; a missing dataset is fine."""

    @abc.abstractmethod
    def replace_slice(
        self, dataset_id: str, table: pa.Table, account_id: str, date_from: date, date_to: date
    ) -> int:
        """Atomically make the (account, date range) slice hold exactly `table`'s rows."""

    @abc.abstractmethod
    def query(
        self,
        sql: str,
        params: Sequence[QueryParam] | Mapping[str, Any],
        *,
        location: str,
        labels: Mapping[str, str],
        max_bytes_billed: int,
        timeout_s: float,
        datasets: Sequence[str],
    ) -> QueryResult:
        """Run one read-only query over `datasets` in `location`."""

    @abc.abstractmethod
    def table_ref(self, dataset_id: str) -> str:
        """The daily table of `dataset_id`, quoted for this adapter's dialect."""

    @abc.abstractmethod
    def export_parquet(self, dataset_id: str, target: ExportTarget) -> None:
        """Write the dataset's rows as Parquet objects into `target` (see above)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections."""
