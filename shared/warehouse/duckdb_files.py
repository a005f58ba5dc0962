"""`DuckDBFiles`: how one process shares its DuckDB files between threads.

Every file has a readers-writer lock here: queries share it, anything else
that opens the file (loads, DDL, drop, config, export) takes it alone (DuckDB
lets one process write a file; sorting the locks avoids deadlock when a query
spans several datasets; a waiting writer holds off new readers).

Queries run on warm readers: an in-memory DuckDB instance that ATTACHes the
query's files READ_ONLY (the warehouse opens and locks it down). Each query
takes its own `cursor()` of the instance (the documented way to share one
across threads). Readers are cached, keyed by their files, at most
`max_readers`, least recently used evicted; creating one costs ~11-17 ms and a
fresh one starts with a cold cache. Invariants:

- whoever takes a file's lock alone first evicts and closes every reader of
  that file. No reader is in use then (users hold the shared lock), so the
  close is immediate. This matters twice over: DuckDB refuses a read-write
  open of a file attached elsewhere in the process, and POSIX drops all of a
  process's locks on a file when any descriptor of it closes;
- a reader evicted while in use (LRU, `evict`) is closed by its last user;
- closing a reader drops every cached reader sharing a file with it (the POSIX
  rule above); one of those in use finishes its query without the file's OS
  lock, so only in that window could another process start writing the file;
- a reader idle for `idle_s` is closed by a daemon thread, so its read lock
  does not keep another process (`cosma sync` next to `cosma serve`) from
  writing for long; writers wait up to `lock_wait_s` for such a lock.

Because DuckDB and POSIX count per process, every warehouse of a process that
touches the same files must share one `DuckDBFiles`: `process_files()` is that
one, and what `DuckDBWarehouse` uses unless given another (tests give their
own, with their own tunables, over files no other warehouse touches).

Queries past their deadline are interrupted by one `Watchdog` thread (a
`threading.Timer` per query cost 0.2-0.8 ms to start on a busy machine).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import duckdb

__all__ = ["DuckDBFiles", "Reader", "Watchdog", "process_files"]


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


class Reader:
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
    """The reader cache. Readers open and close under `_guard`, evictions first, so a
    close never drops the lock of a reader that attached before it (opening is slow
    but rare: hits don't wait for it long)."""

    def __init__(self, max_readers: int, idle_s: float) -> None:
        self._max = max_readers
        self._idle_s = idle_s
        self._guard = threading.Lock()
        self._wakeup = threading.Condition(self._guard)  # for the reaper
        self._cache: OrderedDict[tuple[Path, ...], Reader] = OrderedDict()
        self._reaping = False

    def acquire(
        self, paths: tuple[Path, ...], open_reader: Callable[[], Reader]
    ) -> tuple[Reader, duckdb.DuckDBPyConnection]:
        """A reader of `paths` and a fresh cursor on it; call with the files' locks shared."""
        with self._guard:
            reader = self._cache.get(paths)
            if reader is None:
                while len(self._cache) >= self._max:
                    self._drop(next(iter(self._cache)))
                reader = self._cache[paths] = open_reader()
                self._start_reaper()
            self._cache.move_to_end(paths)
            reader.users += 1
            return reader, reader.instance.cursor()

    def release(self, reader: Reader, cursor: duckdb.DuckDBPyConnection) -> None:
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

    def _close(self, reader: Reader) -> None:
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
        idle_s = self._idle_s
        with self._guard:
            while self._cache:
                now = time.monotonic()
                for paths, reader in list(self._cache.items()):
                    idle = not reader.users and now - reader.last_used >= idle_s
                    if idle and paths in self._cache:  # (else dropped with another)
                        self._drop(paths)
                unused = [r.last_used for r in self._cache.values() if not r.users]
                self._wakeup.wait(max(min(unused, default=now) + idle_s - now, 0.005))
            self._reaping = False


class Watchdog:
    """Interrupts queries past their deadline, from one thread. The thread ends after
    `linger_s` with nothing to watch and starts again with the next query."""

    def __init__(self, *, linger_s: float = 1.0) -> None:
        self._linger_s = linger_s
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
            elif deadline < self._wake_at:  # with one timeout setting: only while idle
                self._cond.notify()
        try:
            yield
        finally:
            # Under the condition: the thread never interrupts a cursor once it is released.
            with self._cond:
                self._due.pop(token, None)
                if not self._due:
                    # Nothing left to watch: the thread starts its linger now rather
                    # than sleeping until this query's deadline.
                    self._cond.notify()

    def running(self) -> bool:
        with self._cond:
            return self._wake_at != float("inf")

    def _run(self) -> None:
        idle_since: float | None = None
        with self._cond:
            while True:
                now = time.monotonic()
                for token, (deadline, cursor) in list(self._due.items()):
                    if deadline <= now:
                        del self._due[token]
                        cursor.interrupt()
                if self._due:
                    idle_since = None
                    self._wake_at = min(d for d, _ in self._due.values())
                elif idle_since is not None and now - idle_since >= self._linger_s:
                    self._wake_at = float("inf")  # under the condition: the next query restarts it
                    return
                else:
                    # Idle, it still wakes after `linger_s`: registering then needs no notify.
                    idle_since = now if idle_since is None else idle_since
                    self._wake_at = idle_since + self._linger_s
                self._cond.wait(max(self._wake_at - now, 0.0))


class DuckDBFiles:
    """The locks, warm readers and watchdog of the DuckDB files one process uses.

    `max_readers`: warm readers kept (each holds its files open). `idle_s`: a reader
    unused this long is closed: long enough for a burst of queries (a dashboard),
    short enough that a process started after a query finds the file free.
    `lock_wait_s`: how long a writer waits for another process's lock on a file.
    """

    def __init__(
        self, *, max_readers: int = 8, idle_s: float = 0.05, lock_wait_s: float = 1.0
    ) -> None:
        if max_readers < 1 or idle_s <= 0 or lock_wait_s < 0:
            raise ValueError("max_readers >= 1, idle_s > 0 and lock_wait_s >= 0")
        self.max_readers = max_readers
        self.idle_s = idle_s
        self.lock_wait_s = lock_wait_s
        self.watchdog = Watchdog()
        self._readers = _Readers(max_readers, idle_s)
        self._locks: dict[Path, _FileLock] = {}
        self._locks_guard = threading.Lock()

    def _lock_for(self, path: Path) -> _FileLock:
        with self._locks_guard:
            return self._locks.setdefault(path, _FileLock())

    @contextmanager
    def locked(self, paths: Iterable[Path], *, shared: bool) -> Iterator[None]:
        """The files locked: shared for queries; else alone, with their readers closed
        first (see the module docstring). `paths` are resolved."""
        unique = sorted(set(paths))
        with ExitStack() as stack:
            for path in unique:
                lock = self._lock_for(path)
                stack.enter_context(lock.shared() if shared else lock.exclusive())
            if not shared:
                self._readers.evict(set(unique).__contains__)
            yield

    @contextmanager
    def reading(
        self, paths: tuple[Path, ...], open_reader: Callable[[], Reader]
    ) -> Iterator[tuple[Reader, duckdb.DuckDBPyConnection]]:
        """A warm reader of `paths` (opened with `open_reader` on a miss) and a cursor of
        its own; hold the files `locked(..., shared=True)` around it."""
        reader, cursor = self._readers.acquire(paths, open_reader)
        try:
            yield reader, cursor
        finally:
            self._readers.release(reader, cursor)

    def evict(self, where: Callable[[Path], bool]) -> None:
        """Close the readers of the files matching `where` (those in use, when done)."""
        self._readers.evict(where)

    def cached(self) -> list[tuple[Path, ...]]:
        """The files of each cached reader, least recently used first."""
        return self._readers.snapshot()

    def connect_writable(self, path: Path) -> duckdb.DuckDBPyConnection:
        """Open `path` read-write, waiting up to `lock_wait_s` for another process's lock
        (a server's warm reader lets go after its `idle_s`); DuckDB itself fails at once."""
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            try:
                return duckdb.connect(str(path))
            except duckdb.IOException as exc:
                if "Could not set lock" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def write_transaction(self, path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to `path` inside one transaction: committed when the
        block ends, rolled back on any error, closed either way."""
        conn = self.connect_writable(path)
        try:
            conn.execute("begin transaction")
            yield conn
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
        finally:
            conn.close()


_process_files: DuckDBFiles | None = None
_process_guard = threading.Lock()


def process_files() -> DuckDBFiles:
    """The process's `DuckDBFiles` with the default tunables, made on first use."""
    global _process_files
    with _process_guard:
        if _process_files is None:
            _process_files = DuckDBFiles()
        return _process_files
