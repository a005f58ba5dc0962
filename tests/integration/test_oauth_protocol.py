"""The refresh and revoke contract the sync worker relies on, against local providers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from werkzeug.wrappers import Request, Response

from shared.errors import InvalidGrant, ProviderError, ProviderUnavailable, RateLimited
from shared.platforms import oauth, registry
from shared.platforms.registry import Registry
from shared.platforms.transport import MAX_RETRY_AFTER, retry_after_seconds
from shared.settings import Settings
from tests.support.oauth_providers import CLIENT_SECRET, provider_for
from tests.support.servers import Recorder, serve


def entry(name: str, base: str) -> registry.Platform:
    return Registry.from_settings(Settings(platform_base_urls={name: base})).platform(name)


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Any, registry.Platform]]:
    name = request.param
    provider = provider_for(name, f"cid-{name}", slow_s=1.5)
    with serve(provider.app) as base:
        yield provider, entry(name, base)


def issue(provider: Any) -> str:
    if provider.name == "meta":
        token = "ll-seeded"
        provider.long.add(token)
        return token
    return str(provider._new_refresh())


def call_refresh(platform: registry.Platform, token: str, **kw: Any) -> Any:
    return oauth.refresh(
        platform, token, client_id=f"cid-{platform.name}", client_secret=CLIENT_SECRET, **kw
    )


@pytest.mark.parametrize("served", ["microsoft"], indirect=True)
def test_microsoft_rotates_and_the_old_refresh_token_dies(served: Any) -> None:
    provider, platform = served
    old = issue(provider)
    tokens = call_refresh(platform, old)
    assert tokens.access_token and tokens.refresh_token and tokens.refresh_token != old
    with pytest.raises(InvalidGrant):
        call_refresh(platform, old)
    assert call_refresh(platform, tokens.refresh_token).refresh_token


@pytest.mark.parametrize("served", ["linkedin", "google_ads", "tiktok", "meta"], indirect=True)
def test_a_kept_refresh_token_comes_back_as_none(served: Any) -> None:
    provider, platform = served
    tokens = call_refresh(platform, issue(provider))
    assert tokens.access_token and tokens.refresh_token is None


@pytest.mark.parametrize("served", ["linkedin", "tiktok", "meta"], indirect=True)
def test_a_dead_refresh_token_is_invalid_grant(served: Any) -> None:
    _, platform = served
    with pytest.raises(InvalidGrant):
        call_refresh(platform, "never-issued")


@pytest.mark.parametrize("served", ["linkedin", "tiktok", "meta"], indirect=True)
@pytest.mark.parametrize("mode", ["500", "slow"])
def test_server_errors_and_timeouts_are_provider_unavailable(served: Any, mode: str) -> None:
    provider, platform = served
    token = issue(provider)
    provider.token_mode = mode
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        call_refresh(platform, token, timeout=0.5)
    assert time.monotonic() - started < 1.4


def test_429_is_rate_limited_with_retry_after() -> None:
    app = Recorder(lambda r: Response("slow down", status=429, headers={"Retry-After": "7"}))
    with serve(app) as base, pytest.raises(RateLimited) as caught:
        call_refresh(entry("linkedin", base), "rt")
    assert caught.value.retry_after == 7.0
    # The token travelled in the body, never in the URL.
    assert app.requests[0]["args"] == {} and b"rt" in app.requests[0]["body"]


def test_oauth_and_reports_read_retry_after_alike() -> None:
    # One parser: an HTTP date is read, and a hostile delay is capped as for reports.
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    for header, expected in (("99999", MAX_RETRY_AFTER), (date, 0.0)):
        app = Recorder(lambda r, h=header: Response("", status=429, headers={"Retry-After": h}))
        with serve(app) as base, pytest.raises(RateLimited) as caught:
            call_refresh(entry("linkedin", base), "rt")
        assert caught.value.retry_after == expected == retry_after_seconds(header)


def test_an_unreachable_provider_is_unavailable() -> None:
    with serve(Recorder(lambda r: Response(""))) as base:
        pass  # closed: nothing listens there any more
    with pytest.raises(ProviderUnavailable):
        call_refresh(entry("google_ads", base), "rt", timeout=1)


@pytest.mark.parametrize("served", ["google_ads", "linkedin", "tiktok", "meta"], indirect=True)
def test_revoke_outcomes(served: Any) -> None:
    provider, platform = served
    token = issue(provider)
    kw = {"client_id": f"cid-{platform.name}", "client_secret": CLIENT_SECRET, "timeout": 0.5}
    assert oauth.revoke(platform, token, **kw) == "revoked"
    assert token in provider.revoked
    provider.revoke_mode = "500"
    assert oauth.revoke(platform, token, **kw) == "failed:provider_unavailable"
    provider.revoke_mode = "slow"
    assert oauth.revoke(platform, token, **kw) == "failed:provider_unavailable"


def test_microsoft_revoke_is_not_supported() -> None:
    platform = Registry.from_settings(Settings()).platform("microsoft")
    assert oauth.revoke(platform, "t", client_id="c", client_secret="s") == "not_supported"


def test_meta_revoke_deletes_the_users_permissions() -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response('{"success": true}', mimetype="application/json")

    with serve(Recorder(handler)) as base:
        outcome = oauth.revoke(
            entry("meta", base), "ll-tok", client_id="c", client_secret="s", external_user_id="42"
        )
    assert outcome == "revoked"
    assert (seen[0].method, seen[0].path) == ("DELETE", "/v26.0/42/permissions")
    assert seen[0].headers["Authorization"] == "Bearer ll-tok" and not seen[0].args


def test_a_kept_refresh_token_keeps_every_other_field() -> None:
    # TikTok answers a refresh with the same refresh token and the grant's advertisers:
    # dropping the unchanged token must not drop the accounts (or anything else).
    answer = {
        "code": 0,
        "message": "OK",
        "data": {
            "access_token": "at-new",
            "refresh_token": "rt-kept",
            "access_token_expire_in": 86400,
            "refresh_token_expire_in": 31536000,
            "advertiser_ids": ["7000000001", "7000000002"],
            "scope": [4, 5],
            "open_id": "u-1",
        },
    }
    app = Recorder(lambda r: Response(json.dumps(answer), mimetype="application/json"))
    with serve(app) as base:
        tokens = oauth.refresh(
            entry("tiktok", base), "rt-kept", client_id="c", client_secret=CLIENT_SECRET
        )
    assert tokens.refresh_token is None
    assert tokens.account_ids == ("7000000001", "7000000002")
    assert (tokens.access_token, tokens.expires_in, tokens.refresh_expires_in) == (
        "at-new",
        86400,
        31536000,
    )
    assert (tokens.scopes, tokens.external_user_id) == (("4", "5"), "u-1")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (40103, InvalidGrant),  # REFRESH_TOKEN_EXPIRE
        (40107, InvalidGrant),  # INVALID_REFRESH_TOKEN
        (40110, InvalidGrant),  # AUTH_CODE_ERROR
        (40132, RateLimited),
        (61000, RateLimited),
        (60001, ProviderUnavailable),  # maintenance: retry later
        (70001, ProviderError),  # a client error, not unavailability
    ],
)
def test_tiktok_token_endpoint_codes(code: int, error: type) -> None:
    body = json.dumps({"code": code, "message": "no", "request_id": "r", "data": {}})
    app = Recorder(lambda r: Response(body, mimetype="application/json"))
    with serve(app) as base, pytest.raises(ProviderError) as caught:
        call_refresh(entry("tiktok", base), "rt")
    assert type(caught.value) is error


@pytest.mark.parametrize("served", ["microsoft", "linkedin"], indirect=True)
def test_only_microsoft_sends_the_scopes_again_on_a_refresh(served: Any) -> None:
    # Microsoft's identity platform wants them (its own SDK sends them); RFC 6749
    # makes them optional, and the others get none.
    provider, platform = served
    call_refresh(platform, issue(provider))
    form = parse_qs(provider.app.requests[-1]["body"].decode())
    assert form["grant_type"] == ["refresh_token"]
    if platform.name == "microsoft":
        assert form["scope"] == ["https://ads.microsoft.com/msads.manage offline_access"]
    else:
        assert "scope" not in form
