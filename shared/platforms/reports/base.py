"""The connector protocol the sync engine codes against.

A connector turns one platform's reporting API into the daily table:

    connector = runtime.platforms.connector("meta")
    api = ApiClient(registry_entry.api_base_url, access_token, headers=...)
    for account in connector.accounts(api, connection.account_ids):
        table = connector.fetch(api, account, window.date_from, window.date_to)
        warehouse.replace(dataset, account.id, window.date_from, window.date_to, table)

Invariants every connector keeps:
- `fetch` returns `DAILY_SCHEMA`, only rows of `account` with dates in
  [date_from, date_to] (in the account's reporting timezone), `synced_at` set.
  An empty table is a valid answer (no activity).
- Money is integer micros converted exactly from the provider's decimal text.
- Failures are the `shared.platforms.base` error tree (see `http.py`), never a
  raw requests/ValueError, and never carry a token or a provider body.
- Connectors are stateless: everything an account needs to be fetched travels
  in the `Account` (platform subclasses add routing ids, e.g. Google's
  login-customer-id), so one instance serves every connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from shared import errors
from shared.errors import ProviderUnavailable
from shared.platforms.base import Account

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.platforms.reports.http import ApiClient


class Connector(Protocol):
    platform: str
    lookback_days: int  # re-read on every sync: conversions arrive late
    retention_days: int  # the oldest day the API still serves

    def accounts(self, api: ApiClient, configured: Sequence[str]) -> list[Account]:
        """The accounts to sync: `configured` (the connection's chosen ids) or, when
        empty, every account the grant reaches."""
        ...

    def fetch(
        self, api: ApiClient, account: Account, date_from: dt.date, date_to: dt.date
    ) -> pa.Table:
        """One account's daily rows for [date_from, date_to] as `DAILY_SCHEMA`."""
        ...


def days(date_from: dt.date, date_to: dt.date) -> int:
    if date_from > date_to:
        raise errors.ValidationFailed("date_from must not be after date_to.")
    return (date_to - date_from).days + 1


def check_range(date_from: dt.date, date_to: dt.date) -> None:
    """Reject an inverted range before any request goes out."""
    days(date_from, date_to)


@contextmanager
def provider_data(platform: str) -> Iterator[None]:
    """A malformed provider answer (missing key, unparseable number) is the
    provider's fault: ProviderUnavailable, with nothing of the body in the message."""
    try:
        yield
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise ProviderUnavailable(f"{platform}: the report data was malformed.") from exc
