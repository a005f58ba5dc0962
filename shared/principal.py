"""The resolved caller every function receives.

The Clerk token proves who the user is and which organization they act in;
our members and client-assignment rows decide the role and the clients.
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

    def claims(self) -> dict[str, Any]:
        """The claims set into each transaction (Supabase's `request.jwt.claims`).

        The database reads only `sub` and the organization id from them; role and
        assignments it looks up in its own tables, so a forged claim gains nothing.
        """
        return {"sub": self.user_id, "o": {"id": self.org_id}, "sid": self.session_id}

    def public(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "org_id": self.org_id,
            "role": self.role,
            "client_ids": sorted(self.client_ids),
        }
