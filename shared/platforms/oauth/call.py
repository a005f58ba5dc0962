"""`ProviderCall`: one platform's token endpoints over the shared provider transport,
and the parsing every wire style shares.

A style (`form.py`, `tiktok.py`, `meta.py`) gets a `ProviderCall` bound to the
registry entry, the HTTP session and the timeout, sends with `call.send(...)`
and reads the body with `call.body(...)`. Timeouts, connection failures, 429
(Retry-After) and 5xx are mapped by `shared.platforms.transport` before a style
sees the answer; a style maps only its own error bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import ProviderError
from shared.platforms.transport import send, server_fault

if TYPE_CHECKING:
    import requests

    from shared.platforms.entry import Platform


@dataclass(frozen=True)
class ProviderCall:
    platform: Platform
    session: requests.Session
    timeout: float

    @property
    def name(self) -> str:
        return self.platform.name

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """The provider's answer; transport faults, 429 and 5xx raised as our errors."""
        response = send(
            self.session, method, url, platform=self.name, timeout=self.timeout, **kwargs
        )
        fault = server_fault(response.status_code, response.headers, self.name)
        if fault is not None:
            raise fault
        return response

    def body(self, response: requests.Response) -> dict[str, Any]:
        """A JSON object; an empty success is {}; anything else is a ProviderError."""
        value = json_object(response)
        if value is None:
            if response.status_code < 400 and not response.content:
                return {}
            raise ProviderError(f"{self.name} answered with an unreadable body.")
        return value

    def revoke_url(self) -> str:
        """The platform's revocation endpoint; a ProviderError where it has none."""
        url = self.platform.revoke_url
        if not url:
            raise ProviderError(f"{self.name} has no revocation endpoint.")
        return url

    def required(self, answer: Mapping[str, Any], name: str) -> str:
        value = answer.get(name)
        if not isinstance(value, str) or not value:
            raise ProviderError(f"{self.name} answered without a {name.replace('_', ' ')}.")
        return value


def code_params(*, client_id: str, redirect_uri: str, state: str) -> dict[str, str]:
    """The authorization-code request's own parameters (RFC 6749 4.1.1)."""
    return {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": state,
    }


def json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        value = response.json()
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def scopes(value: Any) -> tuple[str, ...]:
    """Granted scopes as a tuple: space- or comma-separated strings, or lists."""
    if isinstance(value, str):
        return tuple(s for s in value.replace(",", " ").split() if s)
    if isinstance(value, list | tuple):
        return tuple(str(s) for s in value if str(s))
    return ()
