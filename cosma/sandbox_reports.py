"""The sandbox platform's report API, served by the local server.

    GET /sandbox/api/accounts
        {"accounts": [{"id", "name", "currency", "timezone"}]}
    GET /sandbox/api/report?account_id=&date_from=&date_to=[&page_token=][&page_size=]
        {"rows": [{date, campaign_id, campaign_name, ad_group_id, ad_id, impressions,
                   clicks, spend, conversions, conversion_value}], "next_page_token"}

Rows are a pure function of (account, date, ad): a repeated sync reads the same
rows, so a replace is idempotent and tests can predict every value. Money is
decimal text, like the real platforms. The bearer token must be an access
token the sandbox OAuth provider issued and has not expired (`cosma.sandbox_oauth`).
Routes carry no audit action: this stands in for an outside platform, not our API.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, model_validator
from werkzeug.wrappers import Response

from shared import errors
from shared.http import Context, Router, json_response
from shared.platforms.reports.normalize import micros_to_text

ACCOUNTS: tuple[dict[str, str], ...] = (
    {"id": "sbx-1001", "name": "Sandbox Retail", "currency": "USD", "timezone": "America/New_York"},
    {"id": "sbx-1002", "name": "Sandbox Travel", "currency": "EUR", "timezone": "Europe/Berlin"},
    {"id": "sbx-1003", "name": "Sandbox Apps", "currency": "JPY", "timezone": "Asia/Tokyo"},
)
_IDS = {a["id"] for a in ACCOUNTS}
CAMPAIGNS = 3
AD_GROUPS = 2  # per campaign
ADS = 2  # per ad group
MAX_DAYS = 366
PAGE_SIZE = 500


class ReportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(pattern=r"^sbx-[0-9]{4}$")
    date_from: dt.date
    date_to: dt.date
    page_token: str | None = Field(default=None, pattern=r"^[0-9]{1,7}$")
    page_size: int = Field(default=PAGE_SIZE, ge=1, le=1000)

    @model_validator(mode="after")
    def _range(self) -> ReportQuery:
        if self.date_from > self.date_to:
            raise ValueError("date_from must not be after date_to")
        if (self.date_to - self.date_from).days >= MAX_DAYS:
            raise ValueError(f"at most {MAX_DAYS} days per request")
        return self


def _unit(*parts: object) -> int:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def rows_for(account_id: str, day: dt.date) -> list[dict[str, object]]:
    """The day's rows of one account: deterministic, one per ad."""
    rows: list[dict[str, object]] = []
    for c in range(CAMPAIGNS):
        for g in range(AD_GROUPS):
            for a in range(ADS):
                seed = _unit(account_id, day.isoformat(), c, g, a)
                impressions = 200 + seed % 5000
                clicks = impressions * (1 + seed % 7) // 100
                spend = clicks * (150_000 + seed % 900_000)  # micros
                conversions = (seed >> 16) % 5
                value = conversions * (5_000_000 + (seed >> 24) % 95_000_000)
                rows.append(
                    {
                        "date": day.isoformat(),
                        "campaign_id": f"{account_id}-c{c}",
                        "campaign_name": f"Campaign {c + 1}",
                        "ad_group_id": f"{account_id}-c{c}-g{g}",
                        "ad_id": f"{account_id}-c{c}-g{g}-a{a}",
                        "impressions": impressions,
                        "clicks": clicks,
                        "spend": micros_to_text(spend),
                        "conversions": conversions,
                        "conversion_value": micros_to_text(value),
                    }
                )
    return rows


class SandboxReports:
    def __init__(self, token_valid: Callable[[str], bool] | None = None) -> None:
        if token_valid is None:
            from cosma import sandbox_oauth

            token_valid = sandbox_oauth.provider.access_token_valid
        self._token_valid = token_valid

    def router(self) -> Router:
        router = Router("sandbox", peer=True)
        router.route("GET", "/sandbox/api/accounts")(self._accounts)
        router.route("GET", "/sandbox/api/report", query=ReportQuery)(self._report)
        return router

    def _check(self, ctx: Context) -> None:
        header = ctx.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token or not self._token_valid(token.strip()):
            raise errors.Unauthorized()

    def _accounts(self, ctx: Context) -> Response:
        self._check(ctx)
        return json_response({"accounts": list(ACCOUNTS)})

    def _report(self, ctx: Context) -> Response:
        self._check(ctx)
        query = ctx.query(ReportQuery)
        if query.account_id not in _IDS:
            raise errors.NotFound("No such account.")
        start = int(query.page_token or 0)
        per_day = CAMPAIGNS * AD_GROUPS * ADS
        total = ((query.date_to - query.date_from).days + 1) * per_day
        end = min(total, start + query.page_size)
        rows: list[dict[str, object]] = []
        index = start - start % per_day
        while index < end:
            day = query.date_from + dt.timedelta(days=index // per_day)
            rows.extend(rows_for(query.account_id, day))
            index += per_day
        first = start - (start - start % per_day)
        page = rows[first : first + (end - start)]
        return json_response({"rows": page, "next_page_token": str(end) if end < total else None})


# The one instance the local server mounts.
reports = SandboxReports()
