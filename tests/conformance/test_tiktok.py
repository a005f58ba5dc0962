"""TikTok against its official SDK (tiktok-business-api-sdk-official 1.1.3, API v1.3).

Every error code we classify is in the SDK's `NumericErrorCodes`; every path we
call is one of the SDK's v1.3 paths, with parameters its methods accept, the
token in the header the SDK uses; the code exchange sends exactly the SDK's body.

Not in the SDK: the refresh (`oauth2/refresh_token/`) and revoke
(`oauth2/revoke_token/`) endpoints. A test holds that they are absent from it and
recorded as unverified in the registry (`versions.TIKTOK.notes`), so a future SDK
that adds them shows up here. Nor are the report metric names (the SDK takes any
string): those come from TikTok's metrics reference.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import business_api_client
import pytest
from business_api_client.api.account_management_api import AccountManagementApi
from business_api_client.api.reporting_api import ReportingApi
from business_api_client.models.oauth2_access_token_body import Oauth2AccessTokenBody
from business_api_client.tiktok_business.tiktok_code import NumericErrorCodes

from shared.platforms import tiktok_codes, versions
from shared.platforms.base import Account
from shared.platforms.registry import Registry
from shared.platforms.reports import ApiClient
from shared.platforms.reports.tiktok import TikTokConnector
from shared.settings import Settings
from tests.support.completeness import assert_round_trip
from tests.support.platform_servers import TikTokServer, sample_rows
from tests.support.servers import serve

ADV = "7000000000001"
PREFIX = "/open_api/v1.3/"
SDK_CODES = {
    value for name, value in vars(NumericErrorCodes).items() if name.startswith("ERROR_CODE_")
}


def _sdk_paths() -> set[str]:
    folder = Path(business_api_client.__file__).parent / "api"
    text = "".join(p.read_text() for p in folder.glob("*.py"))
    return {m[len(PREFIX) :] for m in re.findall(r"'(/open_api/v1\.3/[a-z0-9_/]+)'", text)}


def _params(method: Any) -> set[str]:
    match = re.search(r"all_params = (\[[^\]]*\])", inspect.getsource(method))
    assert match is not None
    return set(json.loads(match.group(1).replace("'", '"'))) - {"access_token"}


@pytest.fixture
def recorded() -> Iterator[TikTokServer]:
    server = TikTokServer(
        rows=sample_rows(ADV, dt.date(2024, 1, 1), 3),
        advertisers=[{"advertiser_id": ADV, "name": "B", "currency": "GBP", "timezone": "UTC"}],
    )
    with serve(server) as url:
        api = ApiClient(url + PREFIX, "tok")
        connector = TikTokConnector()
        assert [a.id for a in connector.accounts(api, [ADV])] == [ADV]
        connector.fetch(api, Account(id=ADV), dt.date(2024, 1, 1), dt.date(2024, 1, 3))
    yield server


def test_every_classified_code_is_in_the_sdks_table() -> None:
    named = (
        tiktok_codes.TOKEN_REFUSED
        | tiktok_codes.DEAD_GRANT
        | tiktok_codes.RATE_LIMITED
        | tiktok_codes.PERMISSION
        | {tiktok_codes.MAINTENANCE}
    )
    assert named <= SDK_CODES, sorted(named - SDK_CODES)
    for code in SDK_CODES:
        kind = tiktok_codes.classify(code)
        assert (kind == "unavailable") == (50000 <= code < 60000 or code == 60001), code
    assert tiktok_codes.classify(NumericErrorCodes.ERROR_CODE_INVALID_BIZ_AUTH_TYPE) == "refused"


def test_every_path_we_call_is_an_sdk_path(recorded: TikTokServer) -> None:
    sdk = _sdk_paths()
    assert len(sdk) == 237
    called = {r["path"][len(PREFIX) :] for r in recorded.requests}
    assert called == {"advertiser/info/", "report/integrated/get/"} and called <= sdk
    token_url = Registry.from_settings(Settings()).platform("tiktok").token_url
    assert token_url.split(PREFIX)[1] in sdk


def test_refresh_and_revoke_are_not_in_the_sdk_and_marked_unverified() -> None:
    entry = Registry.from_settings(Settings()).platform("tiktok")
    sdk = _sdk_paths()
    for url in (entry.refresh_url, entry.revoke_url):
        assert url is not None and url.split(PREFIX)[1] not in sdk
    notes = " ".join(versions.TIKTOK.notes)
    assert "oauth2/refresh_token/" in notes and "oauth2/revoke_token/" in notes
    assert "unverified" in notes


def test_parameters_and_token_header_are_the_sdks(recorded: TikTokServer) -> None:
    accepted = {
        "advertiser/info/": _params(AccountManagementApi.advertiser_info_with_http_info),
        "report/integrated/get/": _params(ReportingApi.report_integrated_get_with_http_info),
    }
    for request in recorded.requests:
        path = request["path"][len(PREFIX) :]
        assert set(request["args"]) <= accepted[path], (path, request["args"])
        assert request["headers"]["Access-Token"] == "tok"
        assert "Authorization" not in request["headers"]


def test_the_code_exchange_sends_the_sdks_body() -> None:
    from werkzeug.wrappers import Response

    from shared.platforms import oauth
    from tests.support.servers import Recorder

    answer = {"code": 0, "message": "OK", "data": {"access_token": "a", "advertiser_ids": []}}
    app = Recorder(lambda r: Response(json.dumps(answer), mimetype="application/json"))
    with serve(app) as base:
        entry = Registry.from_settings(Settings(platform_base_urls={"tiktok": base})).platform(
            "tiktok"
        )
        oauth.exchange_code(
            entry,
            "code-1",
            redirect_uri="r",
            code_verifier=None,
            client_id="app",
            client_secret="s",
        )
    sent = json.loads(app.requests[0]["body"])
    assert set(sent) == set(Oauth2AccessTokenBody.attribute_map.values())


def test_every_field_the_connector_reads_round_trips() -> None:
    # Purchases on every row (Meta reports no value where it counts none).
    rows = [
        replace(r, conversions=2.0 + i)
        for i, r in enumerate(sample_rows(ADV, dt.date(2024, 1, 1), 3, ads=2))
    ]
    with serve(TikTokServer(rows=rows)) as url:
        table = TikTokConnector().fetch(
            ApiClient(url + PREFIX, "t"), Account(id=ADV), dt.date(2024, 1, 1), dt.date(2024, 1, 3)
        )
    assert_round_trip(table, rows)
