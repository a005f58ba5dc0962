"""Report connectors: each platform's reporting API normalised into the daily table.

    from shared.platforms.reports import ApiClient, Connector, connector_for

    base.py        the Connector protocol
    http.py        ApiClient: the one HTTP boundary and its error translation
    normalize.py   column lists -> DAILY_SCHEMA, exact money
    google_ads.py  meta.py  linkedin.py  tiktok.py  microsoft.py  sandbox.py

Platform modules load on first use, so a function pays only for the one it syncs.
"""

from __future__ import annotations

import importlib

from shared.platforms.reports.base import Connector
from shared.platforms.reports.http import ApiClient

__all__ = ["CONNECTORS", "ApiClient", "Connector", "connector_for"]

# platform -> (module, class)
CONNECTORS: dict[str, tuple[str, str]] = {
    "google_ads": ("google_ads", "GoogleAdsConnector"),
    "meta": ("meta", "MetaConnector"),
    "linkedin": ("linkedin", "LinkedInConnector"),
    "tiktok": ("tiktok", "TikTokConnector"),
    "microsoft": ("microsoft", "MicrosoftConnector"),
    "sandbox": ("sandbox", "SandboxConnector"),
}


def connector_for(platform: str) -> Connector:
    """The connector of `platform`; KeyError for an unknown platform."""
    module_name, class_name = CONNECTORS[platform]
    module = importlib.import_module(f"shared.platforms.reports.{module_name}")
    connector: Connector = getattr(module, class_name)()
    return connector
