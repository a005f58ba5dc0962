"""Google Ads connector against a local searchStream server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest

from shared import errors
from shared.errors import PermissionDenied, ProviderUnavailable, RateLimited
from shared.platforms.registry import Registry
from shared.platforms.reports import ApiClient
from shared.platforms.reports.google_ads import (
    API_VERSION,
    CLIENTS_GAQL,
    GoogleAdsAccount,
    GoogleAdsConnector,
)
from shared.settings import Settings
from shared.warehouse import DAILY_SCHEMA
from shared.warehouse.schema import conform
from tests.support.completeness import account_totals, assert_complete
from tests.support.platform_servers import GoogleAdsServer, Row, sample_rows
from tests.support.servers import serve

D1 = dt.date(2024, 3, 1)
MANAGER, CLIENT_A, CLIENT_B, DIRECT = "1111111111", "2222222222", "3333333333", "4444444444"


def _client(cid: str, manager: bool = False, level: int = 1, **kw: str) -> dict[str, object]:
    return {
        "resourceName": f"customers/{MANAGER}/customerClients/{cid}",
        "id": cid,
        "manager": manager,
        "level": str(level),
        "descriptiveName": kw.get("name", f"Client {cid}"),
        "currencyCode": kw.get("currency", "USD"),
        "timeZone": kw.get("tz", "America/New_York"),
        "status": "ENABLED",
    }


@pytest.fixture
def google() -> Iterator[tuple[GoogleAdsServer, ApiClient]]:
    server = GoogleAdsServer(
        rows=sample_rows(CLIENT_A, D1 - dt.timedelta(days=1), 4, ads=3)
        + sample_rows(CLIENT_B, D1, 2),
        clients={
            MANAGER: [
                _client(MANAGER, manager=True, level=0),
                _client(CLIENT_A, tz="Australia/Sydney", currency="AUD"),
                _client("5555555555", manager=True),
                _client(CLIENT_B, level=2),
            ],
            DIRECT: [_client(DIRECT, level=0, currency="EUR", tz="Europe/Berlin")],
        },
        accessible=[MANAGER, DIRECT],
    )
    with serve(server) as url:
        yield server, ApiClient(url, "tok", headers={"developer-token": "dev-token"})


def test_managers_expand_to_their_client_accounts(
    google: tuple[GoogleAdsServer, ApiClient],
) -> None:
    server, api = google
    accounts = Registry.from_settings(Settings()).connector("google_ads").accounts(api, [])
    assert [(a.id, a.currency, a.timezone) for a in accounts] == [
        (CLIENT_A, "AUD", "Australia/Sydney"),
        (CLIENT_B, "USD", "America/New_York"),
        (DIRECT, "EUR", "Europe/Berlin"),
    ]
    assert all(isinstance(a, GoogleAdsAccount) for a in accounts)
    assert [a.login_customer_id for a in accounts] == [MANAGER, MANAGER, DIRECT]  # type: ignore[attr-defined]
    first, second, third = server.requests
    assert (first["method"], first["path"]) == (
        "GET",
        f"/{API_VERSION}/customers:listAccessibleCustomers",
    )
    assert second["path"] == f"/{API_VERSION}/customers/{MANAGER}/googleAds:searchStream"
    assert second["json"] == {"query": CLIENTS_GAQL}
    assert "customer_client.manager = false" in CLIENTS_GAQL
    assert second["headers"]["Login-Customer-Id"] == MANAGER
    assert second["headers"]["Developer-Token"] == "dev-token"
    assert third["headers"]["Login-Customer-Id"] == DIRECT


def test_configured_ids_are_the_roots(google: tuple[GoogleAdsServer, ApiClient]) -> None:
    server, api = google
    accounts = GoogleAdsConnector().accounts(api, ["111-111-1111"])
    assert [a.id for a in accounts] == [CLIENT_A, CLIENT_B]
    assert server.paths() == [f"/{API_VERSION}/customers/{MANAGER}/googleAds:searchStream"]
    with pytest.raises(errors.ValidationFailed):
        GoogleAdsConnector().accounts(api, ["1' OR 1=1"])


def test_fetch_sends_exact_gaql_and_normalises(google: tuple[GoogleAdsServer, ApiClient]) -> None:
    server, api = google
    server.page_size = 4  # several batches in the stream
    account = GoogleAdsAccount(
        id=CLIENT_A, currency="AUD", timezone="Australia/Sydney", login_customer_id=MANAGER
    )
    table = GoogleAdsConnector().fetch(api, account, D1, D1 + dt.timedelta(days=1))
    request = server.requests[0]
    assert request["method"] == "POST"
    assert request["path"] == f"/{API_VERSION}/customers/{CLIENT_A}/googleAds:searchStream"
    assert request["json"] == {
        "query": "SELECT segments.date, customer.currency_code, campaign.id, campaign.name, "
        "ad_group.id, ad_group_ad.ad.id, metrics.impressions, metrics.clicks, "
        "metrics.cost_micros, metrics.conversions, metrics.conversions_value "
        "FROM ad_group_ad WHERE segments.date BETWEEN '2024-03-01' AND '2024-03-02'"
    }
    assert request["headers"]["Login-Customer-Id"] == MANAGER
    assert request["headers"]["Authorization"] == "Bearer tok"
    assert table.schema == DAILY_SCHEMA
    assert table.num_rows == 6
    conform(table, CLIENT_A, D1, D1 + dt.timedelta(days=1))
    end = D1 + dt.timedelta(days=1)
    expected = sorted(
        (r for r in server.rows if r.account_id == CLIENT_A and D1 <= r.date <= end),
        key=lambda r: r.ad_id,
    )
    got = sorted(table.to_pylist(), key=lambda r: r["ad_id"])
    assert [g["spend_micros"] for g in got] == [r.spend_micros for r in expected]
    assert [g["conversion_value_micros"] for g in got] == [r.value_micros for r in expected]
    assert {g["currency"] for g in got} == {"USD"}  # the report's customer.currency_code


def test_empty_stream_gives_empty_table(google: tuple[GoogleAdsServer, ApiClient]) -> None:
    _, api = google
    table = GoogleAdsConnector().fetch(
        api, GoogleAdsAccount(id=DIRECT, login_customer_id=DIRECT), D1, D1
    )
    assert table.num_rows == 0 and table.schema == DAILY_SCHEMA


def test_value_micros_are_exact_for_awkward_amounts() -> None:
    server = GoogleAdsServer(
        rows=[Row(CLIENT_A, D1, "1", "2", "3", value_micros=1_234_567_891, spend_micros=1)]
    )
    with serve(server) as url:
        table = GoogleAdsConnector().fetch(
            ApiClient(url, "t"), GoogleAdsAccount(id=CLIENT_A), D1, D1
        )
    assert table.column("conversion_value_micros").to_pylist() == [1_234_567_891]
    assert table.column("spend_micros").to_pylist() == [1]
    assert "Login-Customer-Id" not in server.requests[0]["headers"]


@pytest.mark.parametrize(
    ("fault", "error"), [(403, PermissionDenied), (500, ProviderUnavailable), (429, RateLimited)]
)
def test_faults(google: tuple[GoogleAdsServer, ApiClient], fault: int, error: type) -> None:
    server, api = google
    server.fail(fault, retry_after="9")
    with pytest.raises(error):
        GoogleAdsConnector().fetch(api, GoogleAdsAccount(id=CLIENT_A), D1, D1)


def test_performance_max_spend_is_loaded_and_totals_match() -> None:
    # Performance Max campaigns have no ad groups or ads: an ad-level report alone
    # misses their spend. The account's totals (FROM customer) include it.
    search = sample_rows(CLIENT_A, D1, 3, ads=2)
    pmax = [
        replace(
            r,
            campaign_id="9900",
            campaign_name="PMax",
            channel="PERFORMANCE_MAX",
            spend_micros=7_770_000,
        )
        for r in sample_rows(CLIENT_A, D1, 3, ads=1)
    ]
    server = GoogleAdsServer(rows=search + pmax)
    end = D1 + dt.timedelta(days=2)
    with serve(server) as url:
        api = ApiClient(url, "t")
        table = GoogleAdsConnector().fetch(api, GoogleAdsAccount(id=CLIENT_A), D1, end)
        totals = account_totals("google_ads", api, CLIENT_A, D1, end)
    assert_complete(table, totals)
    loaded = [r for r in table.to_pylist() if r["campaign_id"] == "9900"]
    assert len(loaded) == 3 and {r["spend_micros"] for r in loaded} == {7_770_000}
    assert {(r["ad_group_id"], r["ad_id"]) for r in loaded} == {(None, None)}
    queries = [r["json"]["query"] for r in server.requests if r["json"]]
    assert "FROM campaign " in queries[1]
    assert "campaign.advertising_channel_type = 'PERFORMANCE_MAX'" in queries[1]
