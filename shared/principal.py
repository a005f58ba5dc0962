"""The resolved caller every function receives.

The Clerk token proves who the user is and which organization they act in;
our members and client-assignment rows decide the role and the clients.

Under impersonation (Clerk's `act` claim) the principal is the impersonated
user, with that user's rights, and `impersonator` names the person acting. It
travels in the transaction's claims as `act.sub`, so the audit record written
in that transaction names both (migration 0009 fills its column from there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["admin", "editor", "viewer"]


@dataclass(frozen=True)
class Principal:
    user_id: str
    org_id: str
    role: Role
    client_ids: frozenset[str] = field(default_factory=frozenset)
    session_id: str = ""
    expires_at: float = 0.0
    impersonator: str = ""  # the person acting as `user_id`, when impersonating

    def claims(self) -> dict[str, Any]:
        """The claims set into each transaction (Supabase's `request.jwt.claims`).

        The database reads `sub` and the organization id from them for RLS (role
        and assignments it looks up in its own tables, so a forged claim gains
        nothing), and `act.sub` for the audit record's impersonator.
        """
        claims: dict[str, Any] = {
            "sub": self.user_id,
            "o": {"id": self.org_id},
            "sid": self.session_id,
        }
        if self.impersonator:
            claims["act"] = {"sub": self.impersonator}
        return claims

    def public(self) -> dict[str, Any]:
        public: dict[str, Any] = {
            "user_id": self.user_id,
            "org_id": self.org_id,
            "role": self.role,
            "client_ids": sorted(self.client_ids),
        }
        if self.impersonator:
            public["impersonator"] = self.impersonator
        return public
