"""Microsoft Advertising against its official SDKs (msads 13.0.30.1 REST models,
bingads 13.0.30.1 WSDL and OAuth client).

Every request the connector sends validates against the REST models with no key
they do not define (types included: account ids are strings); every answer the
fake gives, faults included, validates the same way; every account `TimeZone` the
API lists becomes a valid `ReportTimeZone`; the refresh sends the scopes the
official OAuth client sends.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import bingads
import pytest
from bingads.authorization import MSADS_MANAGE, PRODUCTION, _UriOAuthService
from openapi_client.models.customer.get_account_request import GetAccountRequest
from openapi_client.models.customer.get_account_response import GetAccountResponse
from openapi_client.models.customer.get_accounts_info_request import GetAccountsInfoRequest
from openapi_client.models.customer.get_accounts_info_response import GetAccountsInfoResponse
from openapi_client.models.customer.time_zone_type import TimeZoneType
from openapi_client.models.reporting.ad_performance_report_column import (
    AdPerformanceReportColumn,
)
from openapi_client.models.reporting.application_fault import ApplicationFault
from openapi_client.models.reporting.poll_generate_report_request import (
    PollGenerateReportRequest,
)
from openapi_client.models.reporting.poll_generate_report_response import (
    PollGenerateReportResponse,
)
from openapi_client.models.reporting.report_time_zone import ReportTimeZone
from openapi_client.models.reporting.submit_generate_report_request import (
    SubmitGenerateReportRequest,
)
from openapi_client.models.reporting.submit_generate_report_response import (
    SubmitGenerateReportResponse,
)
from pydantic import BaseModel

from shared.platforms.base import Account
from shared.platforms.registry import Registry
from shared.platforms.reports import ApiClient
from shared.platforms.reports.microsoft import COLUMNS, MicrosoftConnector, report_time_zone
from shared.settings import Settings
from tests.support.completeness import account_totals, assert_round_trip
from tests.support.platform_servers import MicrosoftServer, sample_rows
from tests.support.servers import serve

AID, D1 = "150000001", dt.date(2024, 6, 1)
MODELS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "/CustomerManagement/v13/AccountsInfo/Query": (GetAccountsInfoRequest, GetAccountsInfoResponse),
    "/CustomerManagement/v13/Account/Query": (GetAccountRequest, GetAccountResponse),
    "/Reporting/v13/GenerateReport/Submit": (
        SubmitGenerateReportRequest,
        SubmitGenerateReportResponse,
    ),
    "/Reporting/v13/GenerateReport/Poll": (PollGenerateReportRequest, PollGenerateReportResponse),
}


def strict(model: type[BaseModel], data: Any) -> BaseModel:
    """`model.from_dict(data)` (the SDK's own parsing: types, enums, the `Type`
    discriminator), and no key anywhere in `data` that the models do not define."""
    instance = model.from_dict(data)  # type: ignore[attr-defined]
    assert instance is not None
    _known(instance, data)
    return instance


def _known(instance: BaseModel, data: dict[str, Any]) -> None:
    fields = {(f.alias or name): name for name, f in type(instance).model_fields.items()}
    unknown = set(data) - set(fields)
    assert not unknown, f"{type(instance).__name__} has no {sorted(unknown)}"
    for key, value in data.items():
        child = getattr(instance, fields[key])
        if isinstance(child, BaseModel) and isinstance(value, dict):
            _known(child, value)
        elif isinstance(child, list) and isinstance(value, list):
            for item, raw in zip(child, value, strict=True):
                if isinstance(item, BaseModel) and isinstance(raw, dict):
                    _known(item, raw)


def _enum(cls: type) -> set[str]:
    return {member.value for member in cls}  # type: ignore[attr-defined]


@pytest.fixture
def recorded() -> Iterator[MicrosoftServer]:
    server = MicrosoftServer(
        rows=sample_rows(AID, D1, 3, ads=2),
        accounts=[
            {
                "Id": AID,
                "Name": "North",
                "CurrencyCode": "CAD",
                "TimeZone": "AthensBuckarestIstanbul",
                "ParentCustomerId": "250000001",
            }
        ],
        polls_before_done=1,
    )
    with serve(server) as url:
        server.download_base = url
        api = ApiClient(url, "t", headers={"DeveloperToken": "d"})
        connector = MicrosoftConnector(sleep=lambda s: None)
        (account,) = connector.accounts(api, [])
        connector.fetch(api, account, D1, D1 + dt.timedelta(days=2))
        account_totals("microsoft", api, AID, D1, D1 + dt.timedelta(days=2))
    yield server


def test_every_request_validates_against_the_rest_models(recorded: MicrosoftServer) -> None:
    posted = [r for r in recorded.requests if r["method"] == "POST"]
    assert {r["path"] for r in posted} == set(MODELS)
    for request in posted:
        strict(MODELS[request["path"]][0], request["json"])
    submit = next(r for r in posted if r["path"].endswith("/Submit"))
    report = strict(SubmitGenerateReportRequest, submit["json"]).report_request  # type: ignore[attr-defined]
    assert type(report).__name__ == "AdPerformanceReportRequest"
    assert report.scope.account_ids == [AID]  # strings, as the models type them


def test_every_column_is_an_ad_performance_report_column() -> None:
    assert set(COLUMNS) <= _enum(AdPerformanceReportColumn)


def test_every_answer_of_the_fake_validates(recorded: MicrosoftServer) -> None:
    from werkzeug.test import Client

    for request in list(recorded.requests):  # replaying adds to the record
        if request["method"] != "POST":
            continue
        if request["path"].endswith("/Poll"):
            continue  # replaying a poll would advance the job; checked below
        answer = Client(recorded).post(request["path"], json=request["json"]).get_json()
        strict(MODELS[request["path"]][1], answer)
    for job in recorded.jobs:
        answer = Client(recorded).post(
            "/Reporting/v13/GenerateReport/Poll", json={"ReportRequestId": job}
        )
        strict(PollGenerateReportResponse, answer.get_json())
    for kind, code in (("AdApiFaultDetail", 105), ("ApiFaultDetail", 106)):
        fault = strict(ApplicationFault, MicrosoftServer.fault(kind, code))
        assert type(fault).__name__ == kind


def test_every_account_time_zone_has_a_valid_report_time_zone() -> None:
    report_zones = _enum(ReportTimeZone)
    account_zones = _enum(TimeZoneType)
    assert len(account_zones) == 75
    for zone in account_zones:
        assert report_time_zone(zone) in report_zones, zone


def test_the_rest_models_and_the_wsdl_list_the_same_report_time_zones() -> None:
    wsdl = (
        Path(bingads.__file__).parent / "v13/proxies/production/reporting_service.xml"
    ).read_text()
    start = wsdl.index('<xs:simpleType name="ReportTimeZone">')
    block = wsdl[start : wsdl.index("</xs:simpleType>", start)]
    assert set(re.findall(r'<xs:enumeration value="(\w+)"', block)) == _enum(ReportTimeZone)


def test_the_refresh_sends_the_scopes_of_the_official_oauth_client() -> None:
    entry = Registry.from_settings(Settings()).platform("microsoft")
    assert " ".join(entry.scopes) == _UriOAuthService.SCOPE[(PRODUCTION, MSADS_MANAGE)]
    assert typing.get_type_hints(type(entry.token_style))["scope_on_refresh"] is bool
    assert entry.token_style.scope_on_refresh  # type: ignore[attr-defined]


def test_every_field_the_connector_reads_round_trips() -> None:
    # Purchases on every row (Meta reports no value where it counts none).
    rows = [replace(r, conversions=2.0 + i) for i, r in enumerate(sample_rows(AID, D1, 3, ads=2))]
    server = MicrosoftServer(rows=rows)
    with serve(server) as url:
        server.download_base = url
        table = MicrosoftConnector(sleep=lambda s: None).fetch(
            ApiClient(url, "t"), Account(id=AID), D1, D1 + dt.timedelta(days=2)
        )
    assert_round_trip(table, rows)
