"""What one client process knows of its organizations: members, clients, connections.

Each organization is driven by one thread of one client process, one request
at a time, so its model is exact: which member sees which client, which
client has which connection. A change to a membership (an assignment, a role)
is followed by every instance within the membership cache's bound, so the
member it touched sits out that long (`quiet_until`) rather than be asked
for what only one instance knows yet.

Names and ids carry the organization's tag (`zqNNxq`, `soak.client.tag`: six characters
that random tokens in answers, a state or a code challenge, all but never hold), so an
answer that carries anything of another organization's is seen at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from soak.client import tag

ROLES = ("admin", "admin", "editor", "editor", "viewer", "viewer")
# Client indexes (0-based) each non-admin is assigned at set-up.
ASSIGNED: dict[str, tuple[int, ...]] = {
    "editor1": (0, 1, 2),
    "editor2": (2, 3),
    "viewer1": (0, 3),
    "viewer2": (1, 4),
}


@dataclass
class Member:
    user_id: str
    role: str
    ip: str
    token: str = ""
    clients: set[str] = field(default_factory=set)
    quiet_until: float = 0.0

    def sees(self, client_id: str) -> bool:
        return self.role == "admin" or client_id in self.clients

    @property
    def can_connect(self) -> bool:
        return self.role in ("admin", "editor")


@dataclass
class Client:
    id: str
    name: str
    connection: str = ""  # the active connection, if any
    past: list[str] = field(default_factory=list)  # disconnected ones
    dataset_ready: bool = False
    sync_now_at: float = 0.0


@dataclass
class Org:
    index: int
    members: dict[str, Member] = field(default_factory=dict)
    clients: list[Client] = field(default_factory=list)
    temps: int = 0
    ips: int = 0

    @property
    def tag(self) -> str:
        return tag(self.index)

    @property
    def id(self) -> str:
        return f"org_{self.tag}"

    def user_id(self, name: str) -> str:
        return f"user_{self.tag}_{name}"

    def new_ip(self) -> str:
        self.ips += 1
        return f"10.{self.index}.{self.ips // 250}.{self.ips % 250 + 1}"

    def client_name(self, number: int) -> str:
        return f"Client {self.tag}-{number}"

    def public(self) -> dict[str, Any]:
        """What other organizations' attackers may aim at."""
        return {
            "index": self.index,
            "id": self.id,
            "clients": [c.id for c in self.clients],
            "connections": [c.connection for c in self.clients if c.connection],
            "users": sorted(self.members),
        }


def membership_id(org_id: str, user_id: str) -> str:
    """The same membership id for a user and organization, as Clerk keeps it."""
    return "orgmem_" + hashlib.sha256(f"{org_id}/{user_id}".encode()).hexdigest()[:24]
