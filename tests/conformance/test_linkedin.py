"""LinkedIn against its official client (linkedin-api-client 0.3.0).

Our Rest.li query encoding equals the official client's encoder, both for the
parameters the connector builds and, byte for byte, for the query strings it put
on the wire; the headers are the ones the official client sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from linkedin_api.clients.restli.utils.api import get_restli_request_headers
from linkedin_api.clients.restli.utils.encoder import param_encode
from linkedin_api.common.constants import RESTLI_METHODS

from shared.platforms.base import Account
from shared.platforms.reports import ApiClient, restli
from shared.platforms.reports.linkedin import (
    ACTIVE_ACCOUNTS,
    GROUPS,
    HEADERS,
    LinkedInConnector,
    analytics_params,
)
from tests.support.completeness import assert_round_trip
from tests.support.platform_servers import LinkedInServer, sample_rows
from tests.support.servers import serve

AID = "508000001"
D1 = dt.date(2024, 12, 30)
D2 = dt.date(2025, 1, 2)


@pytest.fixture
def recorded() -> Iterator[LinkedInServer]:
    server = LinkedInServer(
        rows=sample_rows(AID, D1, 4),
        accounts=[
            {"id": int(AID), "name": "A", "currency": "USD"},
            {"id": 508000002, "name": "B", "currency": "EUR"},
        ],
        groups={f"{AID}10": "Brand", f"{AID}11": "Leads"},
        page_size=1,
    )
    with serve(server) as url:
        api = ApiClient(url + "/rest", "t")
        connector = LinkedInConnector()
        connector.accounts(api, [])
        connector.fetch(api, Account(id=AID), D1, D2)
    yield server


@pytest.mark.parametrize(
    "params",
    [
        analytics_params(AID, D1, D2),
        {**ACTIVE_ACCOUNTS, "pageSize": 100},
        {**ACTIVE_ACCOUNTS, "pageSize": 100, "pageToken": "a b/c,d:(e)"},
        {**GROUPS, "pageSize": 100},
        {"q": "x", "flag": True, "n": 3.5, "empty": [], "nested": {"list": ["a,b", {"k": "v"}]}},
    ],
)
def test_our_encoder_is_the_official_one(params: dict[str, Any]) -> None:
    assert restli.query(params) == param_encode(params)


def test_the_query_strings_on_the_wire_are_the_official_encoding(
    recorded: LinkedInServer,
) -> None:
    queries = {r["path"]: [] for r in recorded.requests}  # type: dict[str, list[str]]
    for request in recorded.requests:
        queries[request["path"]].append(request["query"])
    assert queries["/rest/adAnalytics"] == [param_encode(analytics_params(AID, D1, D2))]
    assert queries["/rest/adAccounts"][0] == param_encode({**ACTIVE_ACCOUNTS, "pageSize": 100})
    assert queries["/rest/adAccounts"][1] == param_encode(
        {**ACTIVE_ACCOUNTS, "pageSize": 100, "pageToken": "1"}
    )
    assert queries[f"/rest/adAccounts/{AID}/adCampaignGroups"][0] == param_encode(
        {**GROUPS, "pageSize": 100}
    )


def test_the_version_headers_are_the_official_clients() -> None:
    official = get_restli_request_headers(
        restli_method=RESTLI_METHODS.FINDER, access_token="t", version_string="202608"
    )
    lower = {k.lower(): v for k, v in official.items()}
    for name, value in HEADERS.items():
        assert lower[name.lower()] == value


def test_every_field_the_connector_reads_round_trips() -> None:
    # Purchases on every row (Meta reports no value where it counts none).
    rows = [replace(r, conversions=2.0 + i) for i, r in enumerate(sample_rows(AID, D1, 4, ads=2))]
    groups = {r.campaign_id: r.campaign_name for r in rows}
    with serve(LinkedInServer(rows=rows, groups=groups)) as url:
        table = LinkedInConnector().fetch(ApiClient(url + "/rest", "t"), Account(id=AID), D1, D2)
    assert_round_trip(table, rows)
