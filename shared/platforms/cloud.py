"""The deployed platforms' registry entries: endpoints, scopes, revocation, lifetimes.

One entry per name of `shared.platform_names.CLOUD_PLATFORMS` (a test holds
them equal). Scopes are the minimum that reads reports. Two platforms have no
read-only scope: Google Ads (`adwords` is its only scope) and Microsoft
Advertising (`msads.manage`); `scope_note` records it. Cosma's code only ever
reads. Each entry names its report connector (`shared/platforms/reports/`),
imported only when a sync needs it.
"""

from __future__ import annotations

# Field names contain "token"; their values are URLs and protocol names, not secrets.
# ruff: noqa: S106
from shared.platforms import versions
from shared.platforms.entry import Platform
from shared.platforms.oauth.form import FormRevocation, FormTokens
from shared.platforms.oauth.meta import MetaGraphTokens, MetaPermissionsRevocation
from shared.platforms.oauth.tiktok import TikTokRevocation, TikTokTokens

__all__ = ["META_GRAPH_VERSION", "cloud_entries"]

# Graph API version every Meta endpoint uses; bump it in versions.py, in one place.
META_GRAPH_VERSION = versions.META.version

# The wire styles (shared/platforms/oauth/): small frozen objects, shared by entries.
FORM = FormTokens()
# Microsoft's identity platform wants the scopes on every refresh too (its SDK sends
# "https://ads.microsoft.com/msads.manage offline_access").
MICROSOFT_FORM = FormTokens(scope_on_refresh=True)
TIKTOK = TikTokTokens()
META_GRAPH = MetaGraphTokens()
RFC7009 = FormRevocation()
GOOGLE_REVOKE = FormRevocation(client_auth=False)

_REPORTS = "shared.platforms.reports."
_DAY = 86_400


def cloud_entries() -> dict[str, Platform]:
    """The deployed platforms' entries, before any settings override."""
    graph = f"https://graph.facebook.com/{META_GRAPH_VERSION}"
    tiktok = f"https://business-api.tiktok.com/open_api/{versions.TIKTOK.version}"
    microsoft = "https://login.microsoftonline.com/common/oauth2/v2.0"
    return {
        "google_ads": Platform(
            name="google_ads",
            manual_revoke_url="https://myaccount.google.com/connections",
            api_version=versions.GOOGLE_ADS,
            connector=_REPORTS + "google_ads:GoogleAdsConnector",
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
            manual_revoke_url="https://www.facebook.com/settings/?tab=business_tools",
            api_version=versions.META,
            connector=_REPORTS + "meta:MetaConnector",
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
            manual_revoke_url="https://www.linkedin.com/psettings/permitted-services",
            api_version=versions.LINKEDIN,
            connector=_REPORTS + "linkedin:LinkedInConnector",
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
            manual_revoke_url="https://business.tiktok.com",
            api_version=versions.TIKTOK,
            connector=_REPORTS + "tiktok:TikTokConnector",
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
            manual_revoke_url="https://account.live.com/consent/Manage",
            api_version=versions.MICROSOFT,
            connector=_REPORTS + "microsoft:MicrosoftConnector",
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
            token_style=MICROSOFT_FORM,
            api_base_url="https://reporting.api.bingads.microsoft.com",
        ),
    }
