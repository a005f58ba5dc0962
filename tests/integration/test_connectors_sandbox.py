"""The sandbox connector against the real local server's sandbox report API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from werkzeug.test import Client

from cosma import sandbox_oauth, sandbox_platform, sandbox_reports
from cosma.server import LocalServer
from shared.errors import AccessTokenRejected
from shared.platforms.reports import ApiClient
from shared.platforms.reports.normalize import micros
from shared.settings import Settings
from shared.warehouse import DAILY_SCHEMA
from shared.warehouse.schema import conform
from tests.support.servers import serve

D1 = dt.date(2024, 7, 1)
PER_DAY = sandbox_reports.CAMPAIGNS * sandbox_reports.AD_GROUPS * sandbox_reports.ADS


@pytest.fixture(scope="module")
def base_url(server: LocalServer) -> Iterator[str]:
    with serve(server) as url:
        yield url + "/sandbox/api"


@pytest.fixture
def api(base_url: str) -> ApiClient:
    token = str(sandbox_oauth.provider._issue()["access_token"])
    return ApiClient(base_url, token, platform="sandbox")


def test_accounts(api: ApiClient) -> None:
    connector = sandbox_platform.registry(Settings()).connector("sandbox")
    accounts = connector.accounts(api, [])
    assert [a.id for a in accounts] == ["sbx-1001", "sbx-1002", "sbx-1003"]
    assert accounts[1].currency == "EUR" and accounts[1].timezone == "Europe/Berlin"
    assert [a.id for a in connector.accounts(api, ["sbx-1003"])] == ["sbx-1003"]


def test_fetch_is_paginated_deterministic_and_exact(api: ApiClient) -> None:
    connector = sandbox_platform.registry(Settings()).connector("sandbox")
    account = connector.accounts(api, ["sbx-1002"])[0]
    end = D1 + dt.timedelta(days=60)  # 61 days x 12 ads > one 500-row page
    first = connector.fetch(api, account, D1, end)
    again = connector.fetch(api, account, D1, end)
    assert first.schema == DAILY_SCHEMA and first.num_rows == 61 * PER_DAY
    conform(first, "sbx-1002", D1, end)
    assert first.drop_columns(["synced_at"]).equals(again.drop_columns(["synced_at"]))
    assert set(first.column("currency").to_pylist()) == {"EUR"}
    rows = sandbox_reports.rows_for("sbx-1002", D1)
    assert first.column("spend_micros").to_pylist()[:PER_DAY] == [micros(r["spend"]) for r in rows]
    assert len({r["ad_id"] for r in first.to_pylist()}) == PER_DAY


def test_pages_split_anywhere(server: LocalServer, api: ApiClient) -> None:
    client = Client(server)
    headers = {"Authorization": f"Bearer {api._token}"}
    whole = client.get(
        "/sandbox/api/report?account_id=sbx-1001&date_from=2024-07-01&date_to=2024-07-03",
        headers=headers,
    ).get_json()["rows"]
    pieces: list[dict[str, object]] = []
    token = ""
    while True:
        answer = client.get(
            "/sandbox/api/report?account_id=sbx-1001&date_from=2024-07-01&date_to=2024-07-03"
            f"&page_size=5{'&page_token=' + token if token else ''}",
            headers=headers,
        ).get_json()
        pieces.extend(answer["rows"])
        token = answer["next_page_token"] or ""
        if not token:
            break
    assert pieces == whole and len(whole) == 3 * PER_DAY


def test_unknown_or_missing_token_is_refused(base_url: str) -> None:
    with pytest.raises(AccessTokenRejected):
        sandbox_platform.registry(Settings()).connector("sandbox").accounts(
            ApiClient(base_url, "not-issued"), []
        )


def test_bad_queries_are_problems(server: LocalServer, api: ApiClient) -> None:
    client = Client(server)
    headers = {"Authorization": f"Bearer {api._token}"}
    bad = client.get(
        "/sandbox/api/report?account_id=sbx-1001&date_from=2024-07-03&date_to=2024-07-01",
        headers=headers,
    )
    assert bad.status_code == 422 and bad.content_type == "application/problem+json"
    unknown = client.get(
        "/sandbox/api/report?account_id=sbx-9999&date_from=2024-07-01&date_to=2024-07-01",
        headers=headers,
    )
    assert unknown.status_code == 404
    injected = client.get(
        "/sandbox/api/report?account_id=sbx-1001'--&date_from=2024-07-01&date_to=2024-07-01",
        headers=headers,
    )
    assert injected.status_code == 422
