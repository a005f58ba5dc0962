"""Meta against its official SDK (facebook-business 26.0.3, Graph v26.0).

Every insights field and parameter the connector sends is one the SDK's
`AdAccount.get_insights` accepts (its field list and its parameter type checker,
enums included), on the Graph version the SDK speaks; every field the fake
answers is an `AdsInsights` / `AdAccount` / `AdReportRun` field.

Not in the SDK, so not checked here: the async job status strings ("Job
Completed", "Job Failed", "Job Skipped") and the error codes and subcodes (the SDK
has no table of them); those come from Meta's reference pages.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adreportrun import AdReportRun
from facebook_business.adobjects.adsactionstats import AdsActionStats
from facebook_business.adobjects.adsinsights import AdsInsights
from facebook_business.api import FacebookAdsApi
from facebook_business.apiconfig import ads_api_config

from shared.platforms import versions
from shared.platforms.base import Account
from shared.platforms.reports import ApiClient
from shared.platforms.reports.meta import ACCOUNT_FIELDS, FIELDS, MetaConnector
from tests.support.completeness import assert_round_trip
from tests.support.platform_servers import MetaServer, sample_rows
from tests.support.servers import serve

AID = "123456"
D1 = dt.date(2024, 2, 1)


def _values(fields: type) -> set[str]:
    return {v for k, v in vars(fields).items() if not k.startswith("_") and isinstance(v, str)}


@pytest.fixture(scope="module")
def insights_checker() -> Any:
    FacebookAdsApi.init(access_token="conformance", crash_log=False)  # no call is made
    request = AdAccount(f"act_{AID}").get_insights(fields=[], params={}, pending=True)
    return request._param_checker


@pytest.fixture
def recorded() -> Iterator[MetaServer]:
    server = MetaServer(
        rows=sample_rows(AID, D1, 40, ads=2),
        accounts=[
            {
                "id": f"act_{AID}",
                "account_id": AID,
                "name": "Shop",
                "currency": "EUR",
                "timezone_name": "Europe/Berlin",
            }
        ],
    )
    with serve(server) as url:
        api = ApiClient(f"{url}/{versions.META.version}", "t")
        connector = MetaConnector(sleep=lambda s: None, async_after_days=31)
        connector.accounts(api, [])
        connector.accounts(api, [AID])
        connector.fetch(api, Account(id=AID), D1, D1 + dt.timedelta(days=2))  # synchronous
        connector.fetch(api, Account(id=AID), D1, D1 + dt.timedelta(days=39))  # a report run
    yield server


def test_the_graph_version_is_the_sdks() -> None:
    assert versions.META.version == ads_api_config["API_VERSION"] == "v26.0"


def test_every_field_asked_for_exists_in_the_sdk() -> None:
    assert set(FIELDS.split(",")) <= _values(AdsInsights.Field)
    assert set(ACCOUNT_FIELDS.split(",")) <= _values(AdAccount.Field)
    assert {"async_status", "async_percent_completion"} <= _values(AdReportRun.Field)
    # The SDK itself refuses a field insights do not have (what this test relies on).
    FacebookAdsApi.init(access_token="conformance", crash_log=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AdAccount("act_1").get_insights(fields=FIELDS.split(","), params={}, pending=True)
        with pytest.raises(UserWarning):
            AdAccount("act_1").get_insights(fields=["spend_total"], params={}, pending=True)


def test_every_insights_parameter_sent_is_one_the_sdk_accepts(
    recorded: MetaServer, insights_checker: Any
) -> None:
    sent = [r for r in recorded.requests if r["path"].endswith("/insights")]
    assert {r["method"] for r in sent} == {"GET", "POST"}
    for request in sent:
        args = dict(request["args"])
        args.pop("after", None)  # Graph's cursor paging, on every edge
        assert set(args) <= set(insights_checker._type_check_info), args
        typed = {
            **args,
            **({"time_range": json.loads(args["time_range"])} if "time_range" in args else {}),
            **({"limit": int(args["limit"])} if "limit" in args else {}),
            **({"fields": args["fields"].split(",")} if "fields" in args else {}),
        }
        for key, value in typed.items():
            assert insights_checker.is_valid_pair(key, value), (key, value)
        if "level" in args:
            assert args["level"] in set(insights_checker._enum_data["level_enum"])


def test_every_field_the_fake_answers_is_an_sdk_field(recorded: MetaServer) -> None:
    from werkzeug.test import Client

    insights, actions = _values(AdsInsights.Field), _values(AdsActionStats.Field)
    account_fields = _values(AdAccount.Field)
    for request in list(recorded.requests):  # replaying adds to the record
        if request["method"] != "GET":
            continue
        answer = Client(recorded).get(request["path"], query_string=request["query"]).get_json()
        items = answer.get("data", [answer])
        for item in items:
            if "async_status" in item:
                assert set(item) <= _values(AdReportRun.Field)
            elif "date_start" in item:
                assert set(item) <= insights
                for action in item.get("actions", []) + item.get("action_values", []):
                    assert set(action) <= actions
            else:
                assert set(item) <= account_fields


def test_every_field_the_connector_reads_round_trips() -> None:
    # Purchases on every row (Meta reports no value where it counts none).
    rows = [replace(r, conversions=2.0 + i) for i, r in enumerate(sample_rows(AID, D1, 3, ads=2))]
    with serve(MetaServer(rows=rows)) as url:
        table = MetaConnector().fetch(
            ApiClient(f"{url}/{versions.META.version}", "t"),
            Account(id=AID),
            D1,
            D1 + dt.timedelta(days=2),
        )
    assert_round_trip(table, rows)
