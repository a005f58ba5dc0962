"""The platform registry: endpoints, minimal scopes, revocation and overrides."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from shared import errors
from shared.platforms import oauth, registry
from shared.platforms.registry import Registry
from shared.settings import Settings

DEFAULT = Settings()
CLOUD = Registry.from_settings(DEFAULT)
NAMES = ("google_ads", "meta", "linkedin", "tiktok", "microsoft")


def entry_of(name: str, settings: Settings = DEFAULT) -> registry.Platform:
    return Registry.from_settings(settings).platform(name)


def test_every_platform_has_an_entry() -> None:
    assert CLOUD.names == NAMES
    for name in NAMES:
        entry = CLOUD.platform(name)
        assert entry.name == name and entry.authorize_url and entry.token_url
        assert entry.scope_note
        assert entry.access_token_ttl_s > 0
        assert entry.connector.startswith(f"shared.platforms.reports.{name}:")


@pytest.mark.parametrize(
    ("name", "scopes"),
    [
        ("google_ads", ("https://www.googleapis.com/auth/adwords",)),
        ("meta", ("ads_read",)),
        ("linkedin", ("r_ads", "r_ads_reporting")),
        ("microsoft", ("https://ads.microsoft.com/msads.manage", "offline_access")),
        ("tiktok", ()),
    ],
)
def test_minimal_scopes(name: str, scopes: tuple[str, ...]) -> None:
    assert entry_of(name).scopes == scopes


def test_platforms_without_a_read_only_scope_say_so() -> None:
    assert "no read-only scope" in entry_of("google_ads").scope_note
    assert "no read-only" in entry_of("microsoft").scope_note
    assert "not in the" in entry_of("tiktok").scope_note


def test_revocation_per_platform() -> None:
    get = entry_of

    assert get("google_ads").revoke_url == "https://oauth2.googleapis.com/revoke"
    assert get("meta").revoke_url == "https://graph.facebook.com/v26.0/{user_id}/permissions"
    assert get("linkedin").revoke_url == "https://www.linkedin.com/oauth/v2/revoke"
    assert get("tiktok").revoke_url == (
        "https://business-api.tiktok.com/open_api/v1.3/oauth2/revoke_token/"
    )
    microsoft = get("microsoft")
    assert microsoft.revoke_url is None and microsoft.revocation is None
    assert "no revocation endpoint" in microsoft.scope_note


def test_lifetimes_and_rotation() -> None:
    microsoft = entry_of("microsoft")
    assert microsoft.refresh_rotates and microsoft.refresh_idle_expiry_s == 90 * 86400
    linkedin = entry_of("linkedin")
    assert not linkedin.refresh_rotates and linkedin.refresh_token_ttl_s == 365 * 86400
    assert entry_of("meta").refresh_token_ttl_s == 60 * 86400
    assert [n for n in NAMES if entry_of(n).pkce] == ["google_ads", "microsoft"]


def test_an_override_rebases_every_endpoint() -> None:
    settings = Settings(platform_base_urls={"tiktok": "http://127.0.0.1:9999"})
    entry = entry_of("tiktok", settings)
    urls = [
        entry.authorize_url,
        entry.token_url,
        entry.refresh_url,
        entry.revoke_url,
        entry.api_base_url,
    ]
    assert all(str(u).startswith("http://127.0.0.1:9999/") for u in urls)
    assert entry.token_url == "http://127.0.0.1:9999/open_api/v1.3/oauth2/access_token/"
    # Other platforms are untouched.
    assert entry_of("meta", settings).token_url.startswith("https://graph.facebook.com/")


def test_unknown_platforms_and_missing_client_ids() -> None:
    with pytest.raises(errors.NotFound):
        CLOUD.platform("myspace")
    with pytest.raises(errors.ValidationFailed):
        CLOUD.check("myspace")
    with pytest.raises(errors.Unavailable):
        CLOUD.client_id("meta")
    assert Registry.from_settings(Settings(platform_client_ids={"meta": "m"})).client_id("meta")
    assert registry.client_secret_name("google_ads") == "google-ads-client-secret"


def test_authorization_urls_carry_pkce_and_no_secret() -> None:
    verifier = oauth.new_code_verifier()
    assert 43 <= len(verifier) <= 128
    url = oauth.authorization_url(
        entry_of("microsoft"),
        client_id="cid",
        redirect_uri="https://api.test/oauth/callback",
        state="st",
        code_verifier=verifier,
    )
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert params["scope"] == "https://ads.microsoft.com/msads.manage offline_access"
    assert params["code_challenge"] == oauth.code_challenge(verifier) != verifier
    assert params["code_challenge_method"] == "S256" and verifier not in url
    meta = oauth.authorization_url(entry_of("meta"), client_id="c", redirect_uri="r", state="s")
    assert "code_challenge" not in meta and "scope=ads_read" in meta


def test_the_rfc7636_challenge_vector() -> None:
    # RFC 7636 appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert oauth.code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
