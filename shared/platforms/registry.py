"""The platform registry: one entry per ad platform, everything the OAuth flow needs.

Each `Platform` says where to send the user (authorize), where to trade a code
or a refresh token (token, and TikTok's separate refresh endpoint), how to
revoke, which scopes to ask for, whether PKCE applies, whether refresh tokens
rotate and how long tokens live. Report connectors read `api_base_url`; the
report windows (lookback, retention) belong to the connectors themselves
(`shared/platforms/reports/`), the one place that knows each report API.

Invariants:
- Scopes are the minimum that reads reports. Two platforms have no read-only
  scope: Google Ads (`adwords` is its only scope) and Microsoft Advertising
  (`msads.manage`); `scope_note` records it. Cosma's code only ever reads.
- `platform(name, settings)` applies `settings.platform_base_urls[name]`: the
  override replaces scheme and host (and prefixes its path, if any) of EVERY
  endpoint of that platform, so a test points a whole platform at one
  loopback server. Nothing else reads URLs from anywhere.
- The sandbox platform lives on the local server (`cosma/sandbox_oauth.py`),
  under `settings.public_url` unless overridden.
- An unknown platform name is `errors.NotFound`, like any unknown resource.

Client ids come from `settings.platform_client_ids[name]`; client secrets from
the secrets port under `client_secret_name(name)` ("google-ads-client-secret").
"""

from __future__ import annotations

# Field names contain "token"; their values are URLs and protocol names, not secrets.
# ruff: noqa: S106
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from shared import errors
from shared.platforms.oauth.form import FormRevocation, FormTokens
from shared.platforms.oauth.meta import MetaGraphTokens, MetaPermissionsRevocation
from shared.platforms.oauth.tiktok import TikTokRevocation, TikTokTokens

if TYPE_CHECKING:
    from shared.platforms.oauth.style import Revocation, TokenStyle
    from shared.settings import Settings

__all__ = [
    "IMPLICIT_SCOPES",
    "PLATFORM_NAMES",
    "Platform",
    "client_id",
    "client_secret_name",
    "platform",
]

# The wire styles (shared/platforms/oauth/): small frozen objects, shared by entries.
FORM = FormTokens()
TIKTOK = TikTokTokens()
META_GRAPH = MetaGraphTokens()
RFC7009 = FormRevocation()
GOOGLE_REVOKE = FormRevocation(client_auth=False)

PLATFORM_NAMES: tuple[str, ...] = (
    "google_ads",
    "meta",
    "linkedin",
    "tiktok",
    "microsoft",
    "sandbox",
)

# Scopes that steer the grant (a refresh token, an id token) rather than name a
# permission, often left out of the granted list, and those a provider grants
# every app (Meta's public_profile): never required, never flagged as broader.
IMPLICIT_SCOPES: frozenset[str] = frozenset({"offline_access", "openid", "public_profile"})

# Graph API version every Meta endpoint uses; bump it here, in one place.
META_GRAPH_VERSION = "v25.0"
# The sandbox client id when none is configured (the local server accepts it).
SANDBOX_CLIENT_ID = "cosma-local"

_DAY = 86_400


@dataclass(frozen=True)
class Platform:
    name: str
    authorize_url: str
    token_url: str
    revoke_url: str | None
    # None: the platform has no revocation endpoint (disconnect deletes our copy).
    revocation: Revocation | None
    scopes: tuple[str, ...]
    scope_note: str
    pkce: bool
    refresh_rotates: bool
    access_token_ttl_s: int
    refresh_token_ttl_s: int | None
    refresh_idle_expiry_s: int | None
    token_style: TokenStyle
    api_base_url: str
    # TikTok refreshes at its own endpoint; everyone else at `token_url`.
    refresh_url: str | None = None
    # Extra authorize parameters (Google: offline access and a fresh consent,
    # without which a second connect returns no refresh token).
    authorize_params: tuple[tuple[str, str], ...] = ()

    @property
    def required_scopes(self) -> frozenset[str]:
        """Scopes a grant must carry to be useful (implicit ones excluded)."""
        return frozenset(self.scopes) - IMPLICIT_SCOPES


