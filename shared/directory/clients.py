"""Clients and client assignments, managed by an organization's admins through our API.

    create_client       POST   /clients                                 admin
    list_clients        GET    /clients            admins all, others their assigned ones
    get_client          GET    /clients/{id}                            anyone who sees it
    rename_client       PATCH  /clients/{id}                            admin
    list_members        GET    /members                                 admin
    list_assignments    GET    /clients/{id}/assignments                admin
    get_assignment      GET    /clients/{id}/assignments/{user_id}      admin
    assign / unassign   PUT / DELETE /clients/{id}/assignments/{user_id}  admin, idempotent

Everything runs in the caller's transaction (`shared.tenancy.tenant`), so RLS
holds the same rules a second time, and writes the request's one audit record
with its work. A client is resolved with `policy.access_client` (not the
caller's: 404); organization-wide work checks `require_manage` (403: the
caller is a member, so saying no leaks nothing). Client names are unique per
organization, case-insensitively (409).

Roles are not set here: they come from Clerk (`shared.directory.store`). Only
user ids and roles are shown, never a name or an e-mail address: Clerk holds
those. An assignment change drops this instance's cached membership of the
user at once; other instances follow within the cache's bound (30 s,
`shared.authn`), and Postgres (RLS) follows at once.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.policy import access_client, require_manage
from shared.tenancy import TenantTransaction, tenant

if TYPE_CHECKING:
    from shared.audit import RequestAudit
    from shared.principal import Principal
    from shared.runtime import Runtime

_USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NO_MEMBER = "No such member."
# A client with its connections' platforms and status, never token material.
_CLIENTS = (
    "select c.id::text, c.name, c.created_at,"
    " coalesce(json_agg(json_build_object('id', k.id, 'platform', k.platform,"
    " 'status', k.status) order by k.created_at, k.id) filter (where k.id is not null), '[]')"
    " from clients c left join connections k on k.client_id = c.id"
)


@dataclass(frozen=True)
class ClientView:
    id: str
    name: str
    created_at: dt.datetime
    connections: list[dict[str, Any]]

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "connections": self.connections,
        }


def _view(row: Any) -> ClientView:
    return ClientView(row[0], row[1], row[2], list(row[3]))


def _clients(
    tx: TenantTransaction, where: str = "", params: tuple[Any, ...] = ()
) -> list[ClientView]:
    rows = tx.execute(
        f"{_CLIENTS} {where} group by c.id order by lower(c.name), c.id",
        params,
    ).fetchall()
    return [_view(row) for row in rows]


def _name_taken(tx: TenantTransaction, org_id: str, name: str, but: str | None = None) -> None:
    row = tx.execute(
        "select 1 from clients where org_id = %s and lower(name) = lower(%s)"
        " and (%s::uuid is null or id <> %s::uuid)",
        (org_id, name, but, but),
    ).fetchone()
    if row is not None:
        raise errors.Conflict("A client with this name exists.")


# ---------------------------------------------------------------- clients


def create_client(
    runtime: Runtime, principal: Principal, audit: RequestAudit, name: str
) -> ClientView:
    require_manage(principal)
    with tenant(runtime.db, principal) as tx:
        # Checked first for a clear answer; the unique index decides a race (409 too).
        _name_taken(tx, principal.org_id, name)
        row = tx.execute(
            "insert into clients (org_id, name) values (%s, %s) returning id::text",
            (principal.org_id, name),
        ).fetchone()
        if row is None:  # an insert ... returning always gives a row
            raise errors.CosmaError()
        (created,) = _clients(tx, "where c.id = %s", (row[0],))
        audit.record(tx, resource=f"/clients/{created.id}", detail="created")
    return created


def list_clients(runtime: Runtime, principal: Principal, audit: RequestAudit) -> list[ClientView]:
    """The clients the caller may see: RLS decides (admins all, others assigned ones).
    One round trip: the read and the request's record (with the count answered,
    from the same snapshot) in one statement."""
    rows = audit.read_recorded(
        principal,
        _CLIENTS + " where c.org_id = {} group by c.id order by lower(c.name), c.id",
        (principal.org_id,),
        resource="/clients",
        detail="'clients=' || (select count(*) from public.clients where org_id = {})",
        detail_values=(principal.org_id,),
    )
    return [_view(row) for row in rows]


def get_client(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str
) -> ClientView:
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "read", client_id)
        (found,) = _clients(tx, "where c.id = %s", (client.id,))
        audit.record(tx, resource=f"/clients/{client.id}")
    return found


def rename_client(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str, name: str
) -> ClientView:
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "manage", client_id)
        _name_taken(tx, principal.org_id, name, but=client.id)
        tx.execute("update clients set name = %s where id = %s", (name, client.id))
        (found,) = _clients(tx, "where c.id = %s", (client.id,))
        audit.record(tx, resource=f"/clients/{client.id}", detail="renamed")
    return found


# ---------------------------------------------------------------- members


def list_members(
    runtime: Runtime, principal: Principal, audit: RequestAudit
) -> list[dict[str, Any]]:
    """User id, role and assigned client ids of every member (no names, no e-mails)."""
    require_manage(principal)
    with tenant(runtime.db, principal) as tx:
        rows = tx.execute(
            "select m.user_id, m.role, coalesce(array_agg(a.client_id::text order by"
            " a.client_id) filter (where a.client_id is not null), '{}')"
            " from members m left join client_assignments a"
            " on a.org_id = m.org_id and a.user_id = m.user_id"
            " where m.org_id = %s group by m.user_id, m.role order by m.user_id",
            (principal.org_id,),
        ).fetchall()
        audit.record(tx, resource="/members", detail=f"members={len(rows)}")
    return [{"user_id": u, "role": r, "client_ids": list(c)} for u, r, c in rows]


# ---------------------------------------------------------------- assignments


def _member_role(tx: TenantTransaction, principal: Principal, user_id: str) -> str:
    if not _USER_ID.match(user_id):
        raise errors.NotFound(_NO_MEMBER)
    row = tx.execute(
        "select role from members where org_id = %s and user_id = %s",
        (principal.org_id, user_id),
    ).fetchone()
    if row is None:
        raise errors.NotFound(_NO_MEMBER)
    return str(row[0])


def list_assignments(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str
) -> list[dict[str, str]]:
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "manage", client_id)
        rows = tx.execute(
            "select a.user_id, m.role from client_assignments a join members m"
            " on m.org_id = a.org_id and m.user_id = a.user_id"
            " where a.client_id = %s order by a.user_id",
            (client.id,),
        ).fetchall()
        audit.record(tx, resource=f"/clients/{client.id}/assignments")
    return [{"user_id": u, "role": r} for u, r in rows]


def get_assignment(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str, user_id: str
) -> dict[str, str]:
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "manage", client_id)
        role = _member_role(tx, principal, user_id)
        row = tx.execute(
            "select 1 from client_assignments where client_id = %s and user_id = %s",
            (client.id, user_id),
        ).fetchone()
        if row is None:
            raise errors.NotFound("No such assignment.")
        audit.record(tx, resource=f"/clients/{client.id}/assignments/{user_id}")
    return {"user_id": user_id, "role": role, "client_id": client.id}


def assign(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str, user_id: str
) -> None:
    """Give `user_id` the client (idempotent)."""
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "manage", client_id)
        _member_role(tx, principal, user_id)
        added = tx.execute(
            "insert into client_assignments (org_id, client_id, user_id) values (%s, %s, %s)"
            " on conflict do nothing",
            (principal.org_id, client.id, user_id),
        ).rowcount
        audit.record(
            tx,
            resource=f"/clients/{client.id}/assignments/{user_id}",
            detail="assigned" if added else "already assigned",
        )
    runtime.forget_membership(user_id, principal.org_id)


def unassign(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str, user_id: str
) -> None:
    """Take the client from `user_id` (idempotent)."""
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "manage", client_id)
        _member_role(tx, principal, user_id)
        removed = tx.execute(
            "delete from client_assignments where client_id = %s and user_id = %s",
            (client.id, user_id),
        ).rowcount
        audit.record(
            tx,
            resource=f"/clients/{client.id}/assignments/{user_id}",
            detail="unassigned" if removed else "was not assigned",
        )
    runtime.forget_membership(user_id, principal.org_id)
