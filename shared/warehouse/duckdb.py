"""`DuckDBWarehouse`: the embedded warehouse, one database file per dataset.

Files live at `<warehouse_dir>/<dataset_id>.duckdb`. Every file has a
readers-writer lock in this process: queries share it, anything else that opens
the file (loads, DDL, drop, config, export) takes it alone (DuckDB lets one
process write a file; sorting the locks avoids deadlock when a query spans
several datasets; a waiting writer holds off new readers).

Queries run on warm readers: an in-memory DuckDB instance that ATTACHes the
query's datasets READ_ONLY and then turns off external access and locks its
configuration, so a query can read those datasets and nothing else on the
machine. Each query takes its own `cursor()` of the instance (the documented
way to share one across threads). Readers are cached process-wide, keyed by
their files, at most `_MAX_READERS`, least recently used evicted; creating one
costs ~11-17 ms and a fresh one starts with a cold cache. Invariants:

- whoever takes a file's lock alone first evicts and closes every reader of
  that file. No reader is in use then (users hold the shared lock), so the
  close is immediate. This matters twice over: DuckDB refuses a read-write
  open of a file attached elsewhere in the process, and POSIX drops all of a
  process's locks on a file when any descriptor of it closes;
- a reader evicted while in use (LRU, `close`) is closed by its last user;
- closing a reader drops every cached reader sharing a file with it (the POSIX
  rule above); one of those in use finishes its query without the file's OS
  lock, so only in that window could another process start writing the file;
- a reader idle for `_IDLE_S` is closed by a daemon thread, so its read lock
  does not keep another process (`cosma sync` next to `cosma serve`) from
  writing for long; writers wait up to `_LOCK_WAIT_S` for such a lock.

Loads go through DuckDB's Arrow scan in one transaction: DELETE the slice,
INSERT ... SELECT from the Arrow table, COMMIT (per-row inserts run at ~700
rows/s here; the Arrow scan at ~1M). A failure rolls the whole slice back.

Location, labels and access entries are recorded in `_cosma_dataset` so the
same idempotency rules hold as on BigQuery; they grant nothing locally.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from shared import errors
from shared.warehouse.ids import check_dataset_id
from shared.warehouse.port import (
    LOCATIONS,
    DatasetSpec,
    Dialect,
    QueryParam,
    QueryResult,
    Warehouse,
    as_params,
)
from shared.warehouse.schema import COLUMN_NAMES, COLUMNS, TABLE, conform

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

_MAX_READERS = 8  # warm readers per process (each holds its files open)
# A reader unused this long is closed: long enough for a burst of queries (a
# dashboard), short enough that a process started after a query finds the file free.
_IDLE_S = 0.05
_LOCK_WAIT_S = 1.0  # how long a writer waits for another process's lock on a file


class _FileLock:
    """Many readers or one owner; a waiting owner holds off new readers (no starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._owned = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._owned and not self._waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: not self._owned and not self._readers)
            finally:
                self._waiting -= 1
            self._owned = True
        try:
            yield
        finally:
            with self._cond:
                self._owned = False
                self._cond.notify_all()