def _entries(public_url: str) -> dict[str, Platform]:
    graph = f"https://graph.facebook.com/{META_GRAPH_VERSION}"
    tiktok = "https://business-api.tiktok.com/open_api/v1.3"
    microsoft = "https://login.microsoftonline.com/common/oauth2/v2.0"
    sandbox = public_url.rstrip("/") + "/sandbox"
    return {
        "google_ads": Platform(
            name="google_ads",
            authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
            token_url="https://oauth2.googleapis.com/token",
            revoke_url="https://oauth2.googleapis.com/revoke",
            revocation=GOOGLE_REVOKE,
            scopes=("https://www.googleapis.com/auth/adwords",),
            scope_note=(
                "Google Ads has no read-only scope: adwords is its only scope and allows "
                "writes. Cosma only reads reports with it."
            ),
            pkce=True,
            refresh_rotates=False,
            access_token_ttl_s=3600,
            # No fixed lifetime; unused for six months (or revoked, or a password
            # change on some accounts) and it is dead.
            refresh_token_ttl_s=None,
            refresh_idle_expiry_s=183 * _DAY,
            token_style=FORM,
            api_base_url="https://googleads.googleapis.com",
            authorize_params=(("access_type", "offline"), ("prompt", "consent")),
        ),
        "meta": Platform(
            name="meta",
            authorize_url=f"https://www.facebook.com/{META_GRAPH_VERSION}/dialog/oauth",
            token_url=f"{graph}/oauth/access_token",
            # `{user_id}` is filled with the granting user's id (or "me").
            revoke_url=f"{graph}/{{user_id}}/permissions",
            revocation=MetaPermissionsRevocation(),
            scopes=("ads_read",),
            scope_note=(
                "ads_read only. Meta issues no refresh token: the code's short-lived user "
                "token is exchanged (fb_exchange_token) for a long-lived one (~60 days), "
                "which is stored in place of a refresh token. Refreshing re-exchanges it, "
                "which proves it alive but does not extend its life; when it dies the "
                "connection needs a reconnect."
            ),
            pkce=False,
            refresh_rotates=False,
            access_token_ttl_s=60 * _DAY,
            refresh_token_ttl_s=60 * _DAY,
            refresh_idle_expiry_s=None,
            token_style=META_GRAPH,
            api_base_url=graph,
        ),
        "linkedin": Platform(
            name="linkedin",
            authorize_url="https://www.linkedin.com/oauth/v2/authorization",
            token_url="https://www.linkedin.com/oauth/v2/accessToken",
            revoke_url="https://www.linkedin.com/oauth/v2/revoke",
            revocation=RFC7009,
            scopes=("r_ads", "r_ads_reporting"),
            scope_note="Read-only: r_ads (accounts, campaigns) and r_ads_reporting (analytics).",
            pkce=False,
            # Programmatic refresh tokens: 365 days from the first grant, not rotated,
            # and refreshing does not extend them.
            refresh_rotates=False,
            access_token_ttl_s=60 * _DAY,
            refresh_token_ttl_s=365 * _DAY,
            refresh_idle_expiry_s=None,
            token_style=FORM,
            api_base_url="https://api.linkedin.com/rest",
        ),
        "tiktok": Platform(
            name="tiktok",
            authorize_url="https://business-api.tiktok.com/portal/auth",
            token_url=f"{tiktok}/oauth2/access_token/",
            refresh_url=f"{tiktok}/oauth2/refresh_token/",
            revoke_url=f"{tiktok}/oauth2/revoke_token/",
            revocation=TikTokRevocation(),
            scopes=(),
            scope_note=(
                "TikTok permissions are chosen on the app in the TikTok for Business "
                "developer portal (Ad Account Management and Reporting, read), not in the "
                "authorize URL; the grant reports them as permission ids."
            ),
            pkce=False,
            refresh_rotates=False,
            access_token_ttl_s=_DAY,
            refresh_token_ttl_s=365 * _DAY,
            refresh_idle_expiry_s=None,
            token_style=TIKTOK,
            api_base_url=tiktok,
        ),
        "microsoft": Platform(
            name="microsoft",
            authorize_url=f"{microsoft}/authorize",
            token_url=f"{microsoft}/token",
            revoke_url=None,
            revocation=None,
            scopes=("https://ads.microsoft.com/msads.manage", "offline_access"),
            scope_note=(
                "msads.manage is Microsoft Advertising's only scope (no read-only one); "
                "offline_access asks for a refresh token. Microsoft has no revocation "
                "endpoint: disconnect deletes the token here, and the user can remove the "
                "app's consent in their Microsoft account."
            ),
            pkce=True,
            # Every refresh returns a new refresh token; an unused one dies after 90 days.
            refresh_rotates=True,
            access_token_ttl_s=3600,
            refresh_token_ttl_s=None,
            refresh_idle_expiry_s=90 * _DAY,
            token_style=FORM,
            api_base_url="https://reporting.api.bingads.microsoft.com",
        ),
        "sandbox": Platform(
            name="sandbox",
            authorize_url=f"{sandbox}/oauth/authorize",
            token_url=f"{sandbox}/oauth/token",
            revoke_url=f"{sandbox}/oauth/revoke",
            revocation=RFC7009,
            scopes=("reports.read",),
            scope_note="The local sandbox platform: one read-only scope.",
            pkce=True,
            refresh_rotates=True,
            access_token_ttl_s=3600,
            refresh_token_ttl_s=None,
            refresh_idle_expiry_s=90 * _DAY,
            token_style=FORM,
            api_base_url=f"{sandbox}/api",
        ),
    }


def _rebase(url: str, base: str) -> str:
    """`url` with scheme and host (and a path prefix) taken from `base`."""
    target, source = urlsplit(url), urlsplit(base)
    path = source.path.rstrip("/") + target.path
    return urlunsplit((source.scheme, source.netloc, path, target.query, target.fragment))


def platform(name: str, settings: Settings) -> Platform:
    """The registry entry for `name`, with the settings' base URL override applied."""
    entries = _entries(settings.public_url)
    entry = entries.get(name) if isinstance(name, str) else None
    if entry is None:
        raise errors.NotFound("No such platform.")
    base = settings.platform_base_urls.get(name, "")
    if not base:
        return entry
    return replace(
        entry,
        authorize_url=_rebase(entry.authorize_url, base),
        token_url=_rebase(entry.token_url, base),
        refresh_url=_rebase(entry.refresh_url, base) if entry.refresh_url else None,
        revoke_url=_rebase(entry.revoke_url, base) if entry.revoke_url else None,
        api_base_url=_rebase(entry.api_base_url, base),
    )


def client_id(name: str, settings: Settings) -> str:
    """Our OAuth client id at the platform; Unavailable when not configured."""
    value = settings.platform_client_ids.get(name, "")
    if not value and name == "sandbox":
        return SANDBOX_CLIENT_ID
    if not value:
        raise errors.Unavailable(f"The {name} platform is not configured.")
    return value


def client_secret_name(name: str) -> str:
    """The secrets-port name of a platform's client secret ("google-ads-client-secret")."""
    return f"{name.replace('_', '-')}-client-secret"
