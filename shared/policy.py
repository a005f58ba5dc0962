"""The one authorization check every function makes before acting on a client.

    action       admin   editor   viewer
    read         yes     assigned assigned
    connect      yes     assigned -
    disconnect   yes     assigned -
    sync         yes     assigned -
    manage       yes     -        -

"manage" covers admin-only work: provisioning, erasure, export, audit export.
An admin reaches every client of its own organization. A client that is not
the caller's (another organization, unassigned, or absent) is answered with
NotFound, never Forbidden, so a caller cannot learn that it exists; Forbidden
is kept for a client the caller can see but may not act on this way.

The same rule holds a second time in Postgres RLS (`0001_tenancy.sql`), so a
handler that forgot this check still could not read or write another tenant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from shared import errors
from shared.principal import Principal

if TYPE_CHECKING:
    from shared.tenancy import TenantTransaction

Action = Literal["read", "connect", "disconnect", "sync", "manage"]

ACTIONS: tuple[Action, ...] = ("read", "connect", "disconnect", "sync", "manage")

_ALLOWED: dict[str, frozenset[str]] = {
    "admin": frozenset(ACTIONS),
    "editor": frozenset({"read", "connect", "disconnect", "sync"}),
    "viewer": frozenset({"read"}),
}

_NOT_FOUND = "No such client."


def allowed(role: str, action: str) -> bool:
    """Whether `role` may perform `action` at all (on a client it can reach)."""
    return action in _ALLOWED.get(role, frozenset())


def require(principal: Principal, action: Action, client_id: str) -> None:
    """Allow `action` on `client_id`, or raise NotFound / Forbidden.

    The caller must already know that the client belongs to `principal.org_id`
    (`access_client` resolves that); this function decides on role and
    assignment only.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if principal.role != "admin" and _canonical(client_id) not in principal.client_ids:
        raise errors.NotFound(_NOT_FOUND)
    if not allowed(principal.role, action):
        raise errors.Forbidden("Your role does not allow this action.")


def require_manage(principal: Principal) -> None:
    """Allow organization-wide "manage" work (no client involved: the audit
    export), or raise Forbidden. The caller is a member of the organization, so
    saying no leaks nothing."""
    if not allowed(principal.role, "manage"):
        raise errors.Forbidden("Your role does not allow this action.")


@dataclass(frozen=True)
class Client:
    """A client the caller was allowed to act on: resolved once, then used."""

    id: str  # canonical uuid form
    org_id: str
    name: str


def access_client(
    tx: TenantTransaction, principal: Principal, action: Action, client_id: str | uuid.UUID
) -> Client:
    """The client, resolved under RLS in the caller's transaction, after `require(...)`.

    The lookup sees only what the caller's claims allow. A malformed id, a
    client of another organization and a missing client all raise the same
    NotFound.
    """
    canonical = _canonical(str(client_id))
    if not canonical:
        raise errors.NotFound(_NOT_FOUND)
    row = tx.execute("select org_id, name from clients where id = %s", (canonical,)).fetchone()
    if row is None:
        raise errors.NotFound(_NOT_FOUND)
    require_found(principal, action, canonical, row[0])
    return Client(canonical, row[0], row[1])


@dataclass(frozen=True)
class Connection:
    """A connection the caller was allowed to act on, with its checked client."""

    id: str
    client: Client
    platform: str
    status: str


def access_connection(
    tx: TenantTransaction, principal: Principal, action: Action, connection_id: str
) -> Connection:
    """The connection and its client, resolved under RLS, after `require(...)` on
    the client. Missing, malformed and not-yours are the same NotFound."""
    canonical = _canonical(connection_id)
    row = (
        tx.execute(
            "select client_id::text, platform, status from connections where id = %s",
            (canonical,),
        ).fetchone()
        if canonical
        else None
    )
    if row is None:
        raise errors.NotFound("No such connection.")
    client = access_client(tx, principal, action, row[0])
    return Connection(canonical, client, row[1], row[2])


def require_found(principal: Principal, action: Action, client_id: str, org_id: str | None) -> None:
    """`access_client` for a caller that read the client's organization itself,
    under RLS, in a query of its own (`org_id` None: no such row visible)."""
    if org_id is None or org_id != principal.org_id:
        raise errors.NotFound(_NOT_FOUND)
    require(principal, action, client_id)


def _canonical(client_id: str) -> str:
    """The lower-case hyphenated uuid form our rows use, or '' if not a uuid."""
    try:
        return str(uuid.UUID(client_id))
    except (ValueError, TypeError, AttributeError):
        return ""
