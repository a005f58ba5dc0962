"""Rate limits shared by every instance: GCRA buckets in Postgres.

Policy (who is counted where):

- unauthenticated traffic (no Authorization header) takes one unit from the
  client IP's bucket, in `before_request`, before any handler work;
- a request with an Authorization header is counted after authentication:
  against the principal's bucket (`user:<org>:<user>`) when the token and the
  membership check out, against the client IP's bucket when they do not
  (a failed authentication);
- `/healthz` is never limited (load balancers must always reach it);
- a route whose credential is a signature rather than a header
  (`/webhooks/clerk`, signed by Svix) is counted like a token: not on the
  way in, against the IP when its signature is refused. Svix sends bursts
  (an organization deleted with its memberships) from shared addresses.

So every request costs one statement (`app.rate_limit_take`, one atomic
upsert, see migrations 0001 and 0002) and an authenticated user is never held
back by others behind the same office NAT.

A flood of forged tokens must not buy an RSA verify per request: once this
instance has seen an IP refused, it refuses that IP without verifying or
asking the database until the refusal's retry time. That is exact, not an
approximation: a GCRA bucket's theoretical arrival time only grows, so the
database would refuse too until then. The price: while an IP is refused,
authenticated users behind it are refused on that instance too, for at most
the retry time; that is what limiting before the verify means.

Client IPs are normalised: IPv6 addresses count per /64 (what one host is
typically given), and anything that does not parse as an address shares one
`ip:invalid` bucket.
"""

from __future__ import annotations

import ipaddress
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared import errors

if TYPE_CHECKING:
    from shared.db import Database
    from shared.principal import Principal
    from shared.settings import Settings

__all__ = [
    "EXEMPT_PATHS",
    "SIGNED_PATHS",
    "Decision",
    "Limit",
    "RateLimiter",
    "ip_key",
    "user_key",
]

EXEMPT_PATHS = frozenset({"/healthz"})
SIGNED_PATHS = frozenset({"/webhooks/clerk"})
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*s\s*(?::\s*(\d+))?\s*$")
_MAX_BLOCKED = 10_000


@dataclass(frozen=True)
class Limit:
    """`rate` requests per `period_s` seconds, with bursts of up to `burst`."""

    rate: int
    period_s: int
    burst: int

    def __post_init__(self) -> None:
        if self.rate < 1 or self.period_s < 1 or self.burst < 1:
            raise ValueError("rate, period and burst must be positive")
        if self.period_s * 1000 > 2**31 - 1:
            raise ValueError("period too long")

    @classmethod
    def parse(cls, spec: str) -> Limit | None:
        """`"60/60s:20"` (60 per 60 s, bursts of 20; burst defaults to rate); `""` is off."""
        if not spec.strip():
            return None
        found = _SPEC.match(spec)
        if not found:
            raise ValueError(f"rate limit spec {spec!r} is not '<rate>/<seconds>s[:<burst>]'")
        rate, period = int(found[1]), int(found[2])
        burst = int(found[3]) if found[3] else rate
        return cls(rate, period, burst)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_ms: int
    remaining: int


def ip_key(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return "ip:invalid"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"ip:{address}"


def user_key(principal: Principal) -> str:
    return f"user:{principal.org_id}:{principal.user_id}"


class RateLimiter:
    def __init__(
        self,
        db: Database,
        *,
        ip_limit: Limit | None,
        user_limit: Limit | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.ip_limit = ip_limit
        self.user_limit = user_limit
        self.clock = clock
        self._blocked: dict[str, float] = {}  # ip key -> refused until (clock)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> RateLimiter:
        return cls(
            db,
            ip_limit=Limit.parse(settings.rate_limit_ip),
            user_limit=Limit.parse(settings.rate_limit_user),
        )

    # ------------------------------------------------------------ policy

    def admit(self, path: str, client_ip: str, authorization: str) -> None:
        """Before the handler: refuse known-refused IPs; count unauthenticated traffic."""
        if path in EXEMPT_PATHS or self.ip_limit is None:
            return
        key = ip_key(client_ip)
        self._raise_if_blocked(key)
        if not authorization.strip() and path not in SIGNED_PATHS:
            self.check(key, self.ip_limit)

    def authenticated(self, principal: Principal) -> None:
        if self.user_limit is not None:
            self.check(user_key(principal), self.user_limit)

    def failed_authentication(self, client_ip: str) -> None:
        """Count a refused token against the IP; raises TooManyRequests when over."""
        if self.ip_limit is not None:
            self.check(ip_key(client_ip), self.ip_limit)

    # ------------------------------------------------------------ buckets

    def take(self, key: str, limit: Limit) -> Decision:
        """One unit from `key`'s bucket: one statement, atomic across instances."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "select allowed, retry_after_ms, remaining"
                " from app.rate_limit_take(%s, %s, %s, %s)",
                (key, limit.rate, limit.period_s * 1000, limit.burst),
            ).fetchone()
        if row is None:  # the function always returns one row
            raise errors.Unavailable("The rate limiter is unavailable.")
        return Decision(bool(row[0]), int(row[1]), int(row[2]))

    def check(self, key: str, limit: Limit) -> Decision:
        decision = self.take(key, limit)
        if decision.allowed:
            return decision
        retry_after = max(1, math.ceil(decision.retry_after_ms / 1000))
        if key.startswith("ip:"):
            self._block(key, decision.retry_after_ms / 1000)
        raise errors.TooManyRequests(
            retry_after, limit=limit.rate, remaining=0, window=limit.period_s
        )

    # ------------------------------------------------------------ local refusals

    def _raise_if_blocked(self, key: str) -> None:
        until = self._blocked.get(key)
        if until is None:
            return
        left = until - self.clock()
        if left <= 0:
            with self._lock:
                self._blocked.pop(key, None)
            return
        limit = self.ip_limit
        raise errors.TooManyRequests(
            max(1, math.ceil(left)),
            limit=limit.rate if limit else 0,
            remaining=0,
            window=limit.period_s if limit else 0,
        )

    def _block(self, key: str, seconds: float) -> None:
        with self._lock:
            if len(self._blocked) >= _MAX_BLOCKED:
                now = self.clock()
                for stale in [k for k, until in self._blocked.items() if until <= now]:
                    del self._blocked[stale]
                if len(self._blocked) >= _MAX_BLOCKED:
                    self._blocked.pop(next(iter(self._blocked)))
            self._blocked[key] = self.clock() + seconds
