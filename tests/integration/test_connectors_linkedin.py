"""LinkedIn connector against a local Rest.li adAnalytics server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from shared.errors import PermissionDenied, ProviderUnavailable, RateLimited
from shared.platforms.base import Account
from shared.platforms.reports import ApiClient
from shared.platforms.reports.linkedin import FIELDS, LINKEDIN_VERSION, LinkedInConnector
from shared.warehouse import DAILY_SCHEMA
from shared.warehouse.schema import conform
from tests.support.completeness import account_totals, assert_complete
from tests.support.platform_servers import LinkedInServer, sample_rows
from tests.support.servers import serve

D1 = dt.date(2024, 12, 30)
AID = "508000001"


@pytest.fixture
def linkedin() -> Iterator[tuple[LinkedInServer, ApiClient]]:
    server = LinkedInServer(
        rows=sample_rows(AID, D1, 4, ads=2, currency="CHF") + sample_rows("508000002", D1, 2),
        accounts=[
            {"id": int(AID), "name": "Acme", "currency": "CHF", "status": "ACTIVE"},
            {"id": 508000002, "name": "Beta", "currency": "USD", "status": "ACTIVE"},
        ],
        groups={f"{AID}10": "Brand", f"{AID}11": "Leads"},
    )
    with serve(server) as url:
        yield server, ApiClient(url + "/rest", "li-token")


def test_accounts(linkedin: tuple[LinkedInServer, ApiClient]) -> None:
    server, api = linkedin
    server.page_size = 1
    accounts = LinkedInConnector().accounts(api, [])
    assert [(a.id, a.currency, a.timezone) for a in accounts] == [
        (AID, "CHF", "UTC"),
        ("508000002", "USD", "UTC"),
    ]
    first, second = server.requests
    assert first["path"] == "/rest/adAccounts"
    # Encoded as LinkedIn's official client encodes it: keys sorted at every level.
    assert first["query"] == "pageSize=100&q=search&search=(status:(values:List(ACTIVE)))"
    assert second["args"]["pageToken"] == "1"
    assert first["headers"]["Linkedin-Version"] == LINKEDIN_VERSION
    assert first["headers"]["X-Restli-Protocol-Version"] == "2.0.0"
    assert [a.id for a in LinkedInConnector().accounts(api, [AID])] == [AID]
    assert server.requests[-1]["path"] == f"/rest/adAccounts/{AID}"


def test_analytics_request_and_rows(linkedin: tuple[LinkedInServer, ApiClient]) -> None:
    server, api = linkedin
    end = D1 + dt.timedelta(days=2)  # crosses the new year
    table = LinkedInConnector().fetch(api, Account(id=AID, currency="CHF"), D1, end)
    analytics = server.requests[0]
    assert analytics["path"] == "/rest/adAnalytics"
    assert analytics["query"] == (
        f"accounts=List(urn%3Ali%3AsponsoredAccount%3A{AID})"
        "&dateRange=(end:(day:1,month:1,year:2025),start:(day:30,month:12,year:2024))"
        f"&fields={FIELDS.replace(',', '%2C')}"
        "&pivots=List(CAMPAIGN_GROUP,CAMPAIGN,CREATIVE)&q=statistics&timeGranularity=DAILY"
    )
    assert analytics["headers"]["Authorization"] == "Bearer li-token"
    assert server.requests[1]["path"] == f"/rest/adAccounts/{AID}/adCampaignGroups"
    assert table.schema == DAILY_SCHEMA and table.num_rows == 6
    conform(table, AID, D1, end)
    rows = sorted(table.to_pylist(), key=lambda r: (r["date"], r["ad_id"]))
    source = sorted(
        (r for r in server.rows if r.account_id == AID and r.date <= end),
        key=lambda r: (r.date, r.ad_id),
    )
    assert [r["spend_micros"] for r in rows] == [s.spend_micros for s in source]
    assert [r["campaign_id"] for r in rows] == [s.campaign_id for s in source]
    assert [r["ad_group_id"] for r in rows] == [s.ad_group_id for s in source]
    assert {r["campaign_name"] for r in rows} == {"Brand", "Leads"}
    assert {r["currency"] for r in rows} == {"CHF"}


def test_no_activity_skips_the_name_lookup(linkedin: tuple[LinkedInServer, ApiClient]) -> None:
    server, api = linkedin
    table = LinkedInConnector().fetch(
        api, Account(id=AID), dt.date(2020, 1, 1), dt.date(2020, 1, 2)
    )
    assert table.num_rows == 0
    assert server.paths() == ["/rest/adAnalytics"]


@pytest.mark.parametrize(
    ("fault", "error"), [(403, PermissionDenied), (429, RateLimited), (500, ProviderUnavailable)]
)
def test_faults(linkedin: tuple[LinkedInServer, ApiClient], fault: int, error: type) -> None:
    server, api = linkedin
    server.fail(fault, retry_after="4")
    with pytest.raises(error):
        LinkedInConnector().fetch(api, Account(id=AID), D1, D1)


def test_account_totals_equal_the_loaded_rows(linkedin: tuple[LinkedInServer, ApiClient]) -> None:
    _, api = linkedin
    end = D1 + dt.timedelta(days=3)
    table = LinkedInConnector().fetch(api, Account(id=AID), D1, end)
    assert_complete(table, account_totals("linkedin", api, AID, D1, end))
