"""Authenticator: Authorization header -> verified claims -> Principal.

The token proves who the caller is and which organization the session acts in
(`shared.identity`); our `members` and `client_assignments` rows decide the
role and the clients. The resolved `Principal` is what every function gets.

Two caches keep the common case far cheaper than an RSA verify:

- verified tokens, keyed by the sha256 of the token (the token itself is never
  kept), each entry valid until the token's `exp` and re-checked against the
  clock on every hit; bounded (`max_tokens`, oldest evicted first). Refused
  tokens are not cached.
- resolved memberships, keyed by (user, organization), for `principal_ttl`
  seconds (30 s). Security consequence: a member removed from an organization,
  demoted, or unassigned from a client keeps their previous rights on this
  instance for at most that long. Postgres RLS reads the live rows on every
  query, so data the database guards follows the change at once.

Failures: 401 (one fixed message) for a missing or bad token; 403 when the
token names no organization or the user is not a member of it; 503 when the
key or the database is unavailable.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared import errors
from shared.identity import ClerkVerifier, SessionClaims
from shared.principal import Principal, Role

if TYPE_CHECKING:
    from shared.db import Database
    from shared.settings import Settings

_ROLES: frozenset[str] = frozenset({"admin", "editor", "viewer"})


@dataclass(frozen=True)
class Membership:
    role: Role
    client_ids: frozenset[str]
    fetched_at: float


class Authenticator:
    def __init__(
        self,
        verifier: ClerkVerifier,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        max_tokens: int = 10_000,
        principal_ttl: float = 30.0,
        max_members: int = 10_000,
    ) -> None:
        self.verifier = verifier
        self.db = db
        self.clock = clock
        self.max_tokens = max_tokens
        self.principal_ttl = principal_ttl
        self.max_members = max_members
        self._tokens: dict[bytes, SessionClaims] = {}
        self._members: dict[tuple[str, str], Membership] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, db: Database, clock: Callable[[], float] = time.time
    ) -> Authenticator:
        verifier = ClerkVerifier(
            issuer=(settings.clerk_issuer, *settings.clerk_other_issuers),
            authorized_parties=settings.allowed_origins,
            audiences=settings.clerk_audiences,
            jwt_key=settings.clerk_jwt_key,
            jwks_url=settings.clerk_jwks_url,
            clock=clock,
        )
        return cls(verifier, db, clock=clock)

    # ------------------------------------------------------------ public

    def authenticate(self, authorization: str, client_ip: str = "") -> Principal:
        claims = self.claims(bearer_token(authorization))
        if not claims.org_id:
            raise errors.Forbidden("Select an organization to use this route.")
        membership = self.membership(claims)
        return Principal(
            user_id=claims.user_id,
            org_id=claims.org_id,
            role=membership.role,
            client_ids=membership.client_ids,
            session_id=claims.session_id,
            expires_at=claims.expires_at,
            impersonator=claims.impersonator,
        )

    def claims(self, token: str) -> SessionClaims:
        """Verified claims, from the cache when this exact token was seen."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        cached = self._tokens.get(digest)
        if cached is not None:
            # Same expiry rule as a fresh verify: the cache never outlives `exp`.
            if cached.expires_at > self.clock() - self.verifier.leeway:
                return cached
            with self._lock:
                self._tokens.pop(digest, None)
        claims = self.verifier.verify(token)
        with self._lock:
            if len(self._tokens) >= self.max_tokens:
                self._tokens.pop(next(iter(self._tokens)), None)  # oldest first
            self._tokens[digest] = claims
        return claims

    def membership(self, claims: SessionClaims) -> Membership:
        key = (claims.user_id, claims.org_id)
        now = self.clock()
        cached = self._members.get(key)
        if cached is not None and now - cached.fetched_at < self.principal_ttl:
            return cached
        found = self._load(claims, now)
        with self._lock:
            if len(self._members) >= self.max_members:
                self._members.pop(next(iter(self._members)), None)
            self._members.pop(key, None)
            self._members[key] = found
        return found

    def forget(self, user_id: str, org_id: str) -> None:
        """Drop a cached membership now (after this instance changed it)."""
        with self._lock:
            self._members.pop((user_id, org_id), None)

    # ------------------------------------------------------------ internals

    def _load(self, claims: SessionClaims, now: float) -> Membership:
        # Under RLS with the caller's own claims: a user sees their own member
        # row and their own assignments, nothing of anyone else.
        db_claims = {"sub": claims.user_id, "o": {"id": claims.org_id}, "sid": claims.session_id}
        with self.db.transaction(db_claims) as conn:
            row = conn.execute(
                "select role from members where org_id = %s and user_id = %s",
                (claims.org_id, claims.user_id),
            ).fetchone()
            if row is None or row[0] not in _ROLES:
                raise errors.Forbidden("You are not a member of this organization.")
            clients = conn.execute(
                "select client_id::text from client_assignments where org_id = %s and user_id = %s",
                (claims.org_id, claims.user_id),
            ).fetchall()
        role: Role = row[0]
        return Membership(role, frozenset(c[0] for c in clients), now)


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header, or Unauthorized."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise errors.Unauthorized()
    return token
