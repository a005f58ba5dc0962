"""`DuckDBWarehouse`: the embedded warehouse, one database file per dataset.

Files live at `<warehouse_dir>/<dataset_id>.duckdb`. Their locks, warm
readers and query watchdog are a `DuckDBFiles` (`shared.warehouse.duckdb_files`),
shared by every warehouse of the process unless one is given its own.

Queries run on warm readers: an in-memory DuckDB instance that ATTACHes the
query's datasets READ_ONLY and then turns off external access and locks its
configuration, so a query can read those datasets and nothing else on the
machine.

Loads go through DuckDB's Arrow scan in one transaction: DELETE the slice,
INSERT ... SELECT from the Arrow table, COMMIT (per-row inserts run at ~700
rows/s here; the Arrow scan at ~1M). A failure rolls the whole slice back.

Location, labels and access entries are recorded in `_cosma_dataset` so the
same idempotency rules hold as on BigQuery; they grant nothing locally.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from shared import errors
from shared.warehouse.duckdb_files import DuckDBFiles, Reader, process_files
from shared.warehouse.ids import check_dataset_id
from shared.warehouse.port import (
    LOCATIONS,
    WRONG_LOCATION,
    DatasetSpec,
    Dialect,
    ExportTarget,
    QueryParam,
    QueryResult,
    Warehouse,
    as_params,
)
from shared.warehouse.schema import COLUMN_NAMES, COLUMNS, TABLE, conform, daily_schema

if TYPE_CHECKING:
    import pyarrow as pa

_META = "_cosma_dataset"
_COLUMNS_SQL = ", ".join(f'"{name}"' for name in COLUMN_NAMES)
_DDL = (
    f"create table if not exists {TABLE} ("
    + ", ".join(f'"{c.name}" {c.duckdb}{" not null" if c.required else ""}' for c in COLUMNS)
    + ")"
)

# Every identifier below is a constant of this module; values are always parameters.
_META_DDL = f"create table if not exists {_META} (key varchar primary key, value varchar)"
_META_LOCATION = f"select value from {_META} where key = 'location'"  # noqa: S608
_META_UPSERT = f"insert or replace into {_META} (key, value) values (?, ?)"  # noqa: S608
_META_ALL = f"select key, value from {_META}"  # noqa: S608
_DELETE_SLICE = f"delete from {TABLE} where account_id = ? and date between ? and ?"  # noqa: S608
_INSERT_SLICE = f"insert into {TABLE} ({_COLUMNS_SQL}) select {_COLUMNS_SQL} from _cosma_incoming"  # noqa: S608
_EXPORT = f"select {_COLUMNS_SQL} from {TABLE} order by date, account_id, campaign_id"  # noqa: S608


@contextmanager
def _translated() -> Iterator[None]:
    """DuckDB errors become ours here, once."""
    try:
        yield
    except errors.CosmaError:
        raise
    except duckdb.InterruptException as exc:
        raise errors.Unavailable("The query ran out of time.") from exc
    except (
        duckdb.ParserException,
        duckdb.BinderException,
        duckdb.CatalogException,
        duckdb.ConversionException,
        duckdb.ConstraintException,
        duckdb.InvalidInputException,
    ) as exc:
        raise errors.ValidationFailed("The warehouse rejected the statement.") from exc
    except duckdb.Error as exc:
        raise errors.Unavailable("The warehouse is unavailable.") from exc


def _arrow(relation: Any) -> pa.Table:
    # `to_arrow_table` since DuckDB 1.4; `arrow` before it.
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    table: pa.Table = fetch()
    return table


class DuckDBWarehouse(Warehouse):
    dialect: Dialect = "duckdb"

    def __init__(self, directory: Path, *, files: DuckDBFiles | None = None) -> None:
        self.directory = Path(directory)
        # The process's shared one unless given: see shared.warehouse.duckdb_files.
        self.files = files if files is not None else process_files()

    def path_for(self, dataset_id: str) -> Path:
        return self.directory / f"{check_dataset_id(dataset_id)}.duckdb"

    @contextmanager
    def _locked(self, dataset_ids: Sequence[str], *, shared: bool = False) -> Iterator[list[Path]]:
        """The datasets' files, locked: shared for queries; else alone, with their
        readers closed first (see the module docstring)."""
        paths = [self.path_for(d).resolve() for d in dataset_ids]
        with self.files.locked(paths, shared=shared):
            yield paths

    def _existing(self, path: Path) -> Path:
        if not path.exists():
            raise errors.NotFound("No such dataset.")
        return path

    # ------------------------------------------------------------ datasets

    def ensure_dataset(self, spec: DatasetSpec) -> None:
        if spec.location not in LOCATIONS:
            raise errors.ValidationFailed("Unknown location.")
        self.directory.mkdir(parents=True, exist_ok=True)
        with (
            self._locked([spec.dataset_id]) as (path,),
            _translated(),
            self.files.write_transaction(path) as conn,
        ):
            conn.execute(_META_DDL)
            row = conn.execute(_META_LOCATION).fetchone()
            if row is not None and row[0] != spec.location:
                raise errors.Conflict("The dataset exists in another location.")
            conn.execute(_DDL)
            config = {
                "location": spec.location,
                "labels": json.dumps(dict(sorted(spec.labels.items()))),
                "readers": json.dumps(sorted(spec.readers)),
                "writers": json.dumps(sorted(spec.writers)),
            }
            conn.executemany(_META_UPSERT, list(config.items()))

    def dataset_config(self, dataset_id: str) -> dict[str, Any]:
        """Location, labels and access entries as recorded (for tests and operators)."""
        with self._locked([dataset_id]) as (path,), _translated():
            conn = duckdb.connect(str(self._existing(path)), read_only=True)
            try:
                rows = conn.execute(_META_ALL).fetchall()
            finally:
                conn.close()
        config: dict[str, Any] = dict(rows)
        for key in ("labels", "readers", "writers"):
            config[key] = json.loads(config[key])
        return config

    def drop_dataset(self, dataset_id: str) -> None:
        with self._locked([dataset_id]) as (path,):
            for leftover in (path, path.with_name(path.name + ".wal")):
                leftover.unlink(missing_ok=True)

    # ------------------------------------------------------------ loads

    def replace_slice(
        self, dataset_id: str, table: pa.Table, account_id: str, date_from: date, date_to: date
    ) -> int:
        rows = conform(table, account_id, date_from, date_to)
        with (
            self._locked([dataset_id]) as (path,),
            _translated(),
            self.files.write_transaction(self._existing(path)) as conn,
        ):
            conn.execute(_DELETE_SLICE, [account_id, date_from, date_to])
            self._insert(conn, rows)
        return int(rows.num_rows)

    def _insert(self, conn: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
        conn.register("_cosma_incoming", rows)
        try:
            conn.execute(_INSERT_SLICE)
        finally:
            conn.unregister("_cosma_incoming")

    # ------------------------------------------------------------ reads

    def table_ref(self, dataset_id: str) -> str:
        return f'"{check_dataset_id(dataset_id)}".main.{TABLE}'

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
        # Labels and the bytes cap have no meaning locally; location is still checked
        # so a query that would fail on BigQuery (wrong region) fails here too.
        values = {p.name: p.value for p in as_params(params)}
        with self._locked(datasets, shared=True) as paths, _translated():
            key = tuple(sorted(set(paths)))
            with self.files.reading(key, lambda: self._open_reader(key)) as (reader, cursor):
                if any(reader.locations[p.stem] != location for p in key):
                    # BigQuery answers such a query NotFound: the same here.
                    raise errors.NotFound(WRONG_LOCATION)
                with self.files.watchdog.watching(cursor, timeout_s):
                    cursor.execute(sql, values or None)
                    columns = [d[0] for d in cursor.description or []]
                    rows = cursor.fetchall()
        return QueryResult(columns=columns, rows=rows, bytes_processed=None)

    def _open_reader(self, paths: tuple[Path, ...]) -> Reader:
        """A new in-memory instance with `paths` attached read-only, external access off."""
        instance = duckdb.connect(":memory:")
        try:
            reader = Reader(paths, instance)
            for path in paths:
                # The file name is a dataset id that passed check_dataset_id (path_for):
                # safe as an identifier; the path is quoted as a literal.
                dataset_id = path.stem
                literal = str(self._existing(path)).replace("'", "''")
                instance.execute(f"attach '{literal}' as \"{dataset_id}\" (read_only)")
                row = instance.execute(
                    f'select value from "{dataset_id}".main.{_META} where key = ?',  # noqa: S608
                    ["location"],
                ).fetchone()
                reader.locations[dataset_id] = "" if row is None else str(row[0])
            instance.execute("set enable_external_access = false")
            instance.execute("set lock_configuration = true")
        except BaseException:
            instance.close()
            raise
        return reader

    def open_readers(self) -> list[tuple[str, ...]]:
        """The dataset ids of each cached reader under this directory (for tests and
        operators)."""
        root = self.directory.resolve()
        return [tuple(p.stem for p in key) for key in self.files.cached() if key[0].parent == root]

    def close(self) -> None:
        """Close this directory's readers (those in use close when their query ends)."""
        root = self.directory.resolve()
        self.files.evict(lambda path: path.parent == root)

    def export_parquet(self, dataset_id: str, target: ExportTarget) -> None:
        """The rows as one Parquet object, in the daily schema exactly: DuckDB's Arrow
        output marks every column nullable and gives timestamps the session's time
        zone, while BigQuery's extract keeps REQUIRED and writes UTC."""
        import pyarrow.parquet as pq

        with self._locked([dataset_id]) as (path,), _translated():
            conn = duckdb.connect(str(self._existing(path)), read_only=True)
            try:
                table = _arrow(conn.sql(_EXPORT))
            finally:
                conn.close()
        table = table.cast(daily_schema())
        with target.open_write(f"{dataset_id}-000000000000.parquet") as stream:
            pq.write_table(table, stream)
