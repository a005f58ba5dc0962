"""The engine against each real platform's protocol: token refresh at the platform's
token endpoint (form, Meta's fb_exchange_token, TikTok's JSON), then the real
connector against the local report server of that platform
(tests/support/platform_servers.py, pagination and async jobs included).
Every endpoint of a platform is pointed at one loopback server through
`platform_base_urls`, exactly as the registry rebases them.

Each platform: the sync loads the rows the server holds for the chosen account,
and running the same sync again gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets as pysecrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.wrappers import Request, Response

from cosma import localdb
from shared.platforms import registry, versions
from shared.runtime import Runtime
from shared.settings import Settings
from shared.sync import leases, runner
from tests.support.platform_servers import (
    GoogleAdsServer,
    LinkedInServer,
    MetaServer,
    MicrosoftServer,
    PlatformServer,
    TikTokServer,
    _json,
    sample_rows,
)
from tests.support.seed import Seeder
from tests.support.servers import serve
from tests.support.sync_env import Bench, sync_database

TODAY = dt.datetime.now(dt.UTC).date()
START = TODAY - dt.timedelta(days=9)
DAYS = 7


def _google(account: str) -> PlatformServer:
    client = {
        "resourceName": f"customers/{account}/customerClients/{account}",
        "id": account,
        "manager": False,
        "level": "0",
        "descriptiveName": "Direct",
        "currencyCode": "EUR",
        "timeZone": "Europe/Berlin",
        "status": "ENABLED",
    }
    return GoogleAdsServer(
        rows=sample_rows(account, START, DAYS, ads=3, currency="EUR"),
        clients={account: [client]},
        accessible=[account],
        page_size=4,
    )


def _meta(account: str) -> PlatformServer:
    info = {
        "id": f"act_{account}",
        "account_id": account,
        "name": "Shop",
        "currency": "EUR",
        "timezone_name": "Europe/Berlin",
    }
    return MetaServer(
        rows=sample_rows(account, START, DAYS, ads=2, currency="EUR"),
        accounts=[info],
        page_size=5,
        polls_before_done=1,
    )


def _linkedin(account: str) -> PlatformServer:
    return LinkedInServer(
        rows=sample_rows(account, START, DAYS, ads=2, currency="CHF"),
        accounts=[{"id": int(account), "name": "Acme", "currency": "CHF", "status": "ACTIVE"}],
        page_size=5,
    )


def _tiktok(account: str) -> PlatformServer:
    return TikTokServer(
        rows=sample_rows(account, START, DAYS, ads=2, currency="GBP"),
        advertisers=[
            {"advertiser_id": account, "name": "Brand", "currency": "GBP", "timezone": "UTC"}
        ],
        page_size=5,
    )


def _microsoft(account: str) -> PlatformServer:
    info = {
        "Id": int(account),
        "Name": "North",
        "CurrencyCode": "CAD",
        "TimeZone": "EasternTimeUSCanada",
        "ParentCustomerId": 4242,
    }
    return MicrosoftServer(
        rows=sample_rows(account, START, DAYS, ads=2, currency="CAD"),
        accounts=[info],
        polls_before_done=1,
    )


PLATFORMS: dict[str, tuple[str, Callable[[str], PlatformServer]]] = {
    "google_ads": ("1234567890", _google),
    "meta": ("123456", _meta),
    "linkedin": ("508000001", _linkedin),
    "tiktok": ("7000000000001", _tiktok),
    "microsoft": ("150000001", _microsoft),
}


class TokenFront:
    """The platform's token endpoint in front of its report server."""

    def __init__(self, platform: registry.Platform, inner: PlatformServer) -> None:
        self.platform = platform
        self.inner = inner
        self.path = urlsplit(platform.refresh_url or platform.token_url).path
        self.refreshes = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path != self.path:
            return self.inner(environ, start_response)
        self.refreshes += 1
        access = f"at-{pysecrets.token_urlsafe(8)}"
        if self.platform.name == "tiktok":
            assert request.get_json()["grant_type"] == "refresh_token"
            body: dict[str, Any] = {
                "code": 0,
                "message": "OK",
                "data": {"access_token": access, "access_token_expire_in": 86400},
            }
        elif self.platform.name == "meta":
            assert request.form["grant_type"] == "fb_exchange_token"
            body = {"access_token": access, "token_type": "bearer", "expires_in": 5_000_000}
        else:
            assert request.form["grant_type"] == "refresh_token"
            body = {"access_token": access, "expires_in": 3600}
        response = Response(json.dumps(body), mimetype="application/json")
        return response(environ, start_response)


@pytest.fixture(scope="module")
def db(pg: localdb.LocalDatabase) -> localdb.LocalDatabase:
    return sync_database(pg)


