"""TikTok connector against a local integrated-report server."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest

from shared.errors import (
    AccessTokenRejected,
    InvalidGrant,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from shared.platforms.base import Account
from shared.platforms.reports import ApiClient
from shared.platforms.reports.tiktok import METRICS, TikTokConnector
from shared.warehouse import DAILY_SCHEMA
from shared.warehouse.schema import conform
from tests.support.completeness import account_totals, assert_complete
from tests.support.platform_servers import TikTokServer, sample_rows
from tests.support.servers import serve

D1 = dt.date(2024, 1, 1)
ADV = "7000000000001"
PREFIX = "/open_api/v1.3"


@pytest.fixture
def tiktok() -> Iterator[tuple[TikTokServer, ApiClient]]:
    server = TikTokServer(
        rows=sample_rows(ADV, D1, 40, ads=2) + sample_rows("7000000000002", D1, 3),
        advertisers=[
            {"advertiser_id": ADV, "name": "Brand", "currency": "GBP", "timezone": "Europe/London"}
        ],
    )
    with serve(server) as url:
        yield server, ApiClient(url + PREFIX, "tt-token")


def test_accounts_from_configured_advertiser_ids(tiktok: tuple[TikTokServer, ApiClient]) -> None:
    server, api = tiktok
    accounts = TikTokConnector().accounts(api, [ADV])
    assert [(a.id, a.currency, a.timezone) for a in accounts] == [(ADV, "GBP", "Europe/London")]
    request = server.requests[0]
    assert request["path"] == f"{PREFIX}/advertiser/info/"
    assert json.loads(request["args"]["advertiser_ids"]) == [ADV]
    assert request["headers"]["Access-Token"] == "tt-token"
    assert "Authorization" not in request["headers"]
    assert TikTokConnector().accounts(api, []) == []


def test_report_pages_and_30_day_chunks(tiktok: tuple[TikTokServer, ApiClient]) -> None:
    server, api = tiktok
    end = D1 + dt.timedelta(days=34)
    table = TikTokConnector().fetch(api, Account(id=ADV, currency="GBP"), D1, end)
    assert table.schema == DAILY_SCHEMA
    assert table.num_rows == 70
    conform(table, ADV, D1, end)
    args = [r["args"] for r in server.requests]
    assert [(a["start_date"], a["end_date"], a["page"]) for a in args] == [
        ("2024-01-01", "2024-01-30", "1"),
        ("2024-01-31", "2024-02-04", "1"),
    ]
    first = args[0]
    assert first["report_type"] == "BASIC" and first["data_level"] == "AUCTION_AD"
    assert json.loads(first["dimensions"]) == ["ad_id", "stat_time_day"]
    assert json.loads(first["metrics"]) == list(METRICS)
    assert first["advertiser_id"] == ADV and first["page_size"] == "1000"
    assert set(table.column("currency").to_pylist()) == {"GBP"}


def test_pagination_by_page_number(tiktok: tuple[TikTokServer, ApiClient]) -> None:
    server, api = tiktok
    from shared.platforms.reports import tiktok as module

    size = module.PAGE_SIZE
    module.PAGE_SIZE = 3
    try:
        table = TikTokConnector().fetch(api, Account(id=ADV), D1, D1 + dt.timedelta(days=3))
    finally:
        module.PAGE_SIZE = size
    assert table.num_rows == 8
    assert [r["args"]["page"] for r in server.requests] == ["1", "2", "3"]
    spend = sorted(table.column("spend_micros").to_pylist())
    expected = sorted(
        r.spend_micros
        for r in server.rows
        if r.account_id == ADV and r.date <= D1 + dt.timedelta(days=3)
    )
    assert spend == expected


def test_conversions_and_their_value_are_one_event(tiktok: tuple[TikTokServer, ApiClient]) -> None:
    # The purchase value goes with the purchase count, not with the count of the
    # ad group's optimisation event (which the server reports differently).
    server, api = tiktok
    table = TikTokConnector().fetch(api, Account(id=ADV), D1, D1)
    source = sorted(
        (r for r in server.rows if r.account_id == ADV and r.date == D1), key=lambda r: r.ad_id
    )
    rows = sorted(table.to_pylist(), key=lambda r: r["ad_id"])
    assert [r["conversions"] for r in rows] == [s.conversions for s in source]
    assert [r["conversion_value_micros"] for r in rows] == [s.value_micros for s in source]
    assert [r["conversions"] for r in rows] != [s.conversions + 3 for s in source]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        # As the official SDK's NumericErrorCodes name them (shared/platforms/tiktok_codes.py).
        (40100, RateLimited),
        (40132, RateLimited),  # REQUEST_FREQUENCY_LIMITED
        (61000, RateLimited),  # TOO_MANY_REQUESTS_BL
        (40105, AccessTokenRejected),
        (40103, InvalidGrant),  # REFRESH_TOKEN_EXPIRE
        (40107, InvalidGrant),  # INVALID_REFRESH_TOKEN
        (40001, PermissionDenied),
        (40003, PermissionDenied),  # FORBIDDEN
        (40130, PermissionDenied),  # SCOPE_NOT_AUTHORIZED
        (50002, ProviderUnavailable),
        (60001, ProviderUnavailable),  # MAINTENANCE: retry later
        (70001, ProviderError),  # INVALID_BIZ_AUTH_TYPE: a client error
        (40133, ProviderError),  # in no table: not a rate limit
    ],
)
def test_envelope_error_codes(
    tiktok: tuple[TikTokServer, ApiClient], code: int, error: type
) -> None:
    server, api = tiktok
    server.error_codes.append(code)
    with pytest.raises(error) as caught:
        TikTokConnector().fetch(api, Account(id=ADV), D1, D1)
    assert type(caught.value) is error


@pytest.mark.parametrize(("fault", "error"), [(500, ProviderUnavailable), (429, RateLimited)])
def test_http_faults(tiktok: tuple[TikTokServer, ApiClient], fault: int, error: type) -> None:
    server, api = tiktok
    server.fail(fault, retry_after="3")
    with pytest.raises(error):
        TikTokConnector().fetch(api, Account(id=ADV), D1, D1)


def test_account_totals_equal_the_loaded_rows(tiktok: tuple[TikTokServer, ApiClient]) -> None:
    _, api = tiktok
    end = D1 + dt.timedelta(days=29)
    table = TikTokConnector().fetch(api, Account(id=ADV), D1, end)
    assert_complete(table, account_totals("tiktok", api, ADV, D1, end))
