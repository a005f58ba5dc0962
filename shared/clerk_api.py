"""Clerk's Backend API: the list endpoints the directory's reconcile reads.

    GET /organizations?limit=&offset=&order_by=+created_at
    GET /organizations/{organization_id}
    GET /organizations/{organization_id}/memberships?limit=&offset=&order_by=+created_at[&user_id=]

Lists answer `{"data": [...], "total_count": N}` (`OrganizationsJSON`,
`OrganizationMembershipsJSON` in Clerk's SDKs) and are paged with `limit`
(1-500) and `offset`; oldest first, so what is created while we page lands on
the last page instead of shifting the others. The secret key travels only in
the `Authorization: Bearer` header, never in a URL, a log line or an error.

Failures become our errors here: a refused key is `UpstreamError` (502), a
rate limit is waited out (`Retry-After`, a few times) and then, like a
timeout or a 5xx, `Unavailable` (503).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

from shared import errors

log = logging.getLogger("cosma.clerk_api")

SECRET_NAME = "clerk-secret-key"  # noqa: S105 (a secret's name, not a value)
MAX_PAGE = 500
_RETRIES = 3
_MAX_WAIT_S = 10.0


class ClerkBackend:
    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        timeout_s: float = 10.0,
        page_size: int = 100,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise errors.Unavailable("The Clerk API URL is not configured.")
        if not secret_key:
            raise errors.Unavailable("The Clerk secret key is not configured.")
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {secret_key}", "Accept": "application/json"}
        self.timeout_s = timeout_s
        self.page_size = max(1, min(page_size, MAX_PAGE))
        self._sleep = sleep
        self._session: Any = None
        self.requests = 0

    # ------------------------------------------------------------ endpoints

    def organizations(self) -> Iterator[dict[str, Any]]:
        """Every organization of the instance, oldest first."""
        return self._pages("/organizations", {})

    def organization(self, org_id: str) -> dict[str, Any] | None:
        """One organization, or None when Clerk has no such organization."""
        return self._get(f"/organizations/{quote(org_id, safe='')}", {}, missing_ok=True)

    def memberships(self, org_id: str, user_ids: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
        """The organization's memberships, oldest first (only `user_ids`' when given)."""
        params: dict[str, Any] = {}
        users = list(user_ids)
        if users:
            params["user_id"] = users
        return self._pages(f"/organizations/{quote(org_id, safe='')}/memberships", params)

    # ------------------------------------------------------------ transport

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self._get(
                path,
                {**params, "limit": self.page_size, "offset": offset, "order_by": "+created_at"},
            )
            if page is None:
                return
            data, total = page.get("data"), page.get("total_count")
            if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
                raise errors.UpstreamError("Clerk answered a list without its data.")
            yield from data
            offset += len(data)
            if (
                not data
                or len(data) < self.page_size
                or (isinstance(total, int) and offset >= total)
            ):
                return

    def _get(
        self, path: str, params: dict[str, Any], *, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        import requests

        if self._session is None:
            self._session = requests.Session()
        url = self.base_url + path
        for attempt in range(_RETRIES + 1):
            self.requests += 1
            try:
                response = self._session.get(
                    url, params=params, headers=self._headers, timeout=self.timeout_s
                )
            except requests.RequestException as exc:
                raise errors.Unavailable("Clerk's API is unreachable.") from exc
            status = response.status_code
            if status == 404 and missing_ok:
                return None
            if status == 429 and attempt < _RETRIES:
                self._sleep(_retry_after(response.headers.get("Retry-After", "")))
                continue
            if status in (401, 403):
                raise errors.UpstreamError("Clerk refused the API key.")
            if status == 429 or status >= 500:
                raise errors.Unavailable("Clerk's API is unavailable.")
            if status != 200:
                raise errors.UpstreamError(f"Clerk's API answered {status}.")
            try:
                body = response.json()
            except ValueError as exc:
                raise errors.UpstreamError(
                    "Clerk's API answered something that is not JSON."
                ) from exc
            if not isinstance(body, dict):
                raise errors.UpstreamError("Clerk's API answered something that is not an object.")
            return body
        raise errors.Unavailable("Clerk's API is unavailable.")  # not reached: the loop returns

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _retry_after(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 1.0
    return max(0.0, min(seconds, _MAX_WAIT_S))
