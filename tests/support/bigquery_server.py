"""A local HTTP server that speaks enough of the BigQuery REST API for our adapter.

It records every request (method, path, query args, JSON body) and keeps state
in an in-memory DuckDB database (one schema per dataset), so the adapter's SQL
really runs: backtick table references become DuckDB names and `@name`
parameters become `$name`. Jobs are answered `status.state: DONE`, query
results `jobComplete: true`: google-cloud-bigquery polls a job until its state is
DONE (`job.result()` reads `/queries/{jobId}`, `query_and_wait` posts to
`/queries`) and reads rows only from a complete query. Jobs fail as BigQuery's
do: inside the finished job (`status.errorResult`), which the client raises by
reason:

- a query whose bytes billed would pass `maximumBytesBilled` fails with
  `bytesBilledLimitExceeded` (the client raises it as a 500). Bytes billed here
  are 8 per cell of each table the query names;
- a query or extract whose datasets are in another location than the job's is
  `notFound` ("... was not found in location ...");
- with `transaction_s` > 0 a transaction holds the tables it mutates that long
  (its job stays RUNNING meanwhile), and another transaction mutating one of
  them then is cancelled: `invalidQuery`, "Transaction is aborted due to
  concurrent update against table ...";
- an extract job writes the table as Parquet into the local Cloud Storage
  (`storage`), typed as BigQuery's export types them: REQUIRED columns not
  null, TIMESTAMP as UTC microseconds.

Faults: `fail(method, path_regex, status, reason)` answers matching requests
with a Google-style error; `fail_statement(text)` makes a script fail at the
first statement containing `text`, after the statements before it ran (so a
transaction's rollback is observable).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from werkzeug.wrappers import Request, Response

from tests.support.servers import Recorder, serve
from tests.support.storage_emulator import StorageEmulator

CREATOR = "provisioner@cosma-test.iam.gserviceaccount.com"
_API = re.compile(r"^/bigquery/v2/projects/(?P<project>[^/]+)(?P<rest>/.*)$")
_UPLOAD = re.compile(r"^/upload/bigquery/v2/projects/(?P<project>[^/]+)/jobs$")
_REF = re.compile(r"`([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)`")
_PARAM = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")
# GoogleSQL's `x IN UNNEST(@array)` is DuckDB's `x = ANY(@array)`.
_IN_UNNEST = re.compile(r"\bin\s+unnest\s*\(\s*(@[A-Za-z_][A-Za-z0-9_]*)\s*\)", re.IGNORECASE)
_MUTATED = re.compile(
    r"\b(?:DELETE\s+FROM|INSERT\s+INTO|UPDATE|MERGE\s+INTO)\s+`([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)`",
    re.IGNORECASE,
)
_GS_URI = re.compile(r"^gs://([a-z0-9._-]+)/(.+)$")
_QUERIES = re.compile(r"^/bigquery/v2/projects/[^/]+/queries/([^/]+)$")
# BigQuery's Parquet export types, by column type (nullability from the mode).
_PARQUET_TYPES = {
    "STRING": pa.string(),
    "INTEGER": pa.int64(),
    "INT64": pa.int64(),
    "FLOAT": pa.float64(),
    "FLOAT64": pa.float64(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "BOOLEAN": pa.bool_(),
    "BOOL": pa.bool_(),
    "NUMERIC": pa.decimal128(38, 9),
}
_DUCK_TYPES = {
    "STRING": "VARCHAR",
    "INTEGER": "BIGINT",
    "INT64": "BIGINT",
    "FLOAT": "DOUBLE",
    "FLOAT64": "DOUBLE",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMPTZ",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "NUMERIC": "DECIMAL(38, 9)",
}


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    reason: str
    times: int


class StatementFailedError(Exception):
    pass


def _error(status: int, reason: str, message: str = "") -> Response:
    message = message or reason
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"reason": reason, "message": message, "domain": "global"}],
            "status": {403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}.get(
                status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"
            ),
        }
    }
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _ok(body: Any) -> Response:
    return Response(json.dumps(body, default=str), status=200, mimetype="application/json")


def _bq_type(duck_type: str) -> str:
    t = duck_type.upper()
    if t in ("VARCHAR", "UUID"):
        return "STRING"
    if t.endswith("INT") or t in ("BIGINT", "HUGEINT", "INTEGER", "SMALLINT", "TINYINT"):
        return "INTEGER"
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return "FLOAT"
    if t.startswith("DECIMAL"):
        return "NUMERIC"
    if t == "DATE":
        return "DATE"
    if t.startswith("TIMESTAMP"):
        return "TIMESTAMP"
    if t == "BOOLEAN":
        return "BOOLEAN"
    return "STRING"


def _cell(value: Any, kind: str, int64_timestamps: bool) -> Any:
    if value is None:
        return None
    if kind == "TIMESTAMP":
        micros = int(value.timestamp() * 1_000_000)
        return str(micros) if int64_timestamps else f"{micros / 1_000_000:.6f}"
    if kind == "BOOLEAN":
        return "true" if value else "false"
    return str(value)


def _mutated(sql: str) -> set[tuple[str, str]]:
    return {(m.group(2), m.group(3)) for m in _MUTATED.finditer(sql)}


def _param_value(ptype: dict[str, Any], pvalue: dict[str, Any]) -> Any:
    kind = ptype["type"]
    if kind == "ARRAY":
        return [_param_value(ptype["arrayType"], v) for v in pvalue.get("arrayValues", [])]
    raw = pvalue.get("value")
    if raw is None:
        return None
    if kind == "INT64":
        return int(raw)
    if kind == "FLOAT64":
        return float(raw)
    if kind == "BOOL":
        return raw == "true"
    if kind == "NUMERIC":
        return Decimal(raw)
    if kind == "DATE":
        return dt.date.fromisoformat(raw)
    if kind == "TIMESTAMP":
        return dt.datetime.fromisoformat(raw.replace(" ", "T"))
    return raw


class BigQueryServer:
    def __init__(
        self, project: str = "cosma-test", *, storage: StorageEmulator | None = None
    ) -> None:
        self.project = project
        self.storage = storage
        self.transaction_s = 0.0
        self.held: dict[tuple[str, str], float] = {}  # table -> until when a transaction holds it
        self.done_at: dict[str, float] = {}  # job id -> when a RUNNING job is done
        self.recorder = Recorder(self._handle)
        self.lock = threading.RLock()
        self.db = duckdb.connect(":memory:")
        self.datasets: dict[str, dict[str, Any]] = {}
        self.tables: dict[tuple[str, str], dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.results: dict[str, tuple[list[dict[str, str]], list[tuple[Any, ...]]]] = {}
        self.faults: list[Fault] = []
        self.failing_statement: str | None = None
        self.url = ""

    # ------------------------------------------------------------ test helpers

    @contextmanager
    def running(self) -> Iterator[BigQueryServer]:
        with serve(self.recorder) as url:
            self.url = url
            yield self

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.recorder.requests

    def calls(self, method: str, path_regex: str) -> list[dict[str, Any]]:
        """Recorded requests matching, with `json` holding the parsed body (if any)."""
        found = []
        for req in list(self.recorder.requests):
            if req["method"] == method and re.search(path_regex, req["path"]):
                body = req["body"]
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                found.append({**req, "json": parsed})
        return found

    def fail(
        self, method: str, path_regex: str, status: int, reason: str, times: int = 1_000
    ) -> None:
        self.faults.append(Fault(method, re.compile(path_regex), status, reason, times))

    def fail_statement(self, text: str | None) -> None:
        self.failing_statement = text

    def clear_faults(self) -> None:
        self.faults.clear()
        self.failing_statement = None

    def rows(self, dataset_id: str, table: str = "ad_performance_daily") -> list[tuple[Any, ...]]:
        with self.lock:
            return self.db.execute(
                f'select * from "{dataset_id}"."{table}" order by all'
            ).fetchall()

    # ------------------------------------------------------------ dispatch

    def _handle(self, request: Request) -> Response:
        waiting = _QUERIES.match(request.path)
        if waiting and request.method == "GET":
            # getQueryResults hangs until the job is done, up to its timeoutMs: outside
            # the lock, so the other job's requests go on meanwhile.
            done_at = self.done_at.get(waiting.group(1), 0.0)
            limit = float(request.args.get("timeoutMs", "10000")) / 1000
            time.sleep(max(0.0, min(done_at - time.monotonic(), limit)))
        for fault in self.faults:
            if (
                fault.times > 0
                and fault.method == request.method
                and fault.path.search(request.path)
            ):
                fault.times -= 1
                return _error(fault.status, fault.reason)
        with self.lock:
            upload = _UPLOAD.match(request.path)
            if upload and request.method == "POST":
                return self._upload(request)
            api = _API.match(request.path)
            if not api:
                return _error(404, "notFound", "no such API")
            return self._route(request, api.group("rest"))

    def _route(self, request: Request, rest: str) -> Response:
        method = request.method
        parts = [p for p in rest.split("/") if p]
        body = request.get_json(silent=True) or {}
        if parts == ["datasets"] and method == "POST":
            return self._create_dataset(body)
        if len(parts) == 2 and parts[0] == "datasets":
            return self._dataset(request, parts[1], body)
        if len(parts) == 3 and parts[0] == "datasets" and parts[2] == "tables" and method == "POST":
            return self._create_table(parts[1], body)
        if len(parts) == 4 and parts[0] == "datasets" and parts[2] == "tables":
            return self._table(method, parts[1], parts[3])
        if len(parts) == 5 and parts[2] == "tables" and parts[4] == "data" and method == "GET":
            return self._table_data(request, parts[1], parts[3])
        if parts == ["jobs"] and method == "POST":
            return self._insert_job(body)
        if len(parts) == 2 and parts[0] == "jobs" and method == "GET":
            job = self.jobs.get(parts[1])
            if job is None:
                return _error(404, "notFound", "no such job")
            running = time.monotonic() < self.done_at.get(parts[1], 0.0)
            job["status"]["state"] = "RUNNING" if running else "DONE"
            return _ok(job)
        if len(parts) == 2 and parts[0] == "queries" and method == "GET":
            return self._query_results(request, parts[1])
        return _error(400, "invalid", f"unsupported {method} {rest}")

    # ------------------------------------------------------------ datasets

    def _create_dataset(self, body: dict[str, Any]) -> Response:
        dataset_id = body["datasetReference"]["datasetId"]
        if dataset_id in self.datasets:
            return _error(409, "duplicate", "Already Exists: Dataset")
        resource = dict(body)
        resource.setdefault("location", "US")
        resource.setdefault(
            "access",
            [
                {"role": "WRITER", "specialGroup": "projectWriters"},
                {"role": "OWNER", "specialGroup": "projectOwners"},
                {"role": "OWNER", "userByEmail": CREATOR},
                {"role": "READER", "specialGroup": "projectReaders"},
            ],
        )
        resource.update(id=f"{self.project}:{dataset_id}", etag="1", kind="bigquery#dataset")
        self.datasets[dataset_id] = resource
        self.db.execute(f'create schema "{dataset_id}"')
        return _ok(resource)

    def _dataset(self, request: Request, dataset_id: str, body: dict[str, Any]) -> Response:
        resource = self.datasets.get(dataset_id)
        if resource is None:
            return _error(404, "notFound", f"Not found: Dataset {self.project}:{dataset_id}")
        if request.method == "GET":
            return _ok(resource)
        if request.method == "PATCH":
            if_match = request.headers.get("If-Match")
            if if_match and if_match != resource["etag"]:
                return _error(412, "conditionNotMet", "Precondition check failed.")
            for key, value in body.items():
                if key == "labels":
                    labels = {**resource.get("labels", {}), **value}
                    resource["labels"] = {k: v for k, v in labels.items() if v is not None}
                else:
                    resource[key] = value
            resource["etag"] = str(int(resource["etag"]) + 1)
            return _ok(resource)
        if request.method == "DELETE":
            has_tables = any(d == dataset_id for d, _ in self.tables)
            if has_tables and request.args.get("deleteContents") != "true":
                return _error(400, "resourceInUse", "Dataset is still in use")
            del self.datasets[dataset_id]
            for key in [k for k in self.tables if k[0] == dataset_id]:
                del self.tables[key]
            self.db.execute(f'drop schema "{dataset_id}" cascade')
            return Response(status=204)
        return _error(400, "invalid", "unsupported")

    # ------------------------------------------------------------ tables

    def _create_table(self, dataset_id: str, body: dict[str, Any]) -> Response:
        if dataset_id not in self.datasets:
            return _error(404, "notFound", "Not found: Dataset")
        table_id = body["tableReference"]["tableId"]
        if (dataset_id, table_id) in self.tables:
            return _error(409, "duplicate", "Already Exists: Table")
        fields = body.get("schema", {}).get("fields", [])
        columns = ", ".join(
            f'"{f["name"]}" {_DUCK_TYPES[f["type"]]}'
            + (" not null" if f.get("mode") == "REQUIRED" else "")
            for f in fields
        )
        self.db.execute(f'create table "{dataset_id}"."{table_id}" ({columns})')
        resource = dict(body, id=f"{self.project}:{dataset_id}.{table_id}", etag="1")
        self.tables[(dataset_id, table_id)] = resource
        return _ok(resource)

    def _table(self, method: str, dataset_id: str, table_id: str) -> Response:
        resource = self.tables.get((dataset_id, table_id))
        if resource is None:
            return _error(404, "notFound", "Not found: Table")
        if method == "GET":
            return _ok(resource)
        if method == "DELETE":
            del self.tables[(dataset_id, table_id)]
            self.db.execute(f'drop table "{dataset_id}"."{table_id}"')
            return Response(status=204)
        return _error(400, "invalid", "unsupported")

    def _table_data(self, request: Request, dataset_id: str, table_id: str) -> Response:
        resource = self.tables.get((dataset_id, table_id))
        if resource is None:
            return _error(404, "notFound", "Not found: Table")
        fields = resource["schema"]["fields"]
        names = ", ".join(f'"{f["name"]}"' for f in fields)
        rows = self.db.execute(f'select {names} from "{dataset_id}"."{table_id}"').fetchall()
        int64 = request.args.get("formatOptions.useInt64Timestamp", "").lower() == "true"
        return _ok(
            {
                "kind": "bigquery#tableDataList",
                "totalRows": str(len(rows)),
                "rows": [
                    {
                        "f": [
                            {"v": _cell(v, f["type"], int64)}
                            for v, f in zip(row, fields, strict=True)
                        ]
                    }
                    for row in rows
                ],
            }
        )

    # ------------------------------------------------------------ jobs

    def _job_resource(
        self, job_ref: dict[str, Any], configuration: dict[str, Any]
    ) -> dict[str, Any]:
        job_ref = dict(job_ref)
        job_ref.setdefault("jobId", uuid.uuid4().hex)
        job_ref.setdefault("projectId", self.project)
        job_ref.setdefault("location", "US")
        return {
            "kind": "bigquery#job",
            "id": f"{self.project}:{job_ref['location']}.{job_ref['jobId']}",
            "jobReference": job_ref,
            "configuration": configuration,
            "status": {"state": "DONE"},
            "statistics": {"creationTime": "0", "startTime": "0", "endTime": "0"},
        }

    def _insert_job(self, body: dict[str, Any]) -> Response:
        job = self._job_resource(body.get("jobReference", {}), body.get("configuration", {}))
        job_id = job["jobReference"]["jobId"]
        self.jobs[job_id] = job
        if "extract" in job["configuration"]:
            self._extract(job, job["configuration"]["extract"])
            return _ok(job)
        query = job["configuration"].get("query")
        if query is None:
            return _error(400, "invalid", "only query and extract jobs are inserted here")
        sql = query["query"]
        schema: list[dict[str, str]] = []
        rows: list[tuple[Any, ...]] = []
        refused = self._refusal(job, sql, query.get("maximumBytesBilled"))
        if refused:
            job["status"] = {"state": "DONE", "errorResult": refused, "errors": [refused]}
        else:
            try:
                schema, rows = self._run_script(sql, query.get("queryParameters", []))
            except (duckdb.Error, StatementFailedError) as exc:
                # A missing table or dataset is BigQuery's notFound (404); the rest invalidQuery.
                reason = "notFound" if isinstance(exc, duckdb.CatalogException) else "invalidQuery"
                job["status"] = {
                    "state": "DONE",
                    "errorResult": {"reason": reason, "message": str(exc).splitlines()[0]},
                    "errors": [{"reason": reason, "message": "statement failed"}],
                }
            else:
                if self.transaction_s > 0 and sql.lstrip().upper().startswith("BEGIN"):
                    until = time.monotonic() + self.transaction_s
                    for table in _mutated(sql):
                        self.held[table] = until
                    self.done_at[job_id] = until
                    job["status"] = {"state": "RUNNING"}
        job["statistics"]["query"] = {"totalBytesProcessed": str(1024 * len(rows))}
        job["statistics"]["totalBytesProcessed"] = str(1024 * len(rows))
        self.results[job_id] = (schema, rows)
        return _ok(job)

    def _refusal(self, job: dict[str, Any], sql: str, cap: str | None) -> dict[str, str] | None:
        """The errorResult BigQuery would finish this query job with, if any."""
        location = job["jobReference"]["location"]
        named = {(m.group(2), m.group(3)) for m in _REF.finditer(sql)}
        for dataset_id, _table in sorted(named):
            found = self.datasets.get(dataset_id)
            if found is not None and found.get("location", "US") != location:
                return {
                    "reason": "notFound",
                    "message": f"Not found: Dataset {self.project}:{dataset_id} was not found"
                    f" in location {location}",
                }
        now = time.monotonic()
        for dataset_id, table in sorted(_mutated(sql)):
            if (
                sql.lstrip().upper().startswith("BEGIN")
                and self.held.get((dataset_id, table), 0) > now
            ):
                return {
                    "reason": "invalidQuery",
                    "message": "Transaction is aborted due to concurrent update against table"
                    f" {self.project}:{dataset_id}.{table}. Transaction ID: {uuid.uuid4()}",
                }
        if cap is not None:
            billed = sum(self._cells(key) * 8 for key in named if key in self.tables)
            if billed > int(cap):
                return {
                    "reason": "bytesBilledLimitExceeded",
                    "message": f"Query exceeded limit for bytes billed: {cap}."
                    f" {max(billed, 10 * 1024**2)} or higher required.",
                }
        return None

    def _cells(self, key: tuple[str, str]) -> int:
        fields = self.tables[key]["schema"]["fields"]
        row = self.db.execute(f'select count(*) from "{key[0]}"."{key[1]}"').fetchone()
        return len(fields) * int(row[0] if row else 0)

    def _extract(self, job: dict[str, Any], extract: dict[str, Any]) -> None:
        source = extract["sourceTable"]
        key = (source["datasetId"], source["tableId"])
        location = job["jobReference"]["location"]
        error: dict[str, str] | None = None
        (uri,) = extract["destinationUris"]
        target = _GS_URI.match(uri)
        if key not in self.tables:
            error = {"reason": "notFound", "message": f"Not found: Table {key[0]}.{key[1]}"}
        elif self.datasets[key[0]].get("location", "US") != location:
            error = {
                "reason": "notFound",
                "message": f"Not found: Dataset {self.project}:{key[0]} was not found"
                f" in location {location}",
            }
        elif extract.get("destinationFormat") != "PARQUET" or target is None:
            error = {"reason": "invalid", "message": "unsupported extract"}
        elif self.storage is None:
            error = {"reason": "accessDenied", "message": "no Cloud Storage here"}
        if error is not None:
            job["status"] = {"state": "DONE", "errorResult": error, "errors": [error]}
            return
        assert target is not None and self.storage is not None
        fields = self.tables[key]["schema"]["fields"]
        schema = pa.schema(
            [
                pa.field(f["name"], _PARQUET_TYPES[f["type"]], nullable=f.get("mode") != "REQUIRED")
                for f in fields
            ]
        )
        names = ", ".join(f'"{f["name"]}"' for f in fields)
        relation = self.db.sql(f'select {names} from "{key[0]}"."{key[1]}"')
        table = relation.to_arrow_table().cast(schema)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        # One shard: the wildcard becomes BigQuery's first 12-digit number.
        name = target.group(2).replace("*", "000000000000")
        self.storage.upload(target.group(1), name, buffer.getvalue(), "application/octet-stream")
        job["statistics"]["extract"] = {
            "destinationUriFileCounts": ["1"],
            "inputBytes": str(buffer.tell()),
        }

    def _run_script(
        self, sql: str, parameters: list[dict[str, Any]]
    ) -> tuple[list[dict[str, str]], list[tuple[Any, ...]]]:
        values = {
            p["name"]: _param_value(p["parameterType"], p["parameterValue"]) for p in parameters
        }
        translated = _REF.sub(lambda m: f'"{m.group(2)}"."{m.group(3)}"', sql)
        translated = _IN_UNNEST.sub(r"= any(\1)", translated)
        statements = [s.strip() for s in translated.split(";") if s.strip()]
        schema: list[dict[str, str]] = []
        rows: list[tuple[Any, ...]] = []
        in_transaction = False
        try:
            for statement in statements:
                if self.failing_statement and self.failing_statement in statement:
                    raise StatementFailedError("injected failure")
                used = {name: values[name] for name in _PARAM.findall(statement)}
                cursor = self.db.execute(_PARAM.sub(r"$\1", statement), used or None)
                upper = statement.upper()
                if upper.startswith("BEGIN"):
                    in_transaction = True
                elif upper.startswith("COMMIT"):
                    in_transaction = False
                if cursor.description and upper.lstrip("( ").startswith(("SELECT", "WITH")):
                    schema = [
                        {"name": d[0], "type": _bq_type(str(d[1]))} for d in cursor.description
                    ]
                    rows = cursor.fetchall()
        except Exception:
            if in_transaction:
                self.db.execute("rollback")
            raise
        return schema, rows

    def _query_results(self, request: Request, job_id: str) -> Response:
        if job_id not in self.jobs:
            return _error(404, "notFound", "no such job")
        job = self.jobs[job_id]
        if time.monotonic() < self.done_at.get(job_id, 0.0):
            return _ok(
                {
                    "kind": "bigquery#getQueryResultsResponse",
                    "jobReference": job["jobReference"],
                    "jobComplete": False,
                }
            )
        error = job["status"].get("errorResult")
        if error:
            status = 404 if error["reason"] == "notFound" else 400
            return _error(status, error["reason"], error["message"])
        schema, rows = self.results[job_id]
        int64 = request.args.get("formatOptions.useInt64Timestamp", "").lower() == "true"
        return _ok(
            {
                "kind": "bigquery#getQueryResultsResponse",
                "jobReference": job["jobReference"],
                "jobComplete": True,
                "schema": {"fields": schema},
                "totalRows": str(len(rows)),
                "totalBytesProcessed": job["statistics"]["query"]["totalBytesProcessed"],
                "rows": [
                    {
                        "f": [
                            {"v": _cell(v, f["type"], int64)}
                            for v, f in zip(row, schema, strict=True)
                        ]
                    }
                    for row in rows
                ],
            }
        )

    def _upload(self, request: Request) -> Response:
        """A multipart load job: JSON metadata, then the Parquet bytes."""
        raw = (
            f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + request.get_data()
        )
        message = email.message_from_bytes(raw, policy=email.policy.HTTP)
        parts = list(message.iter_parts())  # type: ignore[attr-defined]
        metadata = json.loads(parts[0].get_payload(decode=True))
        data = parts[1].get_payload(decode=True)
        job = self._job_resource(metadata.get("jobReference", {}), metadata["configuration"])
        load = metadata["configuration"]["load"]
        dest = load["destinationTable"]
        key = (dest["datasetId"], dest["tableId"])
        if key not in self.tables:
            return _error(404, "notFound", "Not found: Table")
        table = pq.read_table(io.BytesIO(data))
        name = f'"{key[0]}"."{key[1]}"'
        if load.get("writeDisposition") == "WRITE_TRUNCATE":
            self.db.execute(f"delete from {name}")
        self.db.register("_upload", table)
        self.db.execute(f"insert into {name} by name select * from _upload")
        self.db.unregister("_upload")
        job["statistics"]["load"] = {"outputRows": str(table.num_rows)}
        self.jobs[job["jobReference"]["jobId"]] = job
        return _ok(job)
