"""Microsoft Advertising connector against a local Reporting v13 REST server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from shared.errors import AccessTokenRejected, PermissionDenied, ProviderUnavailable, RateLimited
from shared.platforms.base import Account
from shared.platforms.reports import ApiClient
from shared.platforms.reports.microsoft import (
    COLUMNS,
    MicrosoftAccount,
    MicrosoftConnector,
    customer_host,
)
from shared.warehouse import DAILY_SCHEMA
from shared.warehouse.schema import conform
from tests.support.completeness import account_totals, assert_complete
from tests.support.platform_servers import MicrosoftServer, sample_rows
from tests.support.servers import serve

D1 = dt.date(2024, 6, 1)
AID, CUSTOMER = "150000001", "250000001"


@pytest.fixture
def microsoft() -> Iterator[tuple[MicrosoftServer, ApiClient]]:
    server = MicrosoftServer(
        rows=sample_rows(AID, D1, 3, ads=2, currency="CAD") + sample_rows("150000002", D1, 3),
        accounts=[
            {
                "Id": int(AID),
                "Name": "North",
                "CurrencyCode": "CAD",
                "TimeZone": "EasternTimeUSCanada",
                "ParentCustomerId": int(CUSTOMER),
            },
        ],
    )
    with serve(server) as url:
        server.download_base = url.replace("127.0.0.1", "localhost")  # another origin
        yield server, ApiClient(url, "ms-token", headers={"DeveloperToken": "dev"})


def _connector() -> MicrosoftConnector:
    return MicrosoftConnector(sleep=lambda s: None)


def test_customer_host() -> None:
    assert customer_host("https://reporting.api.bingads.microsoft.com") == (
        "https://clientcenter.api.bingads.microsoft.com"
    )
    assert customer_host("http://127.0.0.1:9") == "http://127.0.0.1:9"


def test_accounts(microsoft: tuple[MicrosoftServer, ApiClient]) -> None:
    server, api = microsoft
    (account,) = _connector().accounts(api, [])
    # Report days are UTC days whatever the account's own zone (Microsoft documents
    # downloaded data as relative to UTC); the zone is kept for ReportTimeZone.
    assert (account.id, account.currency, account.timezone) == (AID, "CAD", "UTC")
    assert isinstance(account, MicrosoftAccount) and account.customer_id == CUSTOMER
    assert account.time_zone == "EasternTimeUSCanada"
    assert server.paths() == [
        "/CustomerManagement/v13/AccountsInfo/Query",
        "/CustomerManagement/v13/Account/Query",
    ]
    assert server.requests[1]["json"] == {"AccountId": AID}
    assert server.requests[0]["headers"]["Developertoken"] == "dev"


def test_submit_poll_download(microsoft: tuple[MicrosoftServer, ApiClient]) -> None:
    server, api = microsoft
    server.polls_before_done = 2
    account = MicrosoftAccount(
        id=AID, currency="CAD", customer_id=CUSTOMER, time_zone="EasternTimeUSCanada"
    )
    end = D1 + dt.timedelta(days=1)
    table = _connector().fetch(api, account, D1, end)
    assert [(r["method"], r["path"]) for r in server.requests] == [
        ("POST", "/Reporting/v13/GenerateReport/Submit"),
        ("POST", "/Reporting/v13/GenerateReport/Poll"),
        ("POST", "/Reporting/v13/GenerateReport/Poll"),
        ("POST", "/Reporting/v13/GenerateReport/Poll"),
        ("GET", "/download/1"),
    ]
    submit = server.requests[0]
    assert submit["headers"]["Authorization"] == "Bearer ms-token"
    assert submit["headers"]["Customeraccountid"] == AID
    assert submit["headers"]["Customerid"] == CUSTOMER
    assert submit["headers"]["Developertoken"] == "dev"
    assert submit["json"] == {
        "ReportRequest": {
            "Type": "AdPerformanceReportRequest",
            "ReportName": "cosma-ad-performance",
            "Format": "Csv",
            "FormatVersion": "2.0",
            "ExcludeColumnHeaders": False,
            "ExcludeReportHeader": True,
            "ExcludeReportFooter": True,
            "ReturnOnlyCompleteData": False,
            "Aggregation": "Daily",
            "Columns": list(COLUMNS),
            "Scope": {"AccountIds": [AID]},  # strings, as the official REST models type them
            "Time": {
                "CustomDateRangeStart": {"Day": 1, "Month": 6, "Year": 2024},
                "CustomDateRangeEnd": {"Day": 2, "Month": 6, "Year": 2024},
                "ReportTimeZone": "EasternTimeUSCanada",
            },
        }
    }
    assert server.requests[1]["json"] == {"ReportRequestId": "1"}
    download = server.requests[-1]["headers"]
    assert "Authorization" not in download and "Developertoken" not in download
    assert table.schema == DAILY_SCHEMA and table.num_rows == 4
    conform(table, AID, D1, end)
    source = sorted(
        (r for r in server.rows if r.account_id == AID and r.date <= end),
        key=lambda r: (r.date, r.ad_id),
    )
    rows = sorted(table.to_pylist(), key=lambda r: (r["date"], r["ad_id"]))
    assert [r["spend_micros"] for r in rows] == [s.spend_micros for s in source]
    assert [r["conversion_value_micros"] for r in rows] == [s.value_micros for s in source]
    assert {r["currency"] for r in rows} == {"CAD"}


def test_legacy_dates_and_empty_reports(microsoft: tuple[MicrosoftServer, ApiClient]) -> None:
    server, api = microsoft
    server.date_style = "us"
    table = _connector().fetch(api, Account(id=AID), D1, D1)
    assert table.column("date").to_pylist() == [D1, D1]
    empty = _connector().fetch(api, Account(id=AID), dt.date(2020, 1, 1), dt.date(2020, 1, 1))
    assert empty.num_rows == 0
    assert server.paths()[-1] == "/Reporting/v13/GenerateReport/Poll"  # no URL, no download


def test_failed_report(microsoft: tuple[MicrosoftServer, ApiClient]) -> None:
    server, api = microsoft
    server.report_status = "Error"
    with pytest.raises(ProviderUnavailable):
        _connector().fetch(api, Account(id=AID), D1, D1)


def test_report_that_never_finishes(microsoft: tuple[MicrosoftServer, ApiClient]) -> None:
    server, api = microsoft
    server.polls_before_done = 1000
    with pytest.raises(ProviderUnavailable):
        MicrosoftConnector(sleep=lambda s: None, poll_timeout_s=4).fetch(
            api, Account(id=AID), D1, D1
        )


@pytest.mark.parametrize(
    ("fault", "error"), [(403, PermissionDenied), (429, RateLimited), (500, ProviderUnavailable)]
)
def test_faults_while_polling(
    microsoft: tuple[MicrosoftServer, ApiClient], fault: int, error: type
) -> None:
    server, api = microsoft
    server.fail(fault, retry_after="8", path="/Poll")
    with pytest.raises(error):
        _connector().fetch(api, Account(id=AID), D1, D1)
    assert server.requests[0]["path"].endswith("/Submit")


def test_operation_error_codes(microsoft: tuple[MicrosoftServer, ApiClient]) -> None:
    server, api = microsoft
    from tests.support.platform_servers import _json

    server.handle = lambda request: _json({"Code": 117, "Message": "x"}, 400)  # type: ignore[method-assign]
    with pytest.raises(RateLimited):
        _connector().fetch(api, Account(id=AID), D1, D1)


@pytest.mark.parametrize(
    ("account_zone", "report_zone"),
    [
        # The account TimeZone enum and the ReportTimeZone enum spell these apart.
        ("AthensBuckarestIstanbul", "AthensIslandanbulMinsk"),
        ("SolomonIslandNewCaledonia", "MagadanSolomonIslandNewCaledonia"),
        ("IslamabadKarachiTashkent", "IslandamabadKarachiTashkent"),
        # Zones our customers use that the old map named wrongly ("Singapore", "NewDelhi").
        ("KualaLumpurSingapore", "KualaLumpurSingapore"),
        ("ChennaiKolkataMumbaiNewDelhi", "ChennaiKolkataMumbaiNewDelhi"),
    ],
)
def test_every_account_zone_becomes_a_valid_report_zone(
    microsoft: tuple[MicrosoftServer, ApiClient], account_zone: str, report_zone: str
) -> None:
    server, api = microsoft
    server.accounts[0]["TimeZone"] = account_zone
    (account,) = _connector().accounts(api, [AID])
    assert account.timezone == "UTC"  # the days of the report, whatever the zone
    _connector().fetch(api, account, D1, D1)
    submit = next(r for r in server.requests if r["path"].endswith("/Submit"))
    assert submit["json"]["ReportRequest"]["Time"]["ReportTimeZone"] == report_zone


@pytest.mark.parametrize(
    ("kind", "code", "error"),
    [
        ("AdApiFaultDetail", 117, RateLimited),  # CallRateExceeded
        ("AdApiFaultDetail", 109, AccessTokenRejected),  # AuthenticationTokenExpired
        ("AdApiFaultDetail", 105, AccessTokenRejected),  # InvalidCredentials: never a dead grant
        ("ApiFaultDetail", 106, PermissionDenied),  # UserIsNotAuthorized
        ("ApiFaultDetail", 117, RateLimited),
    ],
)
def test_application_fault_details(
    microsoft: tuple[MicrosoftServer, ApiClient], kind: str, code: int, error: type
) -> None:
    server, api = microsoft
    from tests.support.platform_servers import _json

    server.handle = lambda request: _json(server.fault(kind, code), 400)  # type: ignore[method-assign]
    with pytest.raises(error) as caught:
        _connector().fetch(api, Account(id=AID), D1, D1)
    assert type(caught.value) is error


def test_account_totals_equal_the_loaded_rows(
    microsoft: tuple[MicrosoftServer, ApiClient],
) -> None:
    _, api = microsoft
    end = D1 + dt.timedelta(days=2)
    table = _connector().fetch(api, Account(id=AID), D1, end)
    assert_complete(table, account_totals("microsoft", api, AID, D1, end))
