"""One contract, two adapters: DuckDB on files, BigQuery through the real client
against the local BigQuery server (whose state is an in-memory DuckDB, so the
adapter's SQL really runs). Exports go to a local folder for DuckDB and, for
BigQuery, through its extract job into the local Cloud Storage emulator."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared import errors
from shared.export import ExportFolder, ExportSink
from shared.export.gcs import GCSExportSink
from shared.export.local import LocalExportSink
from shared.warehouse import DatasetSpec, QueryParam, Warehouse, dataset_id_for
from shared.warehouse.bigquery import BigQueryWarehouse
from shared.warehouse.duckdb import DuckDBWarehouse
from shared.warehouse.port import WRONG_LOCATION
from shared.warehouse.schema import daily_schema
from tests.support.bigquery_server import BigQueryServer
from tests.support.storage_emulator import StorageEmulator
from tests.support.warehouse import daily_rows, days

JAN = dt.date(2024, 1, 1)


class FailingInsertDuckDB(DuckDBWarehouse):
    """Fails after the DELETE ran, inside the transaction (a crash mid-load)."""

    fail = False

    def _insert(self, conn: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
        super()._insert(conn, rows)
        if self.fail:
            raise duckdb.IOException("disk went away")


BUCKET = "cosma-test-exports"


class Subject:
    def __init__(
        self, warehouse: Warehouse, break_insert: Callable[[bool], None], sink: ExportSink
    ) -> None:
        self.warehouse = warehouse
        self.break_insert = break_insert
        self.sink = sink

    def p(self, name: str) -> str:
        return f"@{name}" if self.warehouse.dialect == "bigquery" else f"${name}"


@pytest.fixture(scope="module")
def storage() -> Iterator[StorageEmulator]:
    emulator = StorageEmulator()
    with emulator.running():
        emulator.create_bucket(BUCKET)
        yield emulator


@pytest.fixture(scope="module")
def bq_server(storage: StorageEmulator) -> Iterator[BigQueryServer]:
    server = BigQueryServer(storage=storage)
    with server.running():
        yield server


@pytest.fixture(params=["duckdb", "bigquery"])
def subject(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    bq_server: BigQueryServer,
    storage: StorageEmulator,
) -> Iterator[Subject]:
    if request.param == "duckdb":
        duck = FailingInsertDuckDB(tmp_path / "warehouse")

        def break_duck(on: bool) -> None:
            duck.fail = on

        yield Subject(duck, break_duck, LocalExportSink(tmp_path / "exports"))
        return
    bq_server.clear_faults()
    bq = BigQueryWarehouse(
        "cosma-test", endpoint=bq_server.url, retry_deadline_s=0.5, load_retry_initial_s=0.1
    )

    def break_bq(on: bool) -> None:
        bq_server.fail_statement("INSERT INTO" if on else None)

    sink = GCSExportSink(BUCKET, project="cosma-test", endpoint=storage.url)
    yield Subject(bq, break_bq, sink)
    bq_server.clear_faults()
    sink.close()
    bq.close()


def new_dataset(subject: Subject, location: str = "US", platform: str = "meta") -> str:
    dataset_id = dataset_id_for("test", str(uuid.uuid4()), platform)
    subject.warehouse.ensure_dataset(
        DatasetSpec(dataset_id, location, {"env": "test"}, ("q@sa.test",), ("s@sa.test",))
    )
    return dataset_id


def run(subject: Subject, sql: str, params: Any, datasets: list[str], location: str = "US") -> Any:
    return subject.warehouse.query(
        sql,
        params,
        location=location,
        labels={"cosma_test": "contract"},
        max_bytes_billed=10**9,
        timeout_s=10,
        datasets=datasets,
    )


def slice_totals(subject: Subject, dataset_id: str, account: str) -> list[tuple[Any, ...]]:
    wh = subject.warehouse
    result = run(
        subject,
        f"select date, sum(clicks) as clicks, count(*) as n from {wh.table_ref(dataset_id)}"
        f" where account_id = {subject.p('account')} group by date order by date",
        {"account": account},
        [dataset_id],
    )
    return [tuple(r) for r in result.rows]


def test_ensure_dataset_is_idempotent(subject: Subject) -> None:
    dataset_id = new_dataset(subject)
    spec = DatasetSpec(dataset_id, "US", {"env": "test"}, ("q@sa.test",), ("s@sa.test",))
    subject.warehouse.ensure_dataset(spec)
    subject.warehouse.ensure_dataset(spec)
    assert slice_totals(subject, dataset_id, "acct") == []


def test_a_dataset_never_changes_location(subject: Subject) -> None:
    dataset_id = new_dataset(subject, "US")
    with pytest.raises(errors.Conflict):
        subject.warehouse.ensure_dataset(DatasetSpec(dataset_id, "EU"))


def test_replace_slice_replaces_only_that_slice(subject: Subject) -> None:
    wh = subject.warehouse
    dataset_id = new_dataset(subject)
    assert (
        wh.replace_slice(
            dataset_id, daily_rows("a1", days(JAN, 5)), "a1", JAN, JAN + dt.timedelta(4)
        )
        == 5
    )
    wh.replace_slice(dataset_id, daily_rows("a2", days(JAN, 5)), "a2", JAN, JAN + dt.timedelta(4))
    # A re-sync of days 2-3 with new numbers: replaced, not duplicated; other days kept.
    fresh = daily_rows("a1", days(JAN + dt.timedelta(1), 2), clicks=99)
    assert (
        wh.replace_slice(dataset_id, fresh, "a1", JAN + dt.timedelta(1), JAN + dt.timedelta(2)) == 2
    )
    assert [r[1:] for r in slice_totals(subject, dataset_id, "a1")] == [
        (10, 1),
        (99, 1),
        (99, 1),
        (10, 1),
        (10, 1),
    ]
    assert [r[1:] for r in slice_totals(subject, dataset_id, "a2")] == [(10, 1)] * 5
    # An empty load empties the slice (the platform reported nothing for those days).
    wh.replace_slice(dataset_id, daily_rows("a1", []), "a1", JAN, JAN + dt.timedelta(1))
    assert len(slice_totals(subject, dataset_id, "a1")) == 3


@pytest.mark.parametrize(
    "rows, why",
    [
        (lambda: daily_rows("other", [JAN]), "another account"),
        (lambda: daily_rows("a1", [JAN - dt.timedelta(1)]), "before the range"),
        (lambda: daily_rows("a1", [JAN + dt.timedelta(31)]), "after the range"),
        (lambda: daily_rows("a1", [JAN]).drop_columns(["currency"]), "a missing column"),
        (
            lambda: daily_rows("a1", [JAN]).append_column("email", pa.array(["x@y.z"])),
            "an extra column",
        ),
        (
            lambda: daily_rows("a1", [JAN]).set_column(
                6, "impressions", pa.array(["many"], pa.string())
            ),
            "a wrong type",
        ),
    ],
)
def test_replace_slice_rejects_rows_outside_the_slice(
    subject: Subject, rows: Callable[[], pa.Table], why: str
) -> None:
    dataset_id = new_dataset(subject)
    subject.warehouse.replace_slice(
        dataset_id, daily_rows("a1", days(JAN, 2)), "a1", JAN, JAN + dt.timedelta(1)
    )
    with pytest.raises(errors.ValidationFailed):
        subject.warehouse.replace_slice(dataset_id, rows(), "a1", JAN, JAN + dt.timedelta(30))
    assert [r[1:] for r in slice_totals(subject, dataset_id, "a1")] == [(10, 1), (10, 1)], why


def test_a_failed_load_leaves_the_previous_rows(subject: Subject) -> None:
    wh = subject.warehouse
    dataset_id = new_dataset(subject)
    wh.replace_slice(dataset_id, daily_rows("a1", days(JAN, 3)), "a1", JAN, JAN + dt.timedelta(2))
    subject.break_insert(True)
    try:
        with pytest.raises(errors.CosmaError):
            wh.replace_slice(
                dataset_id,
                daily_rows("a1", days(JAN, 3), clicks=7),
                "a1",
                JAN,
                JAN + dt.timedelta(2),
            )
    finally:
        subject.break_insert(False)
    assert [r[1:] for r in slice_totals(subject, dataset_id, "a1")] == [(10, 1)] * 3


def test_loading_into_a_missing_dataset_is_not_found(subject: Subject) -> None:
    missing = dataset_id_for("test", str(uuid.uuid4()), "meta")
    with pytest.raises(errors.NotFound):
        subject.warehouse.replace_slice(missing, daily_rows("a1", [JAN]), "a1", JAN, JAN)


def test_query_takes_values_only_as_parameters(subject: Subject) -> None:
    wh = subject.warehouse
    dataset_id = new_dataset(subject)
    wh.replace_slice(
        dataset_id,
        daily_rows("a1", days(JAN, 3), campaigns=("c1", "c2")),
        "a1",
        JAN,
        JAN + dt.timedelta(2),
    )
    injection = "a1' or '1'='1"
    sql = (
        f"select campaign_id, sum(clicks) as clicks from {wh.table_ref(dataset_id)}"
        f" where account_id = {subject.p('account')} and date >= {subject.p('since')}"
        f" and campaign_id in unnest({subject.p('campaigns')})"
        " group by campaign_id order by campaign_id"
    )
    if wh.dialect == "duckdb":
        sql = sql.replace(
            f"in unnest({subject.p('campaigns')})", f"in (select unnest({subject.p('campaigns')}))"
        )
    result = run(
        subject,
        sql,
        [
            QueryParam("account", "a1"),
            QueryParam("since", JAN + dt.timedelta(1)),
            QueryParam("campaigns", ["c1", "c2"]),
        ],
        [dataset_id],
    )
    assert result.columns == ["campaign_id", "clicks"]
    assert [tuple(r) for r in result.rows] == [("c1", 20), ("c2", 20)]
    hostile = run(
        subject, sql, {"account": injection, "since": JAN, "campaigns": ["c1"]}, [dataset_id]
    )
    assert hostile.rows == []


def test_one_query_blends_several_datasets(subject: Subject) -> None:
    wh = subject.warehouse
    meta = new_dataset(subject, platform="meta")
    tiktok = new_dataset(subject, platform="tiktok")
    wh.replace_slice(meta, daily_rows("m1", [JAN]), "m1", JAN, JAN)
    wh.replace_slice(tiktok, daily_rows("t1", [JAN], clicks=5), "t1", JAN, JAN)
    sql = (
        f"select sum(clicks) as clicks from (select clicks from {wh.table_ref(meta)}"
        f" union all select clicks from {wh.table_ref(tiktok)})"
    )
    assert [tuple(r) for r in run(subject, sql, {}, [meta, tiktok]).rows] == [(15,)]


def test_queries_run_in_the_datasets_location(subject: Subject) -> None:
    dataset_id = new_dataset(subject, "EU")
    sql = f"select count(*) as n from {subject.warehouse.table_ref(dataset_id)}"
    assert [tuple(r) for r in run(subject, sql, {}, [dataset_id], location="EU").rows] == [(0,)]


def test_table_ref_accepts_only_our_dataset_ids(subject: Subject) -> None:
    for bad in ("x; drop table y", "cosma_test_evil`.`other", "Robert'); --"):
        with pytest.raises(errors.ValidationFailed):
            subject.warehouse.table_ref(bad)


def exported(subject: Subject, dataset_id: str) -> pa.Table:
    folder = ExportFolder(subject.sink, f"org_test/{uuid.uuid4()}/20260301T120000000000Z-0a1b2c3d")
    subject.warehouse.export_parquet(dataset_id, folder)
    names = folder.names()
    assert names == [f"{dataset_id}-000000000000.parquet"]
    with subject.sink.open_read(folder.key(names[0])) as stream:
        return pq.read_table(stream)


def test_export_writes_the_rows_as_parquet_in_the_daily_schema(subject: Subject) -> None:
    """Both adapters give the same schema: required columns not null, timestamps in UTC
    (DuckDB's own Arrow output has neither; BigQuery's extract keeps both)."""
    wh = subject.warehouse
    dataset_id = new_dataset(subject)
    rows = daily_rows("a1", days(JAN, 4), campaigns=("c1", "c2"))
    wh.replace_slice(dataset_id, rows, "a1", JAN, JAN + dt.timedelta(3))
    table = exported(subject, dataset_id)
    assert table.schema == daily_schema()
    assert table.schema.field("synced_at").type == pa.timestamp("us", tz="UTC")
    assert not table.schema.field("account_id").nullable
    assert table.schema.field("ad_id").nullable
    key = ["date", "campaign_id"]
    assert table.sort_by([(k, "ascending") for k in key]).equals(
        rows.sort_by([(k, "ascending") for k in key])
    )


def test_an_export_reads_no_row_through_the_adapter(
    subject: Subject, bq_server: BigQueryServer
) -> None:
    dataset_id = new_dataset(subject)
    subject.warehouse.replace_slice(dataset_id, daily_rows("a1", [JAN]), "a1", JAN, JAN)
    before = len(bq_server.calls("GET", r"/data$"))
    assert exported(subject, dataset_id).num_rows == 1
    if subject.warehouse.dialect == "bigquery":
        extracts = [
            c["json"]
            for c in bq_server.calls("POST", r"^/bigquery/v2/projects/cosma-test/jobs$")
            if "extract" in c["json"]["configuration"]
        ]
        (job,) = [
            j
            for j in extracts
            if j["configuration"]["extract"]["sourceTable"]["datasetId"] == dataset_id
        ]
        assert job["configuration"]["extract"]["destinationFormat"] == "PARQUET"
        assert job["jobReference"]["location"] == "US"
        assert len(bq_server.calls("GET", r"/data$")) == before  # no tabledata.list


def test_a_query_in_another_location_is_the_same_not_found_on_both(subject: Subject) -> None:
    dataset_id = new_dataset(subject, "EU")
    sql = f"select count(*) as n from {subject.warehouse.table_ref(dataset_id)}"
    with pytest.raises(errors.NotFound) as caught:
        run(subject, sql, {}, [dataset_id], location="US")
    assert caught.value.detail == WRONG_LOCATION


def test_two_loads_of_one_dataset_at_once_both_succeed(
    subject: Subject, bq_server: BigQueryServer
) -> None:
    """Two connections of one client and platform load one table at the same time.
    BigQuery cancels one of two concurrent transactions on a table (the local server
    holds a table 0.5 s per transaction and does the same); both loads must land."""
    wh = subject.warehouse
    dataset_id = new_dataset(subject)
    bq_server.transaction_s = 0.5
    cancelled_before = _cancelled(bq_server)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def load(account: str, clicks: int) -> None:
        try:
            start.wait()
            rows = daily_rows(account, days(JAN, 3), clicks=clicks)
            wh.replace_slice(dataset_id, rows, account, JAN, JAN + dt.timedelta(2))
        except BaseException as exc:  # the test reports it
            failures.append(exc)

    threads = [threading.Thread(target=load, args=a) for a in (("a1", 11), ("a2", 22))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        bq_server.transaction_s = 0.0
    assert failures == []
    assert [r[1:] for r in slice_totals(subject, dataset_id, "a1")] == [(11, 1)] * 3
    assert [r[1:] for r in slice_totals(subject, dataset_id, "a2")] == [(22, 1)] * 3
    if wh.dialect == "bigquery":
        assert _cancelled(bq_server) > cancelled_before  # the clash really happened


def _cancelled(server: BigQueryServer) -> int:
    return sum("concurrent update" in str(j["status"]) for j in server.jobs.values())


def test_drop_dataset_removes_it_and_a_missing_one_is_fine(subject: Subject) -> None:
    wh = subject.warehouse
    dataset_id = new_dataset(subject)
    wh.replace_slice(dataset_id, daily_rows("a1", [JAN]), "a1", JAN, JAN)
    wh.drop_dataset(dataset_id)
    wh.drop_dataset(dataset_id)
    with pytest.raises(errors.NotFound):
        run(subject, f"select count(*) from {wh.table_ref(dataset_id)}", {}, [dataset_id])


def test_each_client_and_platform_gets_its_own_dataset(subject: Subject) -> None:
    wh = subject.warehouse
    client_a, client_b = str(uuid.uuid4()), str(uuid.uuid4())
    ids = {
        (client, platform): dataset_id_for("test", client, platform)
        for client in (client_a, client_b)
        for platform in ("meta", "tiktok")
    }
    assert len(set(ids.values())) == 4
    for (client, _platform), dataset_id in ids.items():
        assert client.replace("-", "") in dataset_id
        wh.ensure_dataset(DatasetSpec(dataset_id, "US", {"env": "test"}))
    wh.replace_slice(
        ids[client_a, "meta"], daily_rows("acct-a", [JAN], clicks=3), "acct-a", JAN, JAN
    )
    wh.replace_slice(
        ids[client_b, "meta"], daily_rows("acct-b", [JAN], clicks=7), "acct-b", JAN, JAN
    )
    for client, account in ((client_a, "acct-a"), (client_b, "acct-b")):
        dataset_id = ids[client, "meta"]
        result = run(
            subject,
            f"select distinct account_id from {wh.table_ref(dataset_id)}",
            {},
            [dataset_id],
        )
        assert [tuple(r) for r in result.rows] == [(account,)]
    # The other platform's dataset of the same client holds nothing of either.
    empty = ids[client_a, "tiktok"]
    assert run(subject, f"select count(*) from {wh.table_ref(empty)}", {}, [empty]).rows[0][0] == 0
