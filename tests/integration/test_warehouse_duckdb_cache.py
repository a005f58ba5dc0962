"""The DuckDB adapter's warm readers: what caching must not change.

Queries reuse an in-memory instance with the datasets attached read-only; these
tests hold it to the guarantees of a fresh instance per query: writers always
get the file (in this process and, once the reader idles, in another), readers
see a slice wholly old or wholly new, the cache stays bounded, a timeout still
interrupts, and a warm reader is as locked down as a new one.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from shared import errors
from shared.export import ExportFolder
from shared.export.local import LocalExportSink
from shared.warehouse import DatasetSpec, dataset_id_for
from shared.warehouse.duckdb import DuckDBWarehouse
from shared.warehouse.duckdb_files import DuckDBFiles, Watchdog
from tests.support.warehouse import daily_rows, days

JAN = dt.date(2024, 1, 1)
DAYS = 30
END = JAN + dt.timedelta(DAYS - 1)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    """Files of its own, with the default tunables (readers idle out in 50 ms)."""
    warehouse = DuckDBWarehouse(tmp_path / "warehouse", files=DuckDBFiles(lock_wait_s=0.5))
    yield warehouse
    warehouse.close()


@pytest.fixture
def lingering(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    """Readers stay while the test looks at the cache, and at most three of them."""
    files = DuckDBFiles(idle_s=60.0, max_readers=3)
    warehouse = DuckDBWarehouse(tmp_path / "warehouse", files=files)
    yield warehouse
    warehouse.close()


def new_dataset(wh: DuckDBWarehouse, platform: str = "meta", clicks: int = 10) -> str:
    dataset_id = dataset_id_for("test", str(uuid.uuid4()), platform)
    wh.ensure_dataset(DatasetSpec(dataset_id, "US"))
    wh.replace_slice(dataset_id, daily_rows("a1", days(JAN, DAYS), clicks=clicks), "a1", JAN, END)
    return dataset_id


def totals(wh: DuckDBWarehouse, *dataset_ids: str, timeout_s: float = 10) -> tuple[Any, ...]:
    """(rows, min clicks, max clicks) over the datasets' daily tables."""
    union = " union all ".join(f"select clicks from {wh.table_ref(d)}" for d in dataset_ids)
    result = wh.query(
        f"select count(*), min(clicks), max(clicks) from ({union})",
        {},
        location="US",
        labels={},
        max_bytes_billed=10**9,
        timeout_s=timeout_s,
        datasets=list(dataset_ids),
    )
    return tuple(result.rows[0])


def test_a_write_after_a_query_gets_the_file_and_the_next_query_sees_it(
    lingering: DuckDBWarehouse, tmp_path: Path
) -> None:
    wh = lingering
    dataset_id = new_dataset(wh)
    assert totals(wh, dataset_id) == (DAYS, 10, 10)
    assert wh.open_readers() == [(dataset_id,)]
    # Every way of opening the file alone works with a warm reader cached before it.
    wh.replace_slice(dataset_id, daily_rows("a1", days(JAN, DAYS), clicks=20), "a1", JAN, END)
    assert wh.open_readers() == []
    assert totals(wh, dataset_id) == (DAYS, 20, 20)
    wh.ensure_dataset(DatasetSpec(dataset_id, "US", {"env": "test"}))
    assert totals(wh, dataset_id) == (DAYS, 20, 20)
    assert wh.dataset_config(dataset_id)["labels"] == {"env": "test"}
    assert totals(wh, dataset_id) == (DAYS, 20, 20)
    export = ExportFolder(LocalExportSink(tmp_path / "exports"), "org/c/e")
    wh.export_parquet(dataset_id, export)
    assert export.names() == [f"{dataset_id}-000000000000.parquet"]
    assert totals(wh, dataset_id) == (DAYS, 20, 20)
    wh.drop_dataset(dataset_id)
    assert wh.open_readers() == []
    with pytest.raises(errors.NotFound):
        totals(wh, dataset_id)


