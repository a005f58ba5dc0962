"""Report connectors: each platform's reporting API normalised into the daily table.

    connector = runtime.platforms.connector("meta")     # the registry names each one
    api = ApiClient(entry.api_base_url, access_token, headers=...)

    base.py        the Connector protocol
    http.py        ApiClient: the one HTTP boundary and its error translation
    normalize.py   column lists -> DAILY_SCHEMA, exact money
    google_ads.py  meta.py  linkedin.py  tiktok.py  microsoft.py

Platform modules load on first use, so a function pays only for the one it syncs.
(The local sandbox platform's connector is the local bootstrap's, `cosma/`.)
"""

from __future__ import annotations

from shared.platforms.reports.base import Connector
from shared.platforms.reports.http import ApiClient

__all__ = ["ApiClient", "Connector"]
