"""API versions: each platform's in the registry with its sunset and source, the
version the connector sends is that one, and warnings start 90 days ahead."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from shared.platform_names import CLOUD_PLATFORMS
from shared.platforms import versions
from shared.platforms.cloud import META_GRAPH_VERSION
from shared.platforms.registry import Registry
from shared.platforms.reports import google_ads, linkedin
from shared.settings import Settings

CLOUD = Registry.from_settings(Settings())


def test_every_deployed_platform_has_a_sourced_version() -> None:
    for name in CLOUD_PLATFORMS:
        version = CLOUD.platform(name).api_version
        assert version is not None and version.platform == name
        assert version.source.startswith("https://") and version.version
        assert (version.sunset is None) == (version.basis == "none")


def test_the_connectors_speak_the_registered_versions() -> None:
    assert google_ads.API_VERSION == versions.GOOGLE_ADS.version == "v26"
    assert META_GRAPH_VERSION == versions.META.version == "v26.0"
    assert CLOUD.platform("meta").token_url.startswith("https://graph.facebook.com/v26.0/")
    # 202610 could not be confirmed to exist; 202608 is on LinkedIn's own pages.
    assert linkedin.HEADERS["LinkedIn-Version"] == versions.LINKEDIN.version == "202608"
    assert "/open_api/v1.3/" in CLOUD.platform("tiktok").token_url
    assert versions.MICROSOFT.version == "v13"


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2027, 4, 1), None),  # 122 days ahead: quiet
        (dt.date(2027, 5, 2), "202608 is sunset on 2027-08-01 (91 days left)"),
        (dt.date(2027, 8, 2), "202608 was sunset on 2027-08-01: upgrade it"),
    ],
)
def test_a_notice_within_90_days(today: dt.date, expected: str | None) -> None:
    version = versions.LINKEDIN
    notice = version.notice(today, within_days=91)
    assert notice == (None if expected is None else f"linkedin API {expected}")
    assert versions.LINKEDIN.notice(dt.date(2027, 5, 2)) is None  # 91 > 90
    assert versions.LINKEDIN.notice(dt.date(2027, 5, 3)) is not None
    assert versions.META.notice(today) is None  # no sunset known


def _platforms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cosma.cli", "platforms", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": ""},
    )


def test_cosma_platforms_prints_versions_and_days_left() -> None:
    quiet = _platforms("--today", "2026-12-01")
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stdout.splitlines()
    for name in CLOUD_PLATFORMS:
        (row,) = [line for line in lines if line.split()[:1] == [name]]
        assert CLOUD.platform(name).api_version.version in row  # type: ignore[union-attr]
    (google,) = [line for line in lines if line.split()[:1] == ["google_ads"]]
    assert google.split()[1:4] == ["v26", "2027-11-01", "335"]
    assert "WARNING" not in quiet.stdout
    near = _platforms("--today", "2027-06-01")
    assert near.returncode == 1
    assert "WARNING: linkedin API 202608 is sunset on 2027-08-01 (61 days left)" in near.stdout