def test_a_write_evicts_every_reader_of_that_file(lingering: DuckDBWarehouse) -> None:
    wh = lingering
    meta = new_dataset(wh, "meta")
    tiktok = new_dataset(wh, "tiktok", clicks=5)
    assert totals(wh, meta) == (DAYS, 10, 10)
    assert totals(wh, meta, tiktok) == (2 * DAYS, 5, 10)
    assert totals(wh, tiktok) == (DAYS, 5, 5)
    assert len(wh.open_readers()) == 3
    wh.replace_slice(meta, daily_rows("a1", days(JAN, DAYS), clicks=30), "a1", JAN, END)
    # The tiktok reader goes too: closing the blended one dropped the process's
    # lock on the tiktok file (POSIX locks are per process, not per descriptor).
    assert wh.open_readers() == []
    assert totals(wh, meta, tiktok) == (2 * DAYS, 5, 30)


def test_queries_during_writes_see_the_old_or_the_new_slice_never_a_mix(
    wh: DuckDBWarehouse,
) -> None:
    dataset_id = new_dataset(wh)
    written = [10]
    seen: list[tuple[Any, ...]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(totals(wh, dataset_id))
            except BaseException as exc:  # the test reports any of them
                failures.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        for clicks in range(11, 41):
            rows = daily_rows("a1", days(JAN, DAYS), clicks=clicks)
            wh.replace_slice(dataset_id, rows, "a1", JAN, END)
            written.append(clicks)
            time.sleep(0.005)
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert failures == []
    assert len(seen) > 30
    for count, low, high in seen:
        assert count == DAYS and low == high and low in written
    assert totals(wh, dataset_id) == (DAYS, 40, 40)


def test_the_cache_is_bounded_and_evicted_readers_reopen(lingering: DuckDBWarehouse) -> None:
    wh = lingering
    bound = wh.files.max_readers
    assert bound == 3
    dataset_ids = [new_dataset(wh, clicks=i) for i in range(bound + 3)]
    for clicks, dataset_id in enumerate(dataset_ids):
        assert totals(wh, dataset_id) == (DAYS, clicks, clicks)
        assert len(wh.open_readers()) <= bound
    assert wh.open_readers() == [(d,) for d in dataset_ids[-bound:]]
    assert totals(wh, dataset_ids[0]) == (DAYS, 0, 0)
    assert wh.open_readers()[-1] == (dataset_ids[0],)
    assert len(wh.open_readers()) == bound


def test_a_slow_query_is_interrupted_and_the_reader_still_works(wh: DuckDBWarehouse) -> None:
    dataset_id = new_dataset(wh)
    started = time.monotonic()
    with pytest.raises(errors.Unavailable, match="ran out of time"):
        wh.query(
            f"select count(*) from {wh.table_ref(dataset_id)}, range(1000000000) r"
            " where hash(r.range) % 1000003 = 7",
            {},
            location="US",
            labels={},
            max_bytes_billed=10**9,
            timeout_s=0.3,
            datasets=[dataset_id],
        )
    assert time.monotonic() - started < 5
    assert totals(wh, dataset_id) == (DAYS, 10, 10)


@pytest.mark.parametrize(
    "sql",
    [
        "select * from read_csv('/etc/passwd')",
        "attach '/tmp/cosma_cache_test.duckdb' as other",
        "set enable_external_access = true",
        "copy (select 1) to '/tmp/cosma_cache_test.csv'",
    ],
)
def test_a_warm_reader_is_as_locked_down_as_a_new_one(wh: DuckDBWarehouse, sql: str) -> None:
    dataset_id = new_dataset(wh)
    assert totals(wh, dataset_id) == (DAYS, 10, 10)  # the reader is warm now
    with pytest.raises(errors.CosmaError):
        wh.query(
            sql,
            {},
            location="US",
            labels={},
            max_bytes_billed=10**9,
            timeout_s=5,
            datasets=[dataset_id],
        )
    assert not Path("/tmp/cosma_cache_test.csv").exists()
    assert totals(wh, dataset_id) == (DAYS, 10, 10)


def test_a_query_in_another_location_is_refused_by_a_warm_reader(wh: DuckDBWarehouse) -> None:
    dataset_id = new_dataset(wh)
    assert totals(wh, dataset_id) == (DAYS, 10, 10)
    with pytest.raises(errors.NotFound):
        wh.query(
            f"select count(*) from {wh.table_ref(dataset_id)}",
            {},
            location="EU",
            labels={},
            max_bytes_billed=10**9,
            timeout_s=5,
            datasets=[dataset_id],
        )


_CHILD = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from pathlib import Path
    import duckdb
    from shared.warehouse.duckdb import DuckDBWarehouse
    from shared.warehouse.duckdb_files import DuckDBFiles
    from tests.support.warehouse import daily_rows, days
    wh = DuckDBWarehouse(Path(sys.argv[1]), files=DuckDBFiles(lock_wait_s=float(sys.argv[3])))
    jan = dt.date(2024, 1, 1)
    rows = daily_rows("a1", days(jan, 30), clicks=77)
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        duckdb.connect(str(wh.path_for(sys.argv[2]))).close()
        print("opened", flush=True)
    except duckdb.IOException:
        print("refused", flush=True)
    sys.stdin.readline()
    started = time.monotonic()
    wh.replace_slice(sys.argv[2], rows, "a1", jan, jan + dt.timedelta(29))
    print(f"{time.monotonic() - started:.3f}", flush=True)
    """
)


def test_another_process_can_write_once_the_reader_idles(wh: DuckDBWarehouse) -> None:
    """`cosma sync` runs beside `cosma serve`: a cached reader holds a read lock on
    the file, so it must let go when idle, and the adapter's writers wait for that."""
    dataset_id = new_dataset(wh)
    lock_wait_s = 1.5  # the child's: well above this process's idle_s
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(wh.directory), dataset_id, str(lock_wait_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdin is not None and child.stdout is not None

    def query_then(line: str) -> str:
        assert child.stdin is not None and child.stdout is not None
        assert totals(wh, dataset_id)[1] in (10, 77)  # a reader used just now
        child.stdin.write(line)
        child.stdin.flush()
        return child.stdout.readline().strip()

    try:
        assert child.stdout.readline().strip() == "ready"
        # Plain DuckDB fails at once while the warm reader holds its lock ...
        assert query_then("go\n") == "refused"
        # ... the adapter's writer waits until the reader idles out.
        waited = float(query_then("go\n"))
    finally:
        child.wait(timeout=30)
    assert child.returncode == 0
    assert 0 < waited < lock_wait_s
    assert totals(wh, dataset_id) == (DAYS, 77, 77)
    time.sleep(wh.files.idle_s * 4)
    assert wh.open_readers() == []
    plain = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"
    done = subprocess.run([sys.executable, "-c", plain, str(wh.path_for(dataset_id))])
    assert done.returncode == 0


def test_a_writer_in_another_process_still_fails_after_a_bounded_wait(
    wh: DuckDBWarehouse,
) -> None:
    dataset_id = new_dataset(wh)
    code = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True);"
    code += " time.sleep(30)"
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(wh.path_for(dataset_id))], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        started = time.monotonic()
        with pytest.raises(errors.Unavailable):
            wh.replace_slice(
                dataset_id, daily_rows("a1", days(JAN, DAYS), clicks=1), "a1", JAN, END
            )
        wait_s = wh.files.lock_wait_s
        assert wait_s <= time.monotonic() - started < wait_s + 2
    finally:
        holder.kill()
        holder.wait()
    assert totals(wh, dataset_id) == (DAYS, 10, 10)


def test_plain_duckdb_refuses_a_writer_next_to_a_reader_in_one_process(tmp_path: Path) -> None:
    """Why writers evict first: without it the write fails outright."""
    path = str(tmp_path / "x.duckdb")
    duckdb.connect(path).close()
    reader = duckdb.connect(":memory:")
    try:
        reader.execute(f"attach '{path}' as x (read_only)")
        with pytest.raises(duckdb.Error):
            duckdb.connect(path)
    finally:
        reader.close()
    duckdb.connect(path).close()


def test_the_watchdog_thread_ends_when_idle_and_the_next_query_restarts_it() -> None:
    watchdog = Watchdog(linger_s=0.05)
    conn = duckdb.connect(":memory:")
    try:
        with watchdog.watching(conn.cursor(), timeout_s=10):
            assert watchdog.running()
        deadline = time.monotonic() + 5
        while watchdog.running() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not watchdog.running()
        cursor = conn.cursor()
        started = time.monotonic()
        try:
            with pytest.raises(duckdb.InterruptException), watchdog.watching(cursor, 0.2):
                cursor.execute("select count(*) from range(10000000000) r where hash(r.range) = 7")
        finally:
            cursor.close()
        assert time.monotonic() - started < 5
    finally:
        conn.close()
