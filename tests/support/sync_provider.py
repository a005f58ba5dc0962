"""A sandbox-protocol provider the sync tests control: OAuth token endpoint and report API.

Speaks what `shared.platforms.oauth` (form token endpoint) and the sandbox
connector (`cosma/sandbox_connector.py`) speak:

    POST /sandbox/oauth/token           grant_type=refresh_token -> access + rotated refresh token
    GET  /sandbox/api/accounts          the accounts of the grant
    GET  /sandbox/api/report?account_id&date_from&date_to[&page_token]   paginated daily rows

Each refresh token belongs to a grant ("family"); the grant's accounts are
`<family>-a`, `<family>-b`... so tests can tell connections apart. Rotation
invalidates the old refresh token (reusing it is `invalid_grant`, as Microsoft
and the sandbox do). Faults are queued per endpoint and consumed in order:

    "invalid_grant" | ("429", retry_after) | "500" | ("sleep", seconds) | "401" | "403"

Counters record refreshes per family and report requests per account, and the
largest number of report requests in flight at once for one account (two
invocations syncing one connection would show 2).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from werkzeug.wrappers import Request, Response

Fault = str | tuple[str, float]


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "big")


def rows_for(account_id: str, day: dt.date, campaigns: int, version: int) -> list[dict[str, Any]]:
    """Deterministic daily rows of one account; `version` changes every number."""
    out = []
    for c in range(campaigns):
        seed = _h(account_id, day, c, version)
        out.append(
            {
                "date": day.isoformat(),
                "campaign_id": f"c{c}",
                "campaign_name": f"Campaign {c}",
                "ad_group_id": f"g{c}",
                "ad_id": f"ad{c}",
                "impressions": str(1000 + seed % 9000),
                "clicks": str(seed % 300),
                "spend": f"{seed % 50_000 / 100:.2f}",
                "conversions": (seed % 70) / 10,
                "conversion_value": f"{seed % 90_000 / 100:.2f}",
            }
        )
    return out


class SyncProvider:
    def __init__(
        self,
        *,
        rotate: bool = True,
        accounts_per_grant: int = 1,
        campaigns: int = 3,
        page_size: int = 10,
        timezone: str = "UTC",
    ) -> None:
        self.rotate = rotate
        self.accounts_per_grant = accounts_per_grant
        self.campaigns = campaigns
        self.page_size = page_size
        self.timezone = timezone
        self.version = 1
        self.lock = threading.Lock()
        self.refresh_tokens: dict[str, str] = {}  # live refresh token -> family
        self.access_tokens: dict[str, str] = {}  # live access token -> family
        self.token_faults: list[Fault] = []
        self.report_faults: dict[str, list[Fault]] = defaultdict(list)  # account -> faults
        self.refreshes: Counter[str] = Counter()
        self.report_calls: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.denied_accounts: set[str] = set()

    # ------------------------------------------------------------ set-up

    def grant(self, family: str | None = None) -> str:
        """A new live refresh token of `family` (a fresh family by default)."""
        token = f"rt-{secrets.token_urlsafe(12)}"
        with self.lock:
            self.refresh_tokens[token] = family or f"f{secrets.token_hex(4)}"
        return token

    def family(self, refresh_token: str) -> str:
        return self.refresh_tokens[refresh_token]

    def live_refresh_token(self, family: str) -> str:
        with self.lock:
            return next(t for t, f in self.refresh_tokens.items() if f == family)

    def accounts_of(self, family: str) -> list[str]:
        return [f"{family}-{chr(97 + i)}" for i in range(self.accounts_per_grant)]

    # ------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/sandbox/oauth/token" and request.method == "POST":
            response = self._token(request)
        elif request.path == "/sandbox/api/accounts":
            response = self._authorized(request, self._accounts)
        elif request.path == "/sandbox/api/report":
            response = self._authorized(request, self._report)
        else:
            response = _json({"error": "not_found"}, 404)
        return response(environ, start_response)

    def _fault(self, fault: Fault) -> Response | None:
        kind = fault if isinstance(fault, str) else fault[0]
        if kind == "invalid_grant":
            return _json({"error": "invalid_grant"}, 400)
        if kind == "429":
            seconds = fault[1] if isinstance(fault, tuple) else 30
            return _json({"error": "rate_limited"}, 429, {"Retry-After": str(int(seconds))})
        if kind == "500":
            return _json({"error": "server_error"}, 500)
        if kind == "401":
            return _json({"error": "invalid_token"}, 401)
        if kind == "403":
            return _json({"error": "forbidden"}, 403)
        if kind == "sleep" and isinstance(fault, tuple):
            time.sleep(fault[1])
        return None

    def _token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "refresh_token":
            return _json({"error": "unsupported_grant_type"}, 400)
        with self.lock:
            fault = self.token_faults.pop(0) if self.token_faults else None
        if fault is not None and (answer := self._fault(fault)) is not None:
            return answer
        old = form.get("refresh_token", "")
        with self.lock:
            family = self.refresh_tokens.get(old)
            if family is None:
                return _json({"error": "invalid_grant"}, 400)
            self.refreshes[family] += 1
            access = f"at-{secrets.token_urlsafe(12)}"
            self.access_tokens[access] = family
            body: dict[str, Any] = {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "reports.read",
            }
            if self.rotate:
                new = f"rt-{secrets.token_urlsafe(12)}"
                del self.refresh_tokens[old]
                self.refresh_tokens[new] = family
                body["refresh_token"] = new
        return _json(body)

    def _authorized(self, request: Request, handler: Any) -> Response:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        with self.lock:
            family = self.access_tokens.get(token)
        if family is None:
            return _json({"error": "invalid_token"}, 401)
        result: Response = handler(request, family, token)
        return result

    def _accounts(self, request: Request, family: str, token: str) -> Response:
        return _json(
            {
                "accounts": [
                    {"id": a, "name": a, "currency": "EUR", "timezone": self.timezone}
                    for a in self.accounts_of(family)
                ]
            }
        )

    def _report(self, request: Request, family: str, token: str) -> Response:
        account = request.args.get("account_id", "")
        if account not in self.accounts_of(family) or account in self.denied_accounts:
            return _json({"error": "forbidden"}, 403)
        with self.lock:
            self.report_calls[account] += 1
            self.in_flight[account] += 1
            self.max_in_flight[account] = max(self.max_in_flight[account], self.in_flight[account])
            fault = self.report_faults[account].pop(0) if self.report_faults[account] else None
        try:
            time.sleep(0.01)  # long enough for an overlap to show in `max_in_flight`
            if fault is not None and (answer := self._fault(fault)) is not None:
                if fault == "401":
                    with self.lock:
                        self.access_tokens.pop(token, None)
                return answer
            date_from = dt.date.fromisoformat(request.args["date_from"])
            date_to = dt.date.fromisoformat(request.args["date_to"])
            offset = int(request.args.get("page_token") or 0)
            rows: list[dict[str, Any]] = []
            day = date_from
            while day <= date_to:
                rows.extend(rows_for(account, day, self.campaigns, self.version))
                day += dt.timedelta(days=1)
            page = rows[offset : offset + self.page_size]
            following = offset + self.page_size
            return _json(
                {"rows": page, "next_page_token": str(following) if following < len(rows) else None}
            )
        finally:
            with self.lock:
                self.in_flight[account] -= 1


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")
