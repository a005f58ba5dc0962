"""Meta connector against a local Graph insights server."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest

from shared.errors import (
    AccessTokenRejected,
    PermissionDenied,
    ProviderUnavailable,
    RateLimited,
    ReportTooLarge,
)
from shared.platforms.base import Account
from shared.platforms.reports import ApiClient
from shared.platforms.reports.meta import FIELDS, MetaConnector
from shared.warehouse import DAILY_SCHEMA
from shared.warehouse.schema import conform
from tests.support.completeness import account_totals, assert_complete
from tests.support.platform_servers import MetaServer, Row, sample_rows
from tests.support.servers import serve

D1 = dt.date(2024, 2, 27)
AID = "123456"
VERSION = "v26.0"  # the Graph version the connector speaks (versions.META)


@pytest.fixture
def meta() -> Iterator[tuple[MetaServer, ApiClient]]:
    server = MetaServer(
        rows=sample_rows(AID, D1, 5, ads=2, currency="EUR") + sample_rows("999", D1, 5),
        accounts=[
            {
                "id": f"act_{AID}",
                "account_id": AID,
                "name": "Shop",
                "currency": "EUR",
                "timezone_name": "Europe/Berlin",
            },
            {
                "id": "act_999",
                "account_id": "999",
                "name": "Other",
                "currency": "USD",
                "timezone_name": "America/Los_Angeles",
            },
        ],
    )
    with serve(server) as url:
        yield server, ApiClient(f"{url}/{VERSION}", "tok")


def _connector() -> MetaConnector:
    return MetaConnector(sleep=lambda s: None, async_after_days=31)


def test_accounts_of_the_grant_and_configured(meta: tuple[MetaServer, ApiClient]) -> None:
    server, api = meta
    accounts = _connector().accounts(api, [])
    assert [(a.id, a.currency, a.timezone) for a in accounts] == [
        (AID, "EUR", "Europe/Berlin"),
        ("999", "USD", "America/Los_Angeles"),
    ]
    assert server.requests[0]["path"] == f"/{VERSION}/me/adaccounts"
    assert server.requests[0]["args"]["fields"] == "account_id,name,currency,timezone_name"
    assert [a.id for a in _connector().accounts(api, [f"act_{AID}"])] == [AID]
    assert server.requests[-1]["path"] == f"/{VERSION}/act_{AID}"


def test_insights_paginated_by_cursor(meta: tuple[MetaServer, ApiClient]) -> None:
    server, api = meta
    server.page_size = 3
    account = Account(id=AID, currency="EUR", timezone="Europe/Berlin")
    end = D1 + dt.timedelta(days=3)  # spans Feb 29 (leap day)
    table = _connector().fetch(api, account, D1, end)
    assert table.schema == DAILY_SCHEMA
    assert table.num_rows == 8
    conform(table, AID, D1, end)
    paths = server.paths()
    assert paths == [f"/{VERSION}/act_{AID}/insights"] * 3
    first, second = server.requests[0]["args"], server.requests[1]["args"]
    assert first == {
        "level": "ad",
        "time_increment": "1",
        "time_range": json.dumps(
            {"since": "2024-02-27", "until": "2024-03-01"}, separators=(",", ":")
        ),
        "fields": FIELDS,
        "limit": "500",
    }
    assert second["after"] == "3" and "after" not in first
    assert "access_token" not in server.requests[0]["query"]
    assert server.requests[0]["headers"]["Authorization"] == "Bearer tok"
    assert dt.date(2024, 2, 29) in table.column("date").to_pylist()
    assert set(table.column("currency").to_pylist()) == {"EUR"}


def test_spend_and_conversions_exact_and_not_double_counted() -> None:
    row = Row(
        AID, D1, "c", "g", "a", spend_micros=1_000_000_001, conversions=2.0, value_micros=19_990_000
    )
    server = MetaServer(rows=[row])
    with serve(server) as url:
        table = _connector().fetch(ApiClient(url + "/" + VERSION, "t"), Account(id=AID), D1, D1)
    got = table.to_pylist()[0]
    assert got["spend_micros"] == 1_000_000_001  # "1000.000001"
    # omni_purchase, purchase and the pixel purchase all carry 2: counted once.
    assert got["conversions"] == 2.0
    assert got["conversion_value_micros"] == 19_990_000


def test_long_ranges_run_as_async_report_jobs(meta: tuple[MetaServer, ApiClient]) -> None:
    server, api = meta
    server.polls_before_done = 2
    server.page_size = 4
    slept: list[float] = []
    connector = MetaConnector(sleep=slept.append, async_after_days=3, poll_interval_s=0.5)
    end = D1 + dt.timedelta(days=4)
    table = connector.fetch(api, Account(id=AID, currency="EUR"), D1, end)
    assert table.num_rows == 10
    methods_paths = [(r["method"], r["path"]) for r in server.requests]
    assert methods_paths == [
        ("POST", f"/{VERSION}/act_{AID}/insights"),
        ("GET", f"/{VERSION}/1000"),
        ("GET", f"/{VERSION}/1000"),
        ("GET", f"/{VERSION}/1000"),
        ("GET", f"/{VERSION}/1000/insights"),
        ("GET", f"/{VERSION}/1000/insights"),
        ("GET", f"/{VERSION}/1000/insights"),
    ]
    assert server.requests[0]["args"]["level"] == "ad"
    assert slept == [0.5, 0.5]


def test_async_job_that_never_finishes(meta: tuple[MetaServer, ApiClient]) -> None:
    server, api = meta
    server.polls_before_done = 100
    connector = MetaConnector(sleep=lambda s: None, async_after_days=1, poll_timeout_s=3)
    with pytest.raises(ProviderUnavailable):
        connector.fetch(api, Account(id=AID), D1, D1 + dt.timedelta(days=5))


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (17, RateLimited),
        (80004, RateLimited),
        (190, AccessTokenRejected),
        (200, PermissionDenied),
        (2, ProviderUnavailable),
    ],
)
def test_graph_error_codes(meta: tuple[MetaServer, ApiClient], code: int, error: type) -> None:
    server, api = meta
    original = server.handle
    server.handle = lambda request: _graph_error(code)  # type: ignore[method-assign]
    with pytest.raises(error):
        _connector().fetch(api, Account(id=AID), D1, D1)
    server.handle = original  # type: ignore[method-assign]


def _graph_error(code: int):  # type: ignore[no-untyped-def]
    from tests.support.platform_servers import _json

    return _json({"error": {"message": "x", "type": "OAuthException", "code": code}}, 400)


@pytest.mark.parametrize(
    ("fault", "error"), [(429, RateLimited), (500, ProviderUnavailable), (403, PermissionDenied)]
)
def test_http_faults_mid_pagination(
    meta: tuple[MetaServer, ApiClient], fault: int, error: type
) -> None:
    server, api = meta
    server.page_size = 2
    server.fail(fault, retry_after="11")
    with pytest.raises(error) as caught:
        _connector().fetch(api, Account(id=AID), D1, D1 + dt.timedelta(days=2))
    if fault == 429:
        assert caught.value.retry_after == 11.0


def test_timeout(meta: tuple[MetaServer, ApiClient]) -> None:
    server, _ = meta
    server.fail("timeout", delay=1.0)
    api = ApiClient(server_url(meta), "tok", timeout=0.2)
    with pytest.raises(ProviderUnavailable):
        _connector().fetch(api, Account(id=AID), D1, D1)


def server_url(meta: tuple[MetaServer, ApiClient]) -> str:
    return meta[1].base_url


def test_a_query_too_large_is_asked_again_as_a_run_then_in_halves() -> None:
    # Meta's error 100/1504018 ("reduce the amount of data"): the connector follows
    # Meta's guidance instead of failing the sync: a report run, then half the range.
    rows = sample_rows(AID, D1, 10, ads=2)
    server = MetaServer(rows=rows, accounts=[], sync_limit_days=2, async_limit_days=3)
    end = D1 + dt.timedelta(days=9)
    with serve(server) as url:
        table = _connector().fetch(ApiClient(f"{url}/{VERSION}", "t"), Account(id=AID), D1, end)
    conform(table, AID, D1, end)
    got = sorted((r["date"], r["ad_id"], r["spend_micros"]) for r in table.to_pylist())
    assert got == sorted((r.date, r.ad_id, r.spend_micros) for r in rows)  # none twice
    spans = [
        (r["method"], *json.loads(r["args"]["time_range"]).values())
        for r in server.requests
        if r["path"].endswith(f"act_{AID}/insights")
    ]
    # Each range: synchronously, then as a run, then in halves (3-day runs and
    # 2-day requests are within the server's limits).
    assert spans == [
        ("GET", "2024-02-27", "2024-03-07"),
        ("POST", "2024-02-27", "2024-03-07"),
        ("GET", "2024-02-27", "2024-03-02"),
        ("POST", "2024-02-27", "2024-03-02"),
        ("GET", "2024-02-27", "2024-02-29"),
        ("POST", "2024-02-27", "2024-02-29"),
        ("GET", "2024-03-01", "2024-03-02"),
        ("GET", "2024-03-03", "2024-03-07"),
        ("POST", "2024-03-03", "2024-03-07"),
        ("GET", "2024-03-03", "2024-03-05"),
        ("POST", "2024-03-03", "2024-03-05"),
        ("GET", "2024-03-06", "2024-03-07"),
    ]


def test_a_single_day_too_large_fails_clearly(meta: tuple[MetaServer, ApiClient]) -> None:
    server, api = meta
    from tests.support.platform_servers import _TOO_LARGE, _json

    # Even one day is refused, synchronously and as a run: nothing left to split.
    server.handle = lambda request: _json(_TOO_LARGE, 400)  # type: ignore[method-assign]
    with pytest.raises(ReportTooLarge):
        _connector().fetch(api, Account(id=AID), D1, D1)


def test_account_totals_equal_the_loaded_rows(meta: tuple[MetaServer, ApiClient]) -> None:
    _, api = meta
    end = D1 + dt.timedelta(days=4)
    table = _connector().fetch(api, Account(id=AID), D1, end)
    assert_complete(table, account_totals("meta", api, AID, D1, end))
