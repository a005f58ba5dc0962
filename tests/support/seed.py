"""Tenancy fixtures written as the database owner, as an operator would.

Every test makes its own organizations with fresh ids, so tests never share
rows and nothing needs cleaning up (the audit log could not be, by design).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import psycopg

from shared.principal import Principal


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass
class Org:
    id: str
    clients: list[str] = field(default_factory=list)
    members: dict[str, str] = field(default_factory=dict)  # user -> role
    assignments: dict[str, set[str]] = field(default_factory=dict)  # user -> clients

    def principal(self, user_id: str) -> Principal:
        return Principal(
            user_id=user_id,
            org_id=self.id,
            role=self.members[user_id],  # type: ignore[arg-type]
            client_ids=frozenset(self.assignments.get(user_id, set())),
        )

    def user(self, role: str) -> str:
        return next(u for u, r in self.members.items() if r == role)


class Seeder:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def org(
        self,
        *,
        clients: int = 2,
        roles: tuple[str, ...] = ("admin", "editor", "viewer"),
        location: str = "US",
        assign_first: bool = True,
    ) -> Org:
        """An organization with clients and one member per role.

        Editors and viewers are assigned the first client only (when assign_first).
        """
        org = Org(new_id("org"))
        with psycopg.connect(self.admin_url, autocommit=True) as conn, conn.transaction():
            conn.execute(
                "insert into organizations (id, name, location) values (%s, %s, %s)",
                (org.id, f"Agency {org.id[-6:]}", location),
            )
            for _ in range(clients):
                row = conn.execute(
                    "insert into clients (org_id, name) values (%s, %s) returning id::text",
                    (org.id, f"Client {uuid.uuid4().hex[:6]}"),
                ).fetchone()
                assert row is not None
                org.clients.append(row[0])
            for role in roles:
                user = new_id(f"user_{role}")
                conn.execute(
                    "insert into members (org_id, user_id, role) values (%s, %s, %s)",
                    (org.id, user, role),
                )
                org.members[user] = role
                if role != "admin" and assign_first and org.clients:
                    self._assign(conn, org, user, org.clients[0])
        return org

    def assign(self, org: Org, user: str, client_id: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            self._assign(conn, org, user, client_id)

    @staticmethod
    def _assign(conn: psycopg.Connection, org: Org, user: str, client_id: str) -> None:
        conn.execute(
            "insert into client_assignments (org_id, client_id, user_id) values (%s, %s, %s)",
            (org.id, client_id, user),
        )
        org.assignments.setdefault(user, set()).add(client_id)

    def connection(self, org: Org, client_id: str, platform: str = "sandbox") -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            row = conn.execute(
                "insert into connections (org_id, client_id, platform, external_account_id,"
                " created_by) values (%s, %s, %s, %s, 'seed') returning id::text",
                (org.id, client_id, platform, "acct-1"),
            ).fetchone()
        assert row is not None
        return str(row[0])
