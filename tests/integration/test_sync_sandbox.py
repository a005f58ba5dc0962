"""The whole path on the local system, over real HTTP: connect the sandbox
platform through the OAuth function and the sandbox provider, sync with the
engine (the sandbox connector against the sandbox report API), query through
the query function. Nothing is replaced: this is what `make run` users do.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from cosma import localdb, sandbox_oauth, sandbox_platform
from cosma.server import LocalServer
from shared.settings import Settings
from shared.sync import leases, runner
from shared.warehouse import COLUMN_NAMES, dataset_id_for
from tests.support.identity import TokenIssuer
from tests.support.seed import Org, Seeder
from tests.support.servers import serve
from tests.support.sync_env import Bench, sync_database

EXPORT_LINK_TTL_S = 5


@pytest.fixture(scope="module")
def local(
    pg: localdb.LocalDatabase,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Bench, str]]:
    db = sync_database(pg)
    holder: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    with serve(app) as url:
        state = tmp_path_factory.mktemp("sync_sandbox")
        local_settings = settings.with_changes(
            database_url=db.app_url,
            worker_database_url=db.worker_url,
            public_url=url,
            warehouse_dir=state / "warehouse",
            secrets_dir=state / "secrets",
            sync_first_days=10,
            export_link_ttl_s=EXPORT_LINK_TTL_S,
        )
        sandbox_oauth.ensure_client_secret(local_settings)
        runtime = sandbox_platform.local_runtime(local_settings)
        holder["app"] = LocalServer(runtime)
        yield Bench(db, runtime, Seeder(db.admin_url)), url
        runtime.close()


def _connect(bench: Bench, url: str, tokens: TokenIssuer) -> tuple[Org, dict[str, str]]:
    org = bench.org()
    admin = org.principal(org.user("admin"))
    auth = tokens.header(admin)
    started = requests.post(
        f"{url}/oauth/sandbox/start",
        json={"client_id": org.clients[0], "all_accounts": True},
        headers=auth,
        timeout=10,
    )
    assert started.status_code == 200, started.text
    consent = requests.get(started.json()["authorization_url"], allow_redirects=False, timeout=10)
    assert consent.status_code == 302
    done = requests.get(
        consent.headers["Location"], headers=auth, allow_redirects=False, timeout=10
    )
    assert done.status_code == 302
    assert parse_qs(urlsplit(done.headers["Location"]).query)["status"] == ["connected"]
    return org, auth


def _query(url: str, auth: dict[str, str], client_id: str) -> list[list[Any]]:
    today = dt.datetime.now(dt.UTC).date()
    response = requests.post(
        f"{url}/query",
        json={
            "client_id": client_id,
            "platforms": ["sandbox"],
            "date_from": str(today - dt.timedelta(days=30)),
            "date_to": str(today + dt.timedelta(days=1)),
            "metrics": ["impressions", "clicks", "spend", "conversions"],
            "dimensions": ["date", "account_id", "campaign_id"],
        },
        headers=auth,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    rows: list[list[Any]] = response.json()["rows"]
    return rows


def test_connect_sync_query_and_sync_again(local: tuple[Bench, str], tokens: TokenIssuer) -> None:
    bench, url = local
    bench.retire_all()
    org, auth = _connect(bench, url, tokens)
    report = runner.run(bench.runtime)
    [result] = [r.public() for r in report.results]
    assert result["outcome"] == "ok" and result["accounts"] == 3
    # 3 accounts x 11 days (10 back + today, per account timezone) x 12 ads a day.
    assert result["rows"] == 3 * 11 * 12
    first = _query(url, auth, org.clients[0])
    assert first and {r[1] for r in first} == {"sbx-1001", "sbx-1002", "sbx-1003"}

    # The same sync again: the lookback is re-read and replaced, nothing doubles.
    assert leases.make_due(bench.runtime.worker_db) == 1
    again = runner.run(bench.runtime)
    assert [r.outcome for r in again.results] == ["ok"]
    assert _query(url, auth, org.clients[0]) == first

    # The connection's status shows the sync.
    listed = requests.get(
        f"{url}/connections", params={"client_id": org.clients[0]}, headers=auth, timeout=10
    ).json()["connections"]
    assert listed[0]["status"] == "active" and listed[0]["last_synced_at"]
    assert listed[0]["health"] is None


def test_an_export_of_a_synced_client_downloads_its_rows_until_the_link_expires(
    local: tuple[Bench, str], tokens: TokenIssuer
) -> None:
    bench, url = local
    bench.retire_all()
    org, auth = _connect(bench, url, tokens)
    [result] = runner.run(bench.runtime).results
    assert result.outcome == "ok"
    client_id = org.clients[0]
    answered = requests.post(f"{url}/clients/{client_id}/export", headers=auth, timeout=30)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    (obj,) = body["objects"]
    assert obj["url"].startswith(f"{url}/clients/{client_id}/exports/{body['export_id']}/")
    assert body["manifest"]["url"] and body["expires_at"]

    # Following the link gives Parquet whose rows are the client's rows.
    download = requests.get(obj["url"], headers=auth, timeout=30)
    assert download.status_code == 200, download.text
    exported = pq.read_table(io.BytesIO(download.content))
    assert exported.num_rows == obj["rows"] == result.rows
    dataset_id = dataset_id_for(bench.runtime.settings.env, client_id, "sandbox")
    location = requests.get(
        f"{url}/datasets", params={"client_id": client_id}, headers=auth, timeout=10
    ).json()["datasets"][0]["location"]
    columns = ", ".join(f'"{c}"' for c in COLUMN_NAMES)
    stored = bench.runtime.warehouse.query(
        f"select {columns} from {bench.runtime.warehouse.table_ref(dataset_id)}",
        {},
        location=location,
        labels={},
        max_bytes_billed=10**9,
        timeout_s=30,
        datasets=[dataset_id],
    )
    assert sorted(tuple(row.values()) for row in exported.to_pylist()) == sorted(stored.rows)
    assert isinstance(exported.schema.field("synced_at").type, pa.TimestampType)

    # After the expiry the same link is refused.
    expires_at = dt.datetime.fromisoformat(body["expires_at"]).timestamp()
    time.sleep(max(0.0, expires_at - time.time()) + 0.2)
    refused = requests.get(obj["url"], headers=auth, timeout=30)
    assert refused.status_code == 410
    assert refused.headers["Content-Type"].startswith("application/problem+json")