_locks: dict[Path, _FileLock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> _FileLock:
    with _locks_guard:
        return _locks.setdefault(path, _FileLock())


class _Reader:
    """One warm in-memory instance with `paths` attached read-only."""

    def __init__(self, paths: tuple[Path, ...], instance: duckdb.DuckDBPyConnection) -> None:
        self.paths = paths
        self.paths_set = frozenset(paths)
        self.instance = instance
        self.locations: dict[str, str] = {}  # dataset id -> location, read once
        self.users = 0
        self.cached = True
        self.last_used = time.monotonic()


class _Readers:
    """The process-wide reader cache. Readers open and close under `_guard`, evictions
    first, so a close never drops the lock of a reader that attached before it (opening
    is slow but rare: hits don't wait for it long)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._wakeup = threading.Condition(self._guard)  # for the reaper
        self._cache: OrderedDict[tuple[Path, ...], _Reader] = OrderedDict()
        self._reaping = False

    def acquire(
        self, paths: tuple[Path, ...], open_reader: Callable[[], _Reader]
    ) -> tuple[_Reader, duckdb.DuckDBPyConnection]:
        """A reader of `paths` and a fresh cursor on it; call with the files' locks shared."""
        with self._guard:
            reader = self._cache.get(paths)
            if reader is None:
                while len(self._cache) >= _MAX_READERS:
                    self._drop(next(iter(self._cache)))
                reader = self._cache[paths] = open_reader()
                self._start_reaper()
            self._cache.move_to_end(paths)
            reader.users += 1
            return reader, reader.instance.cursor()

    def release(self, reader: _Reader, cursor: duckdb.DuckDBPyConnection) -> None:
        with self._guard:
            cursor.close()
            reader.users -= 1
            reader.last_used = time.monotonic()
            if not reader.cached and not reader.users:
                self._close(reader)

    def evict(self, where: Callable[[Path], bool]) -> None:
        """Drop every reader with a file matching `where` (closed now if unused)."""
        with self._guard:
            for paths in [k for k in self._cache if any(where(p) for p in k)]:
                if paths in self._cache:  # else closed with a reader it shared a file with
                    self._drop(paths)

    def snapshot(self) -> list[tuple[Path, ...]]:
        with self._guard:
            return list(self._cache)

    def _drop(self, paths: tuple[Path, ...]) -> None:
        reader = self._cache.pop(paths)
        reader.cached = False
        if not reader.users:
            self._close(reader)

    def _close(self, reader: _Reader) -> None:
        reader.instance.close()
        # POSIX drops the process's lock on a file when any descriptor of it closes, so
        # other readers of these files would read on without it: drop them too (one in
        # use finishes its query first, without the lock: another process could start
        # writing that file meanwhile; local only, and a window of one query).
        shared = [k for k in self._cache if not reader.paths_set.isdisjoint(k)]
        for paths in shared:
            if paths in self._cache:
                self._drop(paths)

    def _start_reaper(self) -> None:
        if self._reaping:
            self._wakeup.notify()
        else:
            self._reaping = True
            threading.Thread(target=self._reap, name="duckdb-readers", daemon=True).start()

    def _reap(self) -> None:
        with self._guard:
            while self._cache:
                now = time.monotonic()
                for paths, reader in list(self._cache.items()):
                    idle = not reader.users and now - reader.last_used >= _IDLE_S
                    if idle and paths in self._cache:  # (else dropped with another)
                        self._drop(paths)
                unused = [r.last_used for r in self._cache.values() if not r.users]
                self._wakeup.wait(max(min(unused, default=now) + _IDLE_S - now, 0.005))
            self._reaping = False


_readers = _Readers()


class _Watchdog:
    """Interrupts queries past their deadline, from one thread for the process (a
    `threading.Timer` per query cost 0.2-0.8 ms to start on a busy machine)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[int, tuple[float, duckdb.DuckDBPyConnection]] = {}
        self._serial = 0
        self._wake_at = float("inf")  # when the thread wakes next; inf: not running

    @contextmanager
    def watching(self, cursor: duckdb.DuckDBPyConnection, timeout_s: float) -> Iterator[None]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._serial += 1
            token = self._serial
            self._due[token] = (deadline, cursor)
            if self._wake_at == float("inf"):
                self._wake_at = deadline
                threading.Thread(target=self._run, name="duckdb-watchdog", daemon=True).start()
            elif deadline < self._wake_at:  # with one timeout setting: never
                self._cond.notify()
        try:
            yield
        finally:
            # Under the condition: the thread never interrupts a cursor once it is released.
            with self._cond:
                self._due.pop(token, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token, (deadline, cursor) in list(self._due.items()):
                    if deadline <= now:
                        del self._due[token]
                        cursor.interrupt()
                # Idle, it still wakes every second: registering then needs no notify.
                self._wake_at = min((d for d, _ in self._due.values()), default=now + 1.0)
                self._cond.wait(self._wake_at - now)


_watchdog = _Watchdog()


def _connect_writable(path: Path) -> duckdb.DuckDBPyConnection:
    """Open `path` read-write, waiting a little for another process's lock (a server's
    warm reader lets go after `_IDLE_S`); DuckDB itself fails at once."""
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@contextmanager
def _write_transaction(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to `path` inside one transaction: committed when the
    block ends, rolled back on any error, closed either way."""
    conn = _connect_writable(path)
    try:
        conn.execute("begin transaction")
        yield conn
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    finally:
        conn.close()


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

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, dataset_id: str) -> Path:
        return self.directory / f"{check_dataset_id(dataset_id)}.duckdb"

    @contextmanager
    def _locked(self, dataset_ids: Sequence[str], *, shared: bool = False) -> Iterator[list[Path]]:
        """The datasets' files, locked: shared for queries; else alone, with their
        readers closed first (see the module docstring)."""
        paths = [self.path_for(d).resolve() for d in dataset_ids]
        with ExitStack() as stack:
            for path in sorted(set(paths)):
                lock = _lock_for(path)
                stack.enter_context(lock.shared() if shared else lock.exclusive())
            if not shared:
                _readers.evict(set(paths).__contains__)
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
            _write_transaction(path) as conn,
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
            _write_transaction(self._existing(path)) as conn,
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
            reader, cursor = _readers.acquire(key, lambda: self._open_reader(key))
            try:
                if any(reader.locations[p.stem] != location for p in key):
                    raise errors.ValidationFailed("A dataset is in another location.")
                with _watchdog.watching(cursor, timeout_s):
                    cursor.execute(sql, values or None)
                    columns = [d[0] for d in cursor.description or []]
                    rows = cursor.fetchall()
            finally:
                _readers.release(reader, cursor)
        return QueryResult(columns=columns, rows=rows, bytes_processed=None)

    def _open_reader(self, paths: tuple[Path, ...]) -> _Reader:
        """A new in-memory instance with `paths` attached read-only, external access off."""
        instance = duckdb.connect(":memory:")
        try:
            reader = _Reader(paths, instance)
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
        return [tuple(p.stem for p in key) for key in _readers.snapshot() if key[0].parent == root]

    def close(self) -> None:
        """Close this directory's readers (those in use close when their query ends)."""
        root = self.directory.resolve()
        _readers.evict(lambda path: path.parent == root)

    def export_parquet(self, dataset_id: str, dest_dir: Path) -> list[Path]:
        import pyarrow.parquet as pq

        with self._locked([dataset_id]) as (path,), _translated():
            conn = duckdb.connect(str(self._existing(path)), read_only=True)
            try:
                relation = conn.sql(_EXPORT)
                table = _arrow(relation)
            finally:
                conn.close()
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / f"{dataset_id}.parquet"
        pq.write_table(table, target)
        return [target]