@pytest.fixture(params=sorted(PLATFORMS))
def platform_bench(
    request: pytest.FixtureRequest,
    db: localdb.LocalDatabase,
    settings: Settings,
    tmp_path: Any,
) -> Iterator[tuple[str, str, PlatformServer, TokenFront, Bench]]:
    name = request.param
    account, make = PLATFORMS[name]
    server = make(account)
    holder: dict[str, TokenFront] = {}
    with serve(lambda env, start: holder["app"](env, start)) as url:
        secrets_dir = tmp_path / "secrets"
        secrets_dir.mkdir()
        (secrets_dir / registry.client_secret_name(name)).write_text("client-secret")
        (secrets_dir / "google-ads-developer-token").write_text("dev-token")
        (secrets_dir / "microsoft-developer-token").write_text("dev-token")
        local = settings.with_changes(
            database_url=db.app_url,
            worker_database_url=db.worker_url,
            warehouse_dir=tmp_path / "warehouse",
            secrets_dir=secrets_dir,
            platform_base_urls={name: url},
            platform_client_ids={name: "our-client-id"},
            sync_first_days=14,
        )
        if isinstance(server, MicrosoftServer):
            server.download_base = url
        runtime = Runtime(local)
        holder["app"] = TokenFront(runtime.platforms.platform(name), server)
        bench = Bench(db, runtime, Seeder(db.admin_url))
        bench.retire_all()
        try:
            yield name, account, server, holder["app"], bench
        finally:
            runtime.close()


def _rows(bench: Bench, dataset_id: str) -> list[tuple[Any, ...]]:
    warehouse = bench.runtime.warehouse
    return warehouse.query(
        "select date, account_id, campaign_id, ad_id, impressions, clicks, spend_micros,"
        f" conversions, conversion_value_micros, currency from {warehouse.table_ref(dataset_id)}"
        " order by all",
        {},
        location="US",
        labels={},
        max_bytes_billed=10**9,
        timeout_s=10,
        datasets=[dataset_id],
    ).rows


def test_each_platform_syncs_and_a_repeat_gives_the_same_rows(
    platform_bench: tuple[str, str, PlatformServer, TokenFront, Bench],
) -> None:
    name, account, server, front, bench = platform_bench
    org = bench.org()
    connection_id = bench.connection(
        org, org.clients[0], "stored-refresh-token", platform=name, account_ids=(account,)
    )
    dataset_id = bench.one(
        "select dataset_id from datasets where client_id = %s", (org.clients[0],)
    )[0]
    report = runner.run(bench.runtime)
    [result] = [r.public() for r in report.results]
    assert (result["outcome"], result["error_class"]) == ("ok", None), result
    first = _rows(bench, dataset_id)
    assert len(first) == len(server.rows) and result["rows"] == len(server.rows)
    assert {r[1] for r in first} == {account}
    assert front.refreshes == 1
    # Report requests carry the fresh access token (a pre-signed download none),
    # never the refresh token.
    sent = [
        r["headers"].get("Authorization") or r["headers"].get("Access-Token") or ""
        for r in server.requests
    ]
    assert any(sent) and not any("stored-refresh-token" in h for h in sent)
    assert all(
        h for h, r in zip(sent, server.requests, strict=True) if "/download/" not in r["path"]
    )

    assert leases.make_due(bench.runtime.worker_db, [connection_id]) == 1
    again = runner.run(bench.runtime)
    assert [r.outcome for r in again.results] == ["ok"]
    assert _rows(bench, dataset_id) == first
    assert [r["outcome"] for r in bench.runs(connection_id)] == ["ok", "ok"]


# Only a platform whose version has a known sunset can come within 90 days of it.
WITH_SUNSET = sorted(
    v.platform
    for v in vars(versions).values()
    if isinstance(v, versions.ApiVersion) and v.sunset is not None
)


def test_some_platforms_have_a_known_sunset() -> None:
    assert WITH_SUNSET, "no platform version has a sunset: the health warning goes untested"


@pytest.mark.parametrize("platform_bench", WITH_SUNSET, indirect=True)
def test_a_sunset_within_90_days_shows_in_the_connections_health(
    platform_bench: tuple[str, str, PlatformServer, TokenFront, Bench],
) -> None:
    name, account, _, _, bench = platform_bench
    version = bench.runtime.platforms.platform(name).api_version
    assert version is not None and version.sunset is not None
    org = bench.org()
    connection_id = bench.connection(
        org, org.clients[0], "stored-refresh-token", platform=name, account_ids=(account,)
    )
    # The same runtime a month before the sunset: the run is fine, the health says it.
    near = dt.datetime.combine(version.sunset - dt.timedelta(days=30), dt.time(12), dt.UTC)
    runtime = Runtime(bench.settings, clock=near.timestamp)
    try:
        [result] = runner.run(runtime).results
    finally:
        runtime.close()
    assert (result.outcome, result.error_class) == ("ok", None)
    expected = f"{name} API {version.version} is sunset on {version.sunset} (30 days left)"
    assert bench.connection_row(connection_id)["health"] == expected


@pytest.mark.parametrize("platform_bench", ["microsoft"], indirect=True)
def test_microsoft_invalid_credentials_are_never_a_dead_grant(
    platform_bench: tuple[str, str, PlatformServer, TokenFront, Bench],
) -> None:
    # 105 InvalidCredentials is the access token OR the developer token: one fresh
    # token is tried, then the run fails and backs off; the grant stays connected.
    name, account, server, front, bench = platform_bench
    assert isinstance(server, MicrosoftServer)
    org = bench.org()
    connection_id = bench.connection(
        org, org.clients[0], "stored-refresh-token", platform=name, account_ids=(account,)
    )
    server.handle = lambda request: _json(  # type: ignore[method-assign]
        MicrosoftServer.fault("AdApiFaultDetail", 105), 400
    )
    [result] = runner.run(bench.runtime).results
    assert (result.outcome, result.error_class) == ("failed", "access_token_rejected")
    assert front.refreshes == 2
    assert bench.connection_row(connection_id)["status"] == "active"
