"""Sync windows: which dates of an account one sync re-reads.

Platforms keep revising recent days (late conversions, invalid-click credits),
so every sync re-reads a trailing window of `lookback_days` before "today",
where today is the account's own calendar day (its reporting timezone, not
UTC: an account in Sydney is a day ahead of one in Los Angeles). The window
also reaches back to cover any days missed since the last successful sync,
and a first sync starts `first_days` back. The start is never older than the
platform's retention (`retention_days`): the API would refuse or return
nothing, and a replace over an empty answer would erase rows we still hold.

    date_to   = today (account timezone)
    date_from = max(today - retention_days,
                    first sync: today - max(first_days, lookback_days)
                    later:      min(today, last synced day) - lookback_days)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class Window:
    date_from: dt.date
    date_to: dt.date

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1


def account_today(now: dt.datetime, timezone: str) -> dt.date:
    """The calendar day `now` falls on in `timezone` (UTC when unknown or empty)."""
    try:
        zone = ZoneInfo(timezone) if timezone else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return now.astimezone(zone).date()


def window_for(
    now: dt.datetime,
    timezone: str,
    *,
    lookback_days: int,
    retention_days: int,
    last_synced_at: dt.datetime | None,
    first_days: int,
) -> Window:
    """The dates to replace for one account; `now` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = account_today(now, timezone)
    if last_synced_at is None:
        start = today - dt.timedelta(days=max(first_days, lookback_days))
    else:
        last_day = min(today, account_today(last_synced_at, timezone))
        start = last_day - dt.timedelta(days=lookback_days)
    oldest = today - dt.timedelta(days=max(retention_days, 0))
    return Window(max(start, oldest), today)
