"""The one HTTP boundary to a provider, shared by the OAuth styles and the report connectors.

    response = send(session, "POST", url, platform="meta", timeout=10, data=form)
    raise error_for_status(response.status_code, response.headers, "meta")

What every provider call has in common is decided here, once:

- every call has a timeout; a timeout, a reset or a refused connection is
  `ProviderUnavailable` (retry later);
- 429 is `RateLimited` with `retry_after` from the Retry-After header
  (`retry_after_seconds`: delta-seconds or an HTTP date, bounded, 60 s when
  absent or unreadable); 5xx is `ProviderUnavailable` (`server_fault`);
- the default meaning of the other statuses (`error_for_status`): 401 the
  access token was refused, 403 a permission is missing, other 4xx a request
  not to repeat as is.

Messages name the platform and the kind of failure, never a URL, a token or a
provider body; the library's exception is not chained (its text carries the URL).
`requests` is imported on the first call, not with this module (cold starts).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.errors import (
    AccessTokenRejected,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)

if TYPE_CHECKING:
    import requests

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "MAX_RETRY_AFTER",
    "error_for_status",
    "retry_after_seconds",
    "send",
    "server_fault",
]

DEFAULT_RETRY_AFTER = 60.0
# A hostile or broken header must not park a connection for days.
MAX_RETRY_AFTER = 3600.0


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float:
    """Retry-After as seconds: delta-seconds or an HTTP date; the default when absent or bad."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    platform: str,
    timeout: float,
    **kwargs: Any,
) -> requests.Response:
    """One request with a timeout; transport failures become `ProviderUnavailable`."""
    import requests

    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout:
        raise ProviderUnavailable(f"{platform}: the request timed out.") from None
    except requests.RequestException:
        raise ProviderUnavailable(f"{platform}: the connection failed.") from None


def server_fault(status: int, headers: Mapping[str, str], platform: str) -> ProviderError | None:
    """429 and 5xx, which mean the same at every endpoint of every provider; else None."""
    if status == 429:
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        return RateLimited(f"{platform}: rate limited.", retry_after=retry_after)
    if status >= 500:
        return ProviderUnavailable(f"{platform}: the provider answered {status}.")
    return None


def error_for_status(status: int, headers: Mapping[str, str], platform: str) -> ProviderError:
    """The default translation of a failed status (see the module docstring)."""
    fault = server_fault(status, headers, platform)
    if fault is not None:
        return fault
    if status == 401:
        return AccessTokenRejected(f"{platform}: the access token was refused.")
    if status == 403:
        return PermissionDenied(f"{platform}: the grant may not read this account.")
    return ProviderError(f"{platform}: the provider refused the request ({status}).")
