"""`BigQueryWarehouse`: the cloud adapter, over google-cloud-bigquery.

- Datasets are created in the organization's location with opaque labels. The
  access list is then set to exactly: the creator's OWNER entry (which BigQuery
  adds; the provisioner needs it to erase), READER for the query account and
  WRITER for the sync account. BigQuery's default project-wide entries
  (projectReaders/Writers/Owners) are removed.
- With a Cloud KMS key configured (CMEK), each dataset is created with it as its
  default encryption, so the daily and staging tables are encrypted with it.
  The key is part of the dataset's identity, like its location: an existing
  dataset with another default key (or none where one is wanted, or the
  reverse) is a Conflict, never silently re-keyed (BigQuery would apply a new
  default to new tables only). The key's location must be the dataset's
  (`us` for US, `europe` for EU); a mismatch is refused before any call.
- The daily table is partitioned by `date` (DAY) and clustered by account and
  campaign.
- A slice is replaced by a load job of Parquet (made from the Arrow table) into
  a staging table that expires on its own, then one multi-statement
  transaction that deletes the slice and inserts from staging. If either step
  fails the table is untouched; the staging table is dropped in every case.
  BigQuery cancels one of two transactions mutating one table at once
  ("concurrent update"), and two connections may load one dataset: the
  transaction is retried on that error alone, with backoff, for at most
  `load_retry_deadline_s` (the staged rows are still there, so a retry
  converges to the same slice).
- Every query carries named parameters, the bytes-billed cap, labels and a
  job timeout, and runs in the given location.
- An export is an extract job of the daily table to Parquet, straight into the
  export bucket, run in the dataset's location: no row passes through here.
- Library errors map to `shared.errors` once, in `_translated`, by the error's
  reason before its class: a query over the bytes cap fails inside the finished
  job with `bytesBilledLimitExceeded`, which the client raises as a 500.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_RETRY

from shared import errors
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
from shared.warehouse.schema import CLUSTER_FIELDS, COLUMN_NAMES, COLUMNS, PARTITION_FIELD, TABLE
from shared.warehouse.schema import conform as conform_slice

if TYPE_CHECKING:
    import pyarrow as pa

_STAGING_TTL = dt.timedelta(hours=6)
_COLUMNS_SQL = ", ".join(f"`{name}`" for name in COLUMN_NAMES)
_BYTES_CAP_REASON = "bytesBilledLimitExceeded"
# A multi-region dataset needs a key in the matching multi-region.
_KEY_LOCATIONS = {"US": "us", "EU": "europe"}
_KEY_LOCATION = re.compile(r"^projects/[^/]+/locations/([^/]+)/keyRings/[^/]+/cryptoKeys/[^/]+$")


def _reason(exc: api_exceptions.GoogleAPICallError) -> str:
    try:
        return str(exc.errors[0].get("reason", ""))
    except (AttributeError, IndexError, TypeError):
        return ""


def _concurrent_update(exc: BaseException) -> bool:
    """BigQuery's answer to a transaction cancelled for another one on the same table
    ("Transaction is aborted due to concurrent update against table ...", or "Could not
    serialize access to table ... due to concurrent update"), reason invalidQuery."""
    return isinstance(exc, api_exceptions.BadRequest) and "concurrent update" in str(exc)


def _ours(exc: api_exceptions.GoogleAPICallError) -> errors.CosmaError:
    """The error of ours for a Google API error: by its reason first (a finished job's
    reason comes with whatever status the client picked for it), then by its class."""
    reason = _reason(exc)
    if reason == _BYTES_CAP_REASON:
        return errors.ValidationFailed("The query would read more than allowed.")
    if reason in ("rateLimitExceeded", "quotaExceeded", "jobRateLimitExceeded"):
        return errors.Unavailable("The warehouse is busy; retry later.")
    if isinstance(exc, api_exceptions.NotFound):
        if "in location" in str(exc):
            return errors.NotFound(WRONG_LOCATION)
        return errors.NotFound("No such dataset or table.")
    if isinstance(exc, api_exceptions.Forbidden):
        return errors.Forbidden("The warehouse refused access.")
    if isinstance(exc, api_exceptions.Conflict):
        return errors.Conflict("The warehouse resource already exists.")
    if isinstance(exc, api_exceptions.BadRequest):
        if _concurrent_update(exc):
            return errors.Unavailable("The warehouse is busy; retry later.")
        return errors.ValidationFailed("The warehouse rejected the statement.")
    return errors.Unavailable("The warehouse is unavailable.")


@contextmanager
def _translated() -> Iterator[None]:
    """google-cloud-bigquery errors become ours here, once. Messages never carry SQL."""
    try:
        yield
    except errors.CosmaError:
        raise
    except api_exceptions.GoogleAPICallError as exc:
        raise _ours(exc) from exc
    except api_exceptions.RetryError as exc:
        # Retries ran out: the last error says why (a concurrent update: busy).
        if isinstance(exc.cause, api_exceptions.GoogleAPICallError):
            raise _ours(exc.cause) from exc
        raise errors.Unavailable("The warehouse is unavailable.") from exc
    except (
        auth_exceptions.GoogleAuthError,
        requests.exceptions.RequestException,
        concurrent.futures.TimeoutError,
        ConnectionError,
    ) as exc:
        raise errors.Unavailable("The warehouse is unavailable.") from exc


def _replace_script(target: str, source: str) -> str:
    """One transaction: the slice's old rows go and the staged rows arrive together.

    Identifiers come from `table_ref` and generated staging names; values are parameters.
    """
    return (
        "BEGIN TRANSACTION;\n"  # noqa: S608
        f"DELETE FROM {target} WHERE account_id = @account_id"
        " AND `date` BETWEEN @date_from AND @date_to;\n"
        f"INSERT INTO {target} ({_COLUMNS_SQL}) SELECT {_COLUMNS_SQL} FROM {source};\n"
        "COMMIT TRANSACTION;"
    )


def _scalar_or_array(param: QueryParam) -> Any:
    kind = param.resolved_type()
    if kind.startswith("ARRAY<"):
        return bigquery.ArrayQueryParameter(param.name, kind[6:-1], list(param.value))
    return bigquery.ScalarQueryParameter(param.name, kind, param.value)


def _default_key(dataset: bigquery.Dataset) -> str:
    config = dataset.default_encryption_configuration
    return (config.kms_key_name or "") if config is not None else ""


def _schema() -> list[bigquery.SchemaField]:
    return [
        bigquery.SchemaField(c.name, c.bigquery, mode="REQUIRED" if c.required else "NULLABLE")
        for c in COLUMNS
    ]


class BigQueryWarehouse(Warehouse):
    dialect: Dialect = "bigquery"

    def __init__(
        self,
        project: str,
        *,
        endpoint: str = "",
        retry_deadline_s: float = 30.0,
        kms_key_name: str = "",
        load_retry_deadline_s: float = 120.0,
        load_retry_initial_s: float = 1.0,
    ) -> None:
        if not project:
            raise errors.Unavailable("The warehouse is not configured.")
        self.project = project
        # Default key of the datasets this adapter creates; "" is Google-managed.
        self.kms_key_name = kms_key_name
        self._endpoint = endpoint
        self._retry = DEFAULT_RETRY.with_timeout(retry_deadline_s)
        # The slice's transaction again, on a concurrent update only, with jittered
        # exponential backoff, until the deadline (then the error is the sync's).
        self._load_retry = Retry(
            predicate=_concurrent_update,
            initial=load_retry_initial_s,
            maximum=max(load_retry_initial_s, 16.0),
            multiplier=2.0,
            timeout=load_retry_deadline_s,
        )

    @cached_property
    def client(self) -> bigquery.Client:
        if self._endpoint:
            # A local endpoint (tests, emulators): no Google credentials involved.
            from google.auth.credentials import AnonymousCredentials

            return bigquery.Client(
                project=self.project,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": self._endpoint},
            )
        with _translated():
            return bigquery.Client(project=self.project)

    def close(self) -> None:
        client = self.__dict__.pop("client", None)
        if client is not None:
            client.close()

    def _dataset_ref(self, dataset_id: str) -> bigquery.DatasetReference:
        return bigquery.DatasetReference(self.project, check_dataset_id(dataset_id))

    # ------------------------------------------------------------ datasets

    def ensure_dataset(self, spec: DatasetSpec) -> None:
        if spec.location not in LOCATIONS:
            raise errors.ValidationFailed("Unknown location.")
        self._check_key_location(spec.location)
        ref = self._dataset_ref(spec.dataset_id)
        with _translated():
            wanted = bigquery.Dataset(ref)
            wanted.location = spec.location
            wanted.labels = dict(spec.labels)
            if self.kms_key_name:
                wanted.default_encryption_configuration = bigquery.EncryptionConfiguration(
                    kms_key_name=self.kms_key_name
                )
            try:
                dataset = self.client.create_dataset(wanted, retry=self._retry)
            except api_exceptions.Conflict:
                dataset = self.client.get_dataset(ref, retry=self._retry)
            if (dataset.location or "").upper() != spec.location:
                raise errors.Conflict("The dataset exists in another location.")
            if _default_key(dataset) != self.kms_key_name:
                raise errors.Conflict("The dataset exists with another encryption key.")
            self._reconcile(dataset, spec)
            self._ensure_table(ref)

    def _check_key_location(self, location: str) -> None:
        if not self.kms_key_name:
            return
        match = _KEY_LOCATION.match(self.kms_key_name)
        if match is None or match.group(1) != _KEY_LOCATIONS.get(location):
            # A deployment fault, not the caller's: the configured key cannot
            # encrypt data in this location.
            raise errors.Unavailable("The warehouse has no encryption key for this location.")

    def _reconcile(self, dataset: bigquery.Dataset, spec: DatasetSpec) -> None:
        """Labels and access entries exactly as specified; one PATCH if anything differs."""
        fields: list[str] = []
        labels = dict(spec.labels)
        if dict(dataset.labels) != labels:
            # A label is removed by sending it with a null value.
            dataset.labels = {**dict.fromkeys(dataset.labels), **labels}
            fields.append("labels")
        access = [
            entry
            for entry in dataset.access_entries
            # Keep the creator's OWNER entry; drop project-wide special groups.
            if entry.role == "OWNER" and entry.entity_type == "userByEmail"
        ]
        access += [bigquery.AccessEntry("READER", "userByEmail", email) for email in spec.readers]
        access += [bigquery.AccessEntry("WRITER", "userByEmail", email) for email in spec.writers]

        def key(entries: Sequence[bigquery.AccessEntry]) -> set[tuple[Any, ...]]:
            return {(e.role, e.entity_type, e.entity_id) for e in entries}

        if key(access) != key(dataset.access_entries):
            dataset.access_entries = access
            fields.append("access_entries")
        if fields:
            self.client.update_dataset(dataset, fields, retry=self._retry)

    def _ensure_table(self, ref: bigquery.DatasetReference) -> None:
        table = bigquery.Table(ref.table(TABLE), schema=_schema())
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field=PARTITION_FIELD
        )
        table.clustering_fields = list(CLUSTER_FIELDS)
        existing = self.client.create_table(table, exists_ok=True, retry=self._retry)
        partitioning = existing.time_partitioning
        if partitioning is None or partitioning.field != PARTITION_FIELD:
            raise errors.Conflict("The daily table exists with another layout.")

    def drop_dataset(self, dataset_id: str) -> None:
        with _translated():
            self.client.delete_dataset(
                self._dataset_ref(dataset_id),
                delete_contents=True,
                not_found_ok=True,
                retry=self._retry,
            )

    # ------------------------------------------------------------ loads

    def replace_slice(
        self,
        dataset_id: str,
        table: pa.Table,
        account_id: str,
        date_from: dt.date,
        date_to: dt.date,
    ) -> int:
        import pyarrow.parquet as pq

        rows = conform_slice(table, account_id, date_from, date_to)
        ref = self._dataset_ref(dataset_id)
        staging_ref = ref.table(f"_staging_{uuid.uuid4().hex}")
        buffer = io.BytesIO()
        pq.write_table(rows, buffer)
        size = buffer.tell()
        buffer.seek(0)
        with _translated():
            dataset = self.client.get_dataset(ref, retry=self._retry)
            staging = bigquery.Table(staging_ref, schema=_schema())
            # An interrupted load must not leave a copy of the data behind for long.
            staging.expires = dt.datetime.now(dt.UTC) + _STAGING_TTL
            self.client.create_table(staging, retry=self._retry)
            try:
                load = self.client.load_table_from_file(
                    buffer,
                    staging_ref,
                    size=size,
                    location=dataset.location,
                    job_config=bigquery.LoadJobConfig(
                        source_format=bigquery.SourceFormat.PARQUET,
                        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                        schema=_schema(),
                    ),
                )
                load.result(retry=self._retry)
                target = self.table_ref(dataset_id)
                source = f"`{self.project}.{ref.dataset_id}.{staging_ref.table_id}`"
                script = _replace_script(target, source)
                config = bigquery.QueryJobConfig(
                    query_parameters=[
                        bigquery.ScalarQueryParameter("account_id", "STRING", account_id),
                        bigquery.ScalarQueryParameter("date_from", "DATE", date_from),
                        bigquery.ScalarQueryParameter("date_to", "DATE", date_to),
                    ],
                    labels={"cosma_op": "replace_slice"},
                )

                def transaction() -> None:
                    # job_retry=None: the client's own job retry would also retry the
                    # job's creation for minutes; ours retries a concurrent update only.
                    job = self.client.query(
                        script,
                        job_config=config,
                        location=dataset.location,
                        retry=self._retry,
                        job_retry=None,
                    )
                    job.result(retry=self._retry)

                self._load_retry(transaction)()
            finally:
                self.client.delete_table(staging_ref, not_found_ok=True, retry=self._retry)
        return int(rows.num_rows)

    # ------------------------------------------------------------ reads

    def table_ref(self, dataset_id: str) -> str:
        return f"`{self.project}.{check_dataset_id(dataset_id)}.{TABLE}`"

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
        # Which datasets a query may read is enforced by their access entries (the
        # query account is READER on each); the ids are still checked here.
        for dataset_id in datasets:
            check_dataset_id(dataset_id)
        config = bigquery.QueryJobConfig(
            query_parameters=[_scalar_or_array(p) for p in as_params(params)],
            maximum_bytes_billed=max_bytes_billed,
            labels=dict(labels),
            use_legacy_sql=False,
            job_timeout_ms=int(timeout_s * 1000),
        )
        with _translated():
            job = self.client.query(
                sql,
                job_config=config,
                location=location,
                retry=self._retry,
                timeout=timeout_s,
                job_retry=None,
            )
            result = job.result(timeout=timeout_s, retry=self._retry)
            columns = [field.name for field in result.schema]
            rows = [tuple(row.values()) for row in result]
            return QueryResult(columns, rows, job.total_bytes_processed)

    def export_parquet(self, dataset_id: str, target: ExportTarget) -> None:
        """An extract job writes the daily table as Parquet into the export bucket, in
        shards of at most 1 GB (BigQuery's limit per file), as this function's account."""
        uri = target.uri(f"{dataset_id}-*.parquet")
        if not uri.startswith("gs://"):
            raise errors.Unavailable("BigQuery exports need an export bucket.")
        ref = self._dataset_ref(dataset_id)
        with _translated():
            dataset = self.client.get_dataset(ref, retry=self._retry)
            job = self.client.extract_table(
                ref.table(TABLE),
                uri,
                location=dataset.location,
                job_config=bigquery.ExtractJobConfig(  # type: ignore[no-untyped-call]
                    destination_format=bigquery.DestinationFormat.PARQUET,
                    labels={"cosma_op": "export"},
                ),
                retry=self._retry,
            )
            job.result(retry=self._retry)
