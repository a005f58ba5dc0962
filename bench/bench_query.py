"""`POST /query` cost over DuckDB, at 10k and 1M rows: an authenticated request
through the served function (the LocalServer's WSGI app, called in process with
werkzeug's test client: routing, auth, rate-limit hook, Postgres authorization
and dataset lookup under RLS, the warehouse adapter's per-query ATTACH, the
audit record, JSON) vs the same SQL and parameters executed directly on a warm
DuckDB connection with the dataset attached. Samples alternate, medians
reported. Goal: at most 2 ms more at the median.

Rate limits are off in this runtime (they are a Postgres round trip measured
by the rate-limit tests; with them on, the benchmark's own requests would be
limited).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from werkzeug.test import Client

from cosma import localdb
from cosma.issuer import LocalIssuer
from cosma.server import LocalServer
from shared import provisioning
from shared.audit import RequestAudit
from shared.principal import Principal
from shared.reporting import QuerySpec
from shared.reporting.sql import build
from shared.runtime import Runtime
from shared.settings import Settings
from shared.warehouse import DAILY_SCHEMA

ISSUER = "https://clerk.bench.test"
AZP = "https://app.bench.test"
START = dt.date(2024, 1, 1)
ACCOUNTS = 10
DAYS = 365
SAMPLES = {10_000: 400, 1_000_000: 60}


def _rows(count: int, account: int) -> pa.Table:
    """`count` daily rows of one account, spread over a year and 200 campaigns."""
    idx = range(count)
    epoch = (START - dt.date(1970, 1, 1)).days
    campaigns = [f"cmp-{(i * 7 + account) % 200}" for i in idx]
    return pa.table(
        {
            "date": pa.array([epoch + (i % DAYS) for i in idx], pa.int32()).cast(pa.date32()),
            "account_id": pa.array([f"acct-{account}"] * count),
            "campaign_id": campaigns,
            "campaign_name": [f"Campaign {c}" for c in campaigns],
            "ad_group_id": [f"ag-{i % 1000}" for i in idx],
            "ad_id": [f"ad-{i}" for i in idx],
            "impressions": pa.array([(i * 37) % 5000 for i in idx], pa.int64()),
            "clicks": pa.array([(i * 13) % 90 for i in idx], pa.int64()),
            "spend_micros": pa.array([(i * 7919) % 40_000_000 for i in idx], pa.int64()),
            "conversions": pa.array([(i % 7) / 2 for i in idx], pa.float64()),
            "conversion_value_micros": pa.array(
                [(i * 104_729) % 90_000_000 for i in idx], pa.int64()
            ),
            "currency": pa.array(["EUR" if account % 2 else "USD"] * count),
            "synced_at": pa.array(
                [dt.datetime(2025, 1, 1, tzinfo=dt.UTC)] * count, pa.timestamp("us", tz="UTC")
            ),
        }
    ).cast(DAILY_SCHEMA)


def _seed(admin_url: str) -> tuple[str, str, list[str]]:
    org, user = "org_bench", "user_bench"
    with psycopg.connect(admin_url, autocommit=True) as conn, conn.transaction():
        conn.execute("insert into organizations (id, name) values (%s, 'Bench')", (org,))
        conn.execute(
            "insert into members (org_id, user_id, role) values (%s, %s, 'admin')", (org, user)
        )
        clients = [
            str(row[0])
            for row in (
                conn.execute(
                    "insert into clients (org_id, name) values (%s, %s) returning id", (org, name)
                ).fetchone()
                for name in ("small", "large")
            )
            if row is not None
        ]
    return org, user, clients


def _load(runtime: Runtime, principal: Principal, client_id: str, rows: int) -> str:
    audit = RequestAudit(lambda: runtime.db, action="bench.load", request_id="bench-load")
    record = provisioning.provision(runtime, principal, audit, client_id, "meta")
    end = START + dt.timedelta(days=DAYS - 1)
    for account in range(ACCOUNTS):
        table = _rows(rows // ACCOUNTS, account)
        runtime.warehouse.replace_slice(record.dataset_id, table, f"acct-{account}", START, end)
    return record.dataset_id


def _alternate(fns: list[Callable[[], object]], n: int) -> list[float]:
    """Medians of each, sampled in turn so machine load hits all alike."""
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(n):
        for fn, taken in zip(fns, samples, strict=True):
            started = time.perf_counter()
            fn()
            taken.append(time.perf_counter() - started)
    return [statistics.median(taken) for taken in samples]


def _spec(client_id: str) -> dict[str, Any]:
    # A dashboard table: a quarter by campaign, money and ratios, top 100 by spend.
    return {
        "client_id": client_id,
        "platforms": ["meta"],
        "date_from": "2024-04-01",
        "date_to": "2024-06-30",
        "metrics": ["impressions", "clicks", "spend", "ctr", "cpc", "roas"],
        "dimensions": ["campaign_id"],
        "order_by": ["-spend"],
        "limit": 100,
    }


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        db = localdb.prepare(admin_url=None, datadir=Path(tmp) / "pg", dbname="bench_query")
        try:
            return _measure(db, Path(tmp))
        finally:
            db.stop()


def _measure(db: localdb.LocalDatabase, tmp: Path) -> list[str]:
    issuer = LocalIssuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    pem = issuer.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    settings = Settings(
        env="bench",
        database_url=db.app_url,
        worker_database_url=db.worker_url,
        warehouse_dir=tmp / "warehouse",
        clerk_issuer=ISSUER,
        clerk_jwt_key=pem.decode(),
        allowed_origins=(AZP,),
        rate_limit_ip="",
        rate_limit_user="",
        log_level="WARNING",
    )
    org, user, clients = _seed(db.admin_url)
    runtime = Runtime(settings)
    lines: list[str] = []
    try:
        admin = Principal(user_id=user, org_id=org, role="admin")
        token = issuer.mint(user_id=user, org_id=org, role="admin", issuer=ISSUER, azp=AZP)
        headers = {"Authorization": f"Bearer {token}"}
        client = Client(LocalServer(runtime))
        for (rows, samples), client_id in zip(SAMPLES.items(), clients, strict=True):
            dataset_id = _load(runtime, admin, client_id, rows)
            name = "10k" if rows == 10_000 else "1M"
            lines += _compare(name, runtime, client, headers, dataset_id, _spec(client_id), samples)
    finally:
        runtime.close()
    return lines


def _compare(
    name: str,
    runtime: Runtime,
    client: Client,
    headers: dict[str, str],
    dataset_id: str,
    spec: dict[str, Any],
    samples: int,
) -> list[str]:
    """Served vs direct DuckDB vs the adapter alone, for one dataset."""
    settings = runtime.settings
    body = json.dumps(spec)
    statement = build(
        QuerySpec.model_validate(spec),
        [("meta", runtime.warehouse.table_ref(dataset_id))],
        "duckdb",
    )
    values = {p.name: p.value for p in statement.params}
    direct = duckdb.connect(":memory:")
    path = str(Path(str(settings.warehouse_dir)) / f"{dataset_id}.duckdb").replace("'", "''")
    direct.execute(f"attach '{path}' as \"{dataset_id}\" (read_only)")

    def served() -> None:
        response = client.post(
            "/query", data=body, content_type="application/json", headers=headers
        )
        assert response.status_code == 200, response.get_data(as_text=True)

    def straight() -> None:
        direct.execute(statement.sql, values).fetchall()

    def adapter() -> None:
        runtime.warehouse.query(
            statement.sql,
            statement.params,
            location="US",
            labels={},
            max_bytes_billed=settings.bytes_billed_cap,
            timeout_s=settings.query_timeout_s,
            datasets=[dataset_id],
        )

    try:
        # The same answer both ways (detail rows are `_total = 0`), then warm every path.
        answer = client.post(
            "/query", data=body, content_type="application/json", headers=headers
        ).get_json()
        detail = [r for r in direct.execute(statement.sql, values).fetchall() if r[0] == 0]
        assert len(answer["rows"]) == min(len(detail), spec["limit"]) > 0
        _alternate([straight, adapter, served], 20)
        baseline, through_adapter, subject = _alternate([straight, adapter, served], samples)
    finally:
        direct.close()
    return [
        f"query_{name}: {subject * 1e3:.2f} ms median (+{(subject - baseline) * 1e3:.2f} ms"
        f" vs direct DuckDB at {baseline * 1e3:.2f} ms; goal <= +2 ms)",
        f"query_{name}_above_adapter: {(subject - through_adapter) * 1e3:.2f} ms median"
        f" (served {subject * 1e3:.2f} ms vs the DuckDB adapter's query()"
        f" at {through_adapter * 1e3:.2f} ms)",
    ]
