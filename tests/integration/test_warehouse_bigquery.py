"""What the BigQuery adapter sends, as recorded by the local BigQuery server."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from shared import errors
from shared.runtime import Runtime
from shared.settings import Settings
from shared.warehouse import DatasetSpec, QueryParam, dataset_id_for
from shared.warehouse.bigquery import BigQueryWarehouse
from tests.support.bigquery_server import CREATOR, BigQueryServer
from tests.support.warehouse import daily_rows, days

JAN = dt.date(2024, 1, 1)
QUERY_SA = "fn-query@cosma-test.iam.gserviceaccount.com"
SYNC_SA = "fn-sync@cosma-test.iam.gserviceaccount.com"


@pytest.fixture
def server() -> Iterator[BigQueryServer]:
    bq = BigQueryServer()
    with bq.running():
        yield bq


@pytest.fixture
def warehouse(server: BigQueryServer) -> Iterator[BigQueryWarehouse]:
    wh = BigQueryWarehouse("cosma-test", endpoint=server.url, retry_deadline_s=0.3)
    yield wh
    wh.close()


def provisioned(warehouse: BigQueryWarehouse, location: str = "EU") -> str:
    dataset_id = dataset_id_for("test", str(uuid.uuid4()), "google_ads")
    warehouse.ensure_dataset(
        DatasetSpec(
            dataset_id,
            location,
            {"org": "org_abc", "client": "c", "platform": "google_ads", "env": "test"},
            (QUERY_SA,),
            (SYNC_SA,),
        )
    )
    return dataset_id


def test_dataset_has_location_labels_and_exactly_the_needed_access(
    server: BigQueryServer, warehouse: BigQueryWarehouse
) -> None:
    dataset_id = provisioned(warehouse)
    created = server.calls("POST", r"/projects/cosma-test/datasets$")[0]["json"]
    assert created["location"] == "EU"
    assert created["labels"] == {
        "org": "org_abc",
        "client": "c",
        "platform": "google_ads",
        "env": "test",
    }
    access = server.datasets[dataset_id]["access"]
    assert sorted((a["role"], a.get("userByEmail", a.get("specialGroup"))) for a in access) == [
        ("OWNER", CREATOR),
        ("READER", QUERY_SA),
        ("WRITER", SYNC_SA),
    ]
    assert not any("specialGroup" in a for a in access)  # nothing project-wide


def test_daily_table_is_partitioned_by_date_and_clustered(
    server: BigQueryServer, warehouse: BigQueryWarehouse
) -> None:
    provisioned(warehouse)
    table = server.calls("POST", r"/datasets/[^/]+/tables$")[0]["json"]
    assert table["tableReference"]["tableId"] == "ad_performance_daily"
    assert table["timePartitioning"] == {"type": "DAY", "field": "date"}
    assert table["clustering"] == {"fields": ["account_id", "campaign_id"]}
    fields = {f["name"]: (f["type"], f["mode"]) for f in table["schema"]["fields"]}
    assert fields["spend_micros"] == ("INTEGER", "REQUIRED")
    assert fields["ad_id"] == ("STRING", "NULLABLE")


def test_provisioning_again_sends_no_changes(
    server: BigQueryServer, warehouse: BigQueryWarehouse
) -> None:
    dataset_id = provisioned(warehouse)
    patches = len(server.calls("PATCH", dataset_id))
    spec = DatasetSpec(
        dataset_id,
        "EU",
        {"org": "org_abc", "client": "c", "platform": "google_ads", "env": "test"},
        (QUERY_SA,),
        (SYNC_SA,),
    )
    warehouse.ensure_dataset(spec)
    assert len(server.calls("PATCH", dataset_id)) == patches
    # A changed access list is reconciled: the old reader goes.
    warehouse.ensure_dataset(DatasetSpec(dataset_id, "EU", spec.labels, (), (SYNC_SA,)))
    roles = {a["role"] for a in server.datasets[dataset_id]["access"]}
    assert roles == {"OWNER", "WRITER"}


# Not hexadecimal, so it cannot turn up by chance in a dataset id (a uuid's hex).
ACCOUNT = "acct-qz7"


def test_queries_carry_parameters_cap_labels_and_location(
    server: BigQueryServer, warehouse: BigQueryWarehouse
) -> None:
    dataset_id = provisioned(warehouse)
    warehouse.query(
        f"select count(*) as n from {warehouse.table_ref(dataset_id)}"
        " where account_id = @account and date >= @since",
        [QueryParam("account", ACCOUNT), QueryParam("since", JAN)],
        location="EU",
        labels={"cosma_org": "org_abc", "cosma_route": "query"},
        max_bytes_billed=123_456,
        timeout_s=5,
        datasets=[dataset_id],
    )
    job = server.calls("POST", r"/projects/cosma-test/jobs$")[-1]["json"]
    query = job["configuration"]["query"]
    assert query["parameterMode"] == "NAMED"
    assert query["queryParameters"] == [
        {
            "name": "account",
            "parameterType": {"type": "STRING"},
            "parameterValue": {"value": ACCOUNT},
        },
        {
            "name": "since",
            "parameterType": {"type": "DATE"},
            "parameterValue": {"value": "2024-01-01"},
        },
    ]
    assert query["maximumBytesBilled"] == "123456"
    assert query["useLegacySql"] is False
    assert job["configuration"]["labels"] == {"cosma_org": "org_abc", "cosma_route": "query"}
    assert job["jobReference"]["location"] == "EU"
    assert ACCOUNT not in query["query"]


def test_a_slice_is_one_load_then_one_transaction(
    server: BigQueryServer, warehouse: BigQueryWarehouse
) -> None:
    dataset_id = provisioned(warehouse)
    account = "acct-zz9"
    warehouse.replace_slice(
        dataset_id, daily_rows(account, days(JAN, 3)), account, JAN, JAN + dt.timedelta(2)
    )
    uploads = server.calls("POST", r"^/upload/bigquery/v2/projects/cosma-test/jobs$")
    assert len(uploads) == 1
    assert uploads[0]["args"]["uploadType"] == ["multipart"]
    assert b'"sourceFormat": "PARQUET"' in uploads[0]["body"] or b'"PARQUET"' in uploads[0]["body"]
    script = server.calls("POST", r"/projects/cosma-test/jobs$")[-1]["json"]["configuration"][
        "query"
    ]
    sql = script["query"]
    assert sql.startswith("BEGIN TRANSACTION;") and sql.rstrip().endswith("COMMIT TRANSACTION;")
    assert sql.count("DELETE FROM") == 1 and sql.count("INSERT INTO") == 1
    assert {p["name"] for p in script["queryParameters"]} == {"account_id", "date_from", "date_to"}
    assert account not in sql
    # The staging table was created with an expiry and is gone afterwards.
    staging = [c for c in server.calls("POST", r"/tables$") if "_staging_" in c["body"].decode()]
    assert staging and "expirationTime" in staging[0]["json"]
    assert [t for (d, t) in server.tables if t.startswith("_staging_")] == []


def test_a_failed_transaction_drops_the_staging_table(
    server: BigQueryServer, warehouse: BigQueryWarehouse
) -> None:
    dataset_id = provisioned(warehouse)
    server.fail("POST", r"^/bigquery/v2/projects/cosma-test/jobs$", 500, "backendError")
    with pytest.raises(errors.Unavailable):
        warehouse.replace_slice(dataset_id, daily_rows("a1", [JAN]), "a1", JAN, JAN)
    assert [t for (d, t) in server.tables if t.startswith("_staging_")] == []
    assert server.rows(dataset_id) == []


@pytest.mark.parametrize(
    "status, reason, expected",
    [
        (404, "notFound", errors.NotFound),
        (403, "accessDenied", errors.Forbidden),
        (403, "rateLimitExceeded", errors.Unavailable),
        (500, "backendError", errors.Unavailable),
        (503, "backendError", errors.Unavailable),
    ],
)
def test_errors_map_to_ours(
    server: BigQueryServer,
    warehouse: BigQueryWarehouse,
    status: int,
    reason: str,
    expected: type[errors.CosmaError],
) -> None:
    dataset_id = provisioned(warehouse)
    server.fail("POST", r"/projects/cosma-test/jobs$", status, reason)
    with pytest.raises(expected) as caught:
        warehouse.query(
            f"select 1 from {warehouse.table_ref(dataset_id)}",
            {},
            location="EU",
            labels={},
            max_bytes_billed=1,
            timeout_s=5,
            datasets=[dataset_id],
        )
    assert "select" not in caught.value.detail.lower()


def test_a_query_over_the_bytes_cap_fails_in_the_finished_job_and_is_a_validation_error(
    server: BigQueryServer, warehouse: BigQueryWarehouse
) -> None:
    dataset_id = provisioned(warehouse)
    warehouse.replace_slice(
        dataset_id, daily_rows(ACCOUNT, days(JAN, 3)), ACCOUNT, JAN, JAN + dt.timedelta(2)
    )
    with pytest.raises(errors.ValidationFailed) as caught:
        warehouse.query(
            f"select sum(clicks) from {warehouse.table_ref(dataset_id)}",
            {},
            location="EU",
            labels={},
            max_bytes_billed=100,  # 3 rows x 13 columns x 8 bytes pass it
            timeout_s=5,
            datasets=[dataset_id],
        )
    assert caught.value.detail == "The query would read more than allowed."
    # As BigQuery does it: the job is created, and finishes with the reason.
    job = server.calls("POST", r"/projects/cosma-test/jobs$")[-1]["json"]
    finished = server.jobs[job["jobReference"]["jobId"]]["status"]
    assert finished["state"] == "DONE"
    assert finished["errorResult"]["reason"] == "bytesBilledLimitExceeded"


def test_a_reason_decides_before_the_exception_class() -> None:
    from google.api_core import exceptions as api_exceptions

    from shared.warehouse.bigquery import _ours

    capped = api_exceptions.InternalServerError(
        "Query exceeded limit for bytes billed", errors=[{"reason": "bytesBilledLimitExceeded"}]
    )
    assert isinstance(_ours(capped), errors.ValidationFailed)
    busy = api_exceptions.BadRequest("x", errors=[{"reason": "jobRateLimitExceeded"}])
    assert isinstance(_ours(busy), errors.Unavailable)


def test_concurrent_update_retries_stop_at_their_deadline(server: BigQueryServer) -> None:
    """A table held by another transaction for longer than the retry deadline: the load
    fails as busy after about that deadline, and the slice keeps its rows."""
    wh = BigQueryWarehouse(
        "cosma-test",
        endpoint=server.url,
        retry_deadline_s=0.3,
        load_retry_deadline_s=0.6,
        load_retry_initial_s=0.1,
    )
    try:
        dataset_id = provisioned(wh)
        wh.replace_slice(dataset_id, daily_rows(ACCOUNT, [JAN]), ACCOUNT, JAN, JAN)
        server.transaction_s = 30.0
        table = (dataset_id, "ad_performance_daily")
        server.held[table] = float("inf")  # another writer's transaction, never ending
        started = time.monotonic()
        with pytest.raises(errors.Unavailable, match="busy"):
            wh.replace_slice(dataset_id, daily_rows(ACCOUNT, [JAN], clicks=3), ACCOUNT, JAN, JAN)
        assert time.monotonic() - started < 5
        cancelled = [j for j in server.jobs.values() if "concurrent update" in str(j["status"])]
        assert len(cancelled) >= 2  # retried, then gave up
    finally:
        server.held.clear()
        server.transaction_s = 0.0
        wh.close()
    assert [r[7] for r in server.rows(dataset_id)] == [10]


def test_dataset_errors_map_to_ours(server: BigQueryServer, warehouse: BigQueryWarehouse) -> None:
    server.fail("POST", r"/projects/cosma-test/datasets$", 403, "accessDenied")
    with pytest.raises(errors.Forbidden):
        provisioned(warehouse)
    server.clear_faults()
    server.fail("DELETE", r"/datasets/", 502, "badGateway")
    with pytest.raises(errors.Unavailable):
        warehouse.drop_dataset(dataset_id_for("test", str(uuid.uuid4()), "meta"))


def test_drop_deletes_contents(server: BigQueryServer, warehouse: BigQueryWarehouse) -> None:
    dataset_id = provisioned(warehouse)
    warehouse.drop_dataset(dataset_id)
    call = server.calls("DELETE", rf"/datasets/{dataset_id}$")[0]
    assert call["args"]["deleteContents"] == ["true"]
    assert dataset_id not in server.datasets


# --- customer-managed encryption (CMEK) --------------------------------------

EU_KEY = "projects/cosma-kms/locations/europe/keyRings/cosma/cryptoKeys/bigquery"
OTHER_EU_KEY = "projects/cosma-kms/locations/europe/keyRings/cosma/cryptoKeys/other"
US_KEY = "projects/cosma-kms/locations/us/keyRings/cosma/cryptoKeys/bigquery"


@contextmanager
def keyed(server: BigQueryServer, kms_key_name: str) -> Iterator[BigQueryWarehouse]:
    wh = BigQueryWarehouse(
        "cosma-test", endpoint=server.url, retry_deadline_s=0.3, kms_key_name=kms_key_name
    )
    try:
        yield wh
    finally:
        wh.close()


def test_with_a_key_each_dataset_is_created_with_it_as_default_encryption(
    server: BigQueryServer,
) -> None:
    with keyed(server, EU_KEY) as warehouse:
        dataset_id = provisioned(warehouse, "EU")
        (created,) = server.calls("POST", r"/projects/cosma-test/datasets$")
        assert created["json"]["defaultEncryptionConfiguration"] == {"kmsKeyName": EU_KEY}
        # Provisioning again with the same key is success and changes nothing.
        patches = len(server.calls("PATCH", dataset_id))
        provisioned_again(warehouse, dataset_id)
        assert len(server.calls("PATCH", dataset_id)) == patches
    assert server.datasets[dataset_id]["defaultEncryptionConfiguration"] == {"kmsKeyName": EU_KEY}


def test_without_a_key_datasets_use_google_managed_encryption(
    server: BigQueryServer, warehouse: BigQueryWarehouse
) -> None:
    assert warehouse.kms_key_name == ""
    provisioned(warehouse)
    (created,) = server.calls("POST", r"/projects/cosma-test/datasets$")
    assert "defaultEncryptionConfiguration" not in created["json"]
    assert b"kmsKeyName" not in created["body"]


@pytest.mark.parametrize("then", [OTHER_EU_KEY, ""], ids=["another-key", "no-key"])
def test_a_dataset_with_another_key_is_a_conflict_like_another_location(
    server: BigQueryServer, then: str
) -> None:
    with keyed(server, EU_KEY) as warehouse:
        dataset_id = provisioned(warehouse, "EU")
    patches = len(server.calls("PATCH", dataset_id))
    with keyed(server, then) as warehouse, pytest.raises(errors.Conflict):
        provisioned_again(warehouse, dataset_id)
    # Nothing was re-keyed or otherwise changed.
    assert len(server.calls("PATCH", dataset_id)) == patches
    assert server.datasets[dataset_id]["defaultEncryptionConfiguration"] == {"kmsKeyName": EU_KEY}


def test_a_dataset_made_without_a_key_is_a_conflict_once_a_key_is_set(
    server: BigQueryServer, warehouse: BigQueryWarehouse
) -> None:
    dataset_id = provisioned(warehouse)
    with keyed(server, EU_KEY) as keyed_warehouse, pytest.raises(errors.Conflict):
        provisioned_again(keyed_warehouse, dataset_id)
    assert "defaultEncryptionConfiguration" not in server.datasets[dataset_id]


def test_a_key_in_another_location_is_refused_before_any_call(server: BigQueryServer) -> None:
    with keyed(server, US_KEY) as warehouse, pytest.raises(errors.Unavailable):
        provisioned(warehouse, "EU")
    assert server.requests == []
    assert server.datasets == {}


def provisioned_again(warehouse: BigQueryWarehouse, dataset_id: str) -> None:
    warehouse.ensure_dataset(
        DatasetSpec(
            dataset_id,
            "EU",
            {"org": "org_abc", "client": "c", "platform": "google_ads", "env": "test"},
            (QUERY_SA,),
            (SYNC_SA,),
        )
    )


def test_the_runtime_passes_bq_kms_key_from_the_environment(server: BigQueryServer) -> None:
    settings = Settings.from_env(
        {
            "GCP_PROJECT": "cosma-test",
            "BIGQUERY_ENDPOINT": server.url,
            "BQ_RETRY_DEADLINE_S": "0.3",
            "BQ_KMS_KEY": EU_KEY,
        }
    )
    runtime = Runtime(settings)
    try:
        warehouse = runtime.warehouse
        assert isinstance(warehouse, BigQueryWarehouse)
        provisioned(warehouse, "EU")
    finally:
        runtime.close()
    (created,) = server.calls("POST", r"/projects/cosma-test/datasets$")
    assert created["json"]["defaultEncryptionConfiguration"] == {"kmsKeyName": EU_KEY}
