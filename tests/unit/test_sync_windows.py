"""Sync windows: the account's calendar day, the lookback, gaps and retention."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.sync.windows import Window, account_today, window_for

UTC = dt.UTC
# 23:30 UTC on 10 March: already 11 March in Sydney, still 10 March in Los Angeles.
NOW = dt.datetime(2026, 3, 10, 23, 30, tzinfo=UTC)


def _window(timezone: str = "UTC", **kw: object) -> Window:
    args: dict[str, object] = {
        "lookback_days": 14,
        "retention_days": 1095,
        "last_synced_at": NOW - dt.timedelta(days=1),
        "first_days": 90,
    }
    args.update(kw)
    return window_for(NOW, timezone, **args)  # type: ignore[arg-type]


def test_today_is_the_accounts_calendar_day() -> None:
    assert account_today(NOW, "Australia/Sydney") == dt.date(2026, 3, 11)
    assert account_today(NOW, "America/Los_Angeles") == dt.date(2026, 3, 10)
    assert account_today(NOW, "UTC") == dt.date(2026, 3, 10)


@pytest.mark.parametrize("timezone", ["", "Not/AZone", "../etc/passwd"])
def test_unknown_timezone_falls_back_to_utc(timezone: str) -> None:
    assert account_today(NOW, timezone) == dt.date(2026, 3, 10)


def test_lookback_is_re_read_up_to_today() -> None:
    window = _window("Australia/Sydney", last_synced_at=NOW)
    assert window == Window(dt.date(2026, 2, 25), dt.date(2026, 3, 11))
    assert window.days == 15
    # Synced yesterday (the account's yesterday): the lookback runs from that day.
    window = _window("Australia/Sydney")
    assert window == Window(dt.date(2026, 2, 24), dt.date(2026, 3, 11))


def test_first_sync_reaches_first_days_back() -> None:
    window = _window(last_synced_at=None)
    assert window.date_from == dt.date(2026, 3, 10) - dt.timedelta(days=90)


def test_first_sync_never_shorter_than_the_lookback() -> None:
    window = _window(last_synced_at=None, first_days=3, lookback_days=28)
    assert window.date_from == dt.date(2026, 2, 10)


def test_days_missed_since_the_last_sync_are_covered() -> None:
    window = _window(last_synced_at=NOW - dt.timedelta(days=40))
    assert window.date_from == dt.date(2026, 1, 29) - dt.timedelta(days=14)


def test_start_is_clamped_to_retention() -> None:
    window = _window(last_synced_at=None, first_days=400, retention_days=365)
    assert window.date_from == dt.date(2025, 3, 10)
    window = _window(last_synced_at=NOW - dt.timedelta(days=1200), retention_days=37 * 30)
    assert window.date_from == dt.date(2026, 3, 10) - dt.timedelta(days=37 * 30)


def test_a_last_sync_in_the_future_does_not_shrink_the_window() -> None:
    window = _window(last_synced_at=NOW + dt.timedelta(days=5))
    assert window.date_from == dt.date(2026, 2, 24)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        window_for(
            NOW.replace(tzinfo=None),
            "UTC",
            lookback_days=1,
            retention_days=1,
            last_synced_at=None,
            first_days=1,
        )
