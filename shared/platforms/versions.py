"""The API version each platform's connector speaks, with its sunset and where that is written.

    GOOGLE_ADS.version                # "v26", what the connector puts in its paths
    GOOGLE_ADS.days_left(today)       # None when no sunset date is known
    GOOGLE_ADS.notice(today)          # a warning within WARN_DAYS of the sunset, else None

Every date comes from the page in `source`, read on `checked`; `basis` says how
firm it is: "announced" (a dated sunset on the platform's own page),
"projected" (the platform's published plan, month precision: the first day of
that month is kept, so a warning comes early rather than late), "policy" (no
date published for this version yet; the platform's stated minimum support
period from the version's release), or "none" (no sunset announced). `notes`
record what the official SDKs could not confirm (tests/conformance/).

A connector reads its version from here (one place to bump it); the registry
entry carries it (`Platform.api_version`), `cosma platforms` prints the table,
and the sync runner puts the notice into the connection's health.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

__all__ = ["GOOGLE_ADS", "LINKEDIN", "META", "MICROSOFT", "TIKTOK", "WARN_DAYS", "ApiVersion"]

WARN_DAYS = 90
Basis = Literal["announced", "projected", "policy", "none"]


@dataclass(frozen=True)
class ApiVersion:
    platform: str
    version: str
    sunset: dt.date | None
    basis: Basis
    source: str
    checked: dt.date
    notes: tuple[str, ...] = ()

    def days_left(self, today: dt.date) -> int | None:
        return None if self.sunset is None else (self.sunset - today).days

    def notice(self, today: dt.date, within_days: int = WARN_DAYS) -> str | None:
        """The warning for the connection's health and `cosma platforms`, or None."""
        left = self.days_left(today)
        if left is None or left > within_days:
            return None
        if left < 0:
            return f"{self.platform} API {self.version} was sunset on {self.sunset}: upgrade it"
        return f"{self.platform} API {self.version} is sunset on {self.sunset} ({left} days left)"


_CHECKED = dt.date(2026, 12, 1)

GOOGLE_ADS = ApiVersion(
    platform="google_ads",
    version="v26",
    # "V26 | Major | October 2026 | November 2027" (projected sunset); the exact day
    # appears on https://developers.google.com/google-ads/api/docs/sunset-dates later.
    sunset=dt.date(2027, 11, 1),
    basis="projected",
    source="https://developers.google.com/ads/blog/posts/2025/09/more-frequent-releases-coming-for",
    checked=_CHECKED,
)

META = ApiVersion(
    platform="meta",
    version="v26.0",
    # Released July 29, 2026, expiration "TBD"; v25.0 expires February 23, 2027.
    # The official SDK (facebook-business 26.0.3) defaults to v26.0.
    sunset=None,
    basis="none",
    source=(
        "https://developers.facebook.com/documentation/ads-commerce/marketing-api/"
        "marketing-api-changelog/versions"
    ),
    checked=_CHECKED,
)

LINKEDIN = ApiVersion(
    platform="linkedin",
    version="202608",
    # "August 2026 - Version 202608" on LinkedIn's recent-changes page
    # (https://learn.microsoft.com/en-ca/linkedin/marketing/integrations/recent-changes);
    # its migrations page lists no sunset for it yet, and each version is supported
    # "for a minimum of one year": not before August 2026 + 12 months.
    sunset=dt.date(2027, 8, 1),
    basis="policy",
    source="https://learn.microsoft.com/en-us/linkedin/marketing/versioning",
    checked=_CHECKED,
    notes=("202610 could not be confirmed to exist; 202608 is the newest version found",),
)

TIKTOK = ApiVersion(
    platform="tiktok",
    version="v1.3",
    sunset=None,
    basis="none",
    source="https://business-api.tiktok.com/portal/docs?id=1740029169927169",
    checked=_CHECKED,
    notes=(
        "the refresh (oauth2/refresh_token/) and revoke (oauth2/revoke_token/) endpoints are "
        "in none of the official SDKs (they hold oauth2/access_token/ only): unverified, taken "
        "from TikTok's authentication documentation",
        "the version page could be read here only through a third-party summary",
    ),
)

MICROSOFT = ApiVersion(
    platform="microsoft",
    version="v13",
    # Version 13 has been current since 2019; Microsoft has announced no successor.
    sunset=None,
    basis="none",
    source=(
        "https://techcommunity.microsoft.com/blog/adsapiblog/"
        "announcing-general-availability-of-bing-ads-api-v13/639065"
    ),
    checked=_CHECKED,
)
