"""Clerk's directory applied to our rows, as the directory role (`cosma_directory`).

The webhook and the reconcile both apply Clerk's objects through this module,
one `DirectoryTransaction` at a time. The transaction starts with the claims of
no organization (`sub` = "clerk") and takes the claims of each organization it
touches (`act_for`), so RLS admits that organization's rows only.

Ordering (Svix neither orders nor deduplicates):
- every object's newest applied version is kept in `directory_objects`:
  Clerk's `updated_at` for a created or updated object, the event's time for
  a deletion; an event no newer than that is stale and changes nothing;
- a deletion leaves a tombstone: a deleted organization or user is never
  brought back, a removed membership only by a newer one (the user was added
  again);
- the objects an event touches are locked (transaction-scoped advisory locks,
  organization, then user, then membership), so concurrent deliveries about
  one object apply one after the other.

Roles: Clerk's role goes through the configured map (`settings.clerk_role_map`);
a role outside it gives no access (no member row) and is logged and audited.
Data location: `public_metadata.data_location` (US or EU) when an organization
is created, the configured default when it is absent; once the organization
has a dataset, a change of location is refused and audited (data never moves).

Each applied event writes one audit record (actor `clerk`, the event type, the
object ids; never a name or an e-mail address) in the organization it changed,
inside the transaction that changed it. The reconcile records only what
differed. A user deletion writes one record in each organization the user left
(the trail is per organization).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared import audit as audit_log
from shared.directory import events
from shared.settings import clerk_role_key

if TYPE_CHECKING:
    import psycopg

    from shared.runtime import Runtime

log = logging.getLogger("cosma.directory")

ACTOR = "clerk"
LOCATIONS = ("US", "EU")


@dataclass(frozen=True)
class Change:
    """What applying one Clerk object did to our rows."""

    status: str  # created | updated | removed | unchanged | stale
    org_id: str = ""
    # Memberships this instance must forget from its cache (user ids of org_id).
    users: tuple[str, ...] = ()
    # A suspended organization whose clients are still to be erased.
    erase: bool = False


@dataclass(frozen=True)
class _State:
    version: int
    deleted: bool


@dataclass
class DirectoryTransaction:
    conn: psycopg.Connection[Any]
    role_map: dict[str, str]
    default_location: str
    request_id: str
    via: str  # "webhook" | "reconcile"
    # The webhook audits every applied event; the reconcile only real differences.
    audit_unchanged: bool = True
    org_id: str = field(default="", init=False)

    def execute(self, query: Any, params: Any = None) -> psycopg.Cursor[Any]:
        return self.conn.execute(query, params)

    def act_for(self, org_id: str) -> None:
        """The claims of `org_id` for the statements that follow (RLS admits its rows)."""
        if org_id != self.org_id:
            claims = json.dumps({"sub": ACTOR, "o": {"id": org_id}}, separators=(",", ":"))
            self.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
            self.org_id = org_id

    def first_delivery(self, svix_id: str) -> bool:
        """Record `svix_id`; False if it was seen (a replay). Concurrent deliveries of one
        id wait on each other here, and the second finds the first's row."""
        row = self.execute(
            "insert into directory_deliveries (svix_id) values (%s)"
            " on conflict (svix_id) do nothing returning svix_id",
            (svix_id,),
        ).fetchone()
        return row is not None

    def audit(
        self, org_id: str, action: str, resource: str, *, outcome: str = "ok", detail: str = ""
    ) -> None:
        self.act_for(org_id)
        audit_log.record(
            self.conn,
            org_id=org_id,
            actor=ACTOR,
            action=action,
            resource=resource,
            outcome=outcome,
            detail=f"{detail} via={self.via}".strip(),
            request_id=self.request_id,
        )


@contextmanager
def transaction(
    runtime: Runtime, *, request_id: str, via: str, audit_unchanged: bool = True
) -> Iterator[DirectoryTransaction]:
    settings = runtime.settings
    with runtime.directory_db.transaction({"sub": ACTOR}) as conn:
        yield DirectoryTransaction(
            conn,
            dict(settings.clerk_role_map),
            settings.default_data_location,
            request_id[:200],
            via,
            audit_unchanged,
        )


# ---------------------------------------------------------------- state


def _lock(tx: DirectoryTransaction, kind: str, key: str) -> None:
    tx.execute(
        "select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"cosma.directory:{kind}:{key}",)
    )


def _state(tx: DirectoryTransaction, kind: str, key: str) -> _State | None:
    row = tx.execute(
        "select version, deleted from directory_objects where kind = %s and key = %s", (kind, key)
    ).fetchone()
    return _State(int(row[0]), bool(row[1])) if row else None


def _record(
    tx: DirectoryTransaction, kind: str, key: str, org_id: str | None, version: int, deleted: bool
) -> None:
    tx.execute(
        "insert into directory_objects (kind, key, org_id, version, deleted)"
        " values (%s, %s, %s, %s, %s)"
        " on conflict (kind, key) do update set version = excluded.version,"
        " deleted = excluded.deleted, recorded_at = now()",
        (kind, key, org_id, version, deleted),
    )


def membership_key(org_id: str, user_id: str) -> str:
    return f"{org_id}/{user_id}"


def _location(claim: str | None, current: str | None, default: str) -> tuple[str, str]:
    """The location `claim` asks for, and the problem with it ("" if none). An absent
    claim keeps the current location (a new organization gets the default)."""
    if claim is None:
        return current or default, ""
    wanted = claim.strip().upper()
    if wanted not in LOCATIONS:
        return current or default, "data_location is not US or EU"
    return wanted, ""


def _has_datasets(tx: DirectoryTransaction, org_id: str) -> bool:
    row = tx.execute(
        "select exists (select 1 from datasets where org_id = %s)", (org_id,)
    ).fetchone()
    return bool(row and row[0])


# ---------------------------------------------------------------- organizations


def apply_organization(tx: DirectoryTransaction, org: events.Organization, action: str) -> Change:
    """`organization.created` / `updated`: create or update the organization row."""
    tx.act_for(org.id)
    _lock(tx, "organization", org.id)
    state = _state(tx, "organization", org.id)
    if state is not None and (state.deleted or state.version >= org.version):
        return Change("stale", org.id)
    status, outcome, detail = _write_organization(tx, org)
    _record(tx, "organization", org.id, org.id, org.version, False)
    if status != "unchanged" or outcome != "ok" or tx.audit_unchanged:
        tx.audit(org.id, action, f"/organizations/{org.id}", outcome=outcome, detail=detail)
    return Change(status, org.id)


def _write_organization(tx: DirectoryTransaction, org: events.Organization) -> tuple[str, str, str]:
    row = tx.execute("select name, location from organizations where id = %s", (org.id,)).fetchone()
    if row is None:
        location, problem = _location(org.data_location, None, tx.default_location)
        tx.execute(
            "insert into organizations (id, name, location) values (%s, %s, %s)",
            (org.id, org.name, location),
        )
        if problem:
            log.warning("organization created in the default location: %s", problem)
            return "created", "rejected", f"created location={location}: {problem}"
        return "created", "ok", f"created location={location}"
    name, current = row
    location, problem = _location(org.data_location, current, tx.default_location)
    notes: list[str] = []
    outcome = "ok"
    if problem:
        notes.append(f"location={current} kept: {problem}")
        outcome = "rejected"
    elif location != current:
        if _has_datasets(tx, org.id):
            # Data never moves silently: the datasets stay where they are, and so
            # does the organization, until someone decides what to do with them.
            log.warning("organization location change refused: datasets exist")
            notes.append(f"location {current}->{location} refused: datasets exist")
            location, outcome = current, "rejected"
        else:
            notes.append(f"location {current}->{location}")
    if name != org.name:
        notes.append("name changed")
    if location == current and name == org.name:
        return "unchanged", outcome, "; ".join(notes) or "no change"
    tx.execute(
        "update organizations set name = %s, location = %s where id = %s",
        (org.name, location, org.id),
    )
    return "updated", outcome, "; ".join(notes)


def delete_organization(tx: DirectoryTransaction, org_id: str, version: int, action: str) -> Change:
    """`organization.deleted`: suspended at once (members removed: every request is
    refused; sync leases nothing of a suspended organization), its clients left to
    `shared.directory.erasure` (the same path as DELETE /clients/{id}), which
    revokes their grants before it deletes the tokens."""
    tx.act_for(org_id)
    _lock(tx, "organization", org_id)
    state = _state(tx, "organization", org_id)
    if state is not None and state.deleted:
        return Change("stale", org_id)
    _record(tx, "organization", org_id, org_id, version, True)
    suspended = tx.execute(
        "update organizations set suspended_at = now() where id = %s and suspended_at is null"
        " returning id",
        (org_id,),
    ).fetchone()
    users = tuple(
        r[0]
        for r in tx.execute(
            "delete from members where org_id = %s returning user_id", (org_id,)
        ).fetchall()
    )
    row = tx.execute("select count(*) from clients where org_id = %s", (org_id,)).fetchone()
    clients = int(row[0]) if row else 0
    held = "suspended" if suspended else "nothing held"
    tx.audit(
        org_id,
        action,
        f"/organizations/{org_id}",
        detail=(f"{held}: members={len(users)} clients_to_erase={clients}"),
    )
    return Change("removed", org_id, users=users, erase=clients > 0)


# ---------------------------------------------------------------- memberships


def apply_membership(tx: DirectoryTransaction, m: events.Membership, action: str) -> Change:
    """`organizationMembership.created` / `updated`: the member row, with the mapped role."""
    org, user_id = m.organization, m.user_id
    key = membership_key(org.id, user_id)
    tx.act_for(org.id)
    _lock(tx, "organization", org.id)
    _lock(tx, "user", user_id)
    _lock(tx, "membership", key)
    org_state = _state(tx, "organization", org.id)
    user_state = _state(tx, "user", user_id)
    state = _state(tx, "membership", key)
    if (
        (org_state is not None and org_state.deleted)
        or (user_state is not None and user_state.deleted)
        or (state is not None and state.version >= m.version)
    ):
        return Change("stale", org.id)
    notes = [f"membership={m.id}"]
    exists = tx.execute("select 1 from organizations where id = %s", (org.id,)).fetchone()
    if exists is None:
        # The membership can arrive before its organization: it carries the
        # organization, which is created from it (never updated from it).
        _, _, org_detail = _write_organization(tx, org)
        if org_state is None:
            _record(tx, "organization", org.id, org.id, org.version, False)
        notes.append(f"organization {org_detail}")
    ours = tx.role_map.get(clerk_role_key(m.role))
    current = tx.execute(
        "select role from members where org_id = %s and user_id = %s", (org.id, user_id)
    ).fetchone()
    outcome = "ok"
    if ours is None:
        outcome = "denied"
        notes.append(f"role={m.role} unmapped: no access")
        log.warning(
            "unmapped Clerk role: no access",
            extra={"fields": {"org_id": org.id, "user_id": user_id, "clerk_role": m.role}},
        )
        status = "unchanged"
        if current is not None:
            tx.execute("delete from members where org_id = %s and user_id = %s", (org.id, user_id))
            status = "removed"
            notes.append(f"was={current[0]}")
    elif current is None:
        tx.execute(
            "insert into members (org_id, user_id, role) values (%s, %s, %s)",
            (org.id, user_id, ours),
        )
        status = "created"
        notes.append(f"role={m.role}->{ours}")
    elif current[0] != ours:
        tx.execute(
            "update members set role = %s where org_id = %s and user_id = %s",
            (ours, org.id, user_id),
        )
        status = "updated"
        notes.append(f"role={m.role}->{ours} was={current[0]}")
    else:
        status = "unchanged"
        notes.append(f"role={m.role}->{ours} no change")
    _record(tx, "membership", key, org.id, m.version, False)
    if status != "unchanged" or outcome != "ok" or tx.audit_unchanged:
        tx.audit(
            org.id,
            action,
            f"/organizations/{org.id}/members/{user_id}",
            outcome=outcome,
            detail=" ".join(notes),
        )
    return Change(status, org.id, users=(user_id,))


def delete_membership(
    tx: DirectoryTransaction,
    org_id: str,
    user_id: str,
    version: int,
    action: str,
    membership_id: str = "",
) -> Change:
    """`organizationMembership.deleted`: the member row goes, with its assignments."""
    key = membership_key(org_id, user_id)
    tx.act_for(org_id)
    _lock(tx, "organization", org_id)
    _lock(tx, "user", user_id)
    _lock(tx, "membership", key)
    state = _state(tx, "membership", key)
    if state is not None and (state.deleted or state.version >= version):
        return Change("stale", org_id)
    row = tx.execute(
        "delete from members where org_id = %s and user_id = %s returning role", (org_id, user_id)
    ).fetchone()
    _record(tx, "membership", key, org_id, version, True)
    notes = [f"membership={membership_id}"] if membership_id else []
    notes.append(f"removed was={row[0]}" if row else "no member row held")
    tx.audit(org_id, action, f"/organizations/{org_id}/members/{user_id}", detail=" ".join(notes))
    return Change("removed" if row else "unchanged", org_id, users=(user_id,))


# ---------------------------------------------------------------- users


def delete_user(tx: DirectoryTransaction, user_id: str, version: int, action: str) -> list[Change]:
    """`user.deleted`: the user leaves every organization, with their assignments."""
    _lock(tx, "user", user_id)
    state = _state(tx, "user", user_id)
    if state is not None and state.deleted:
        return [Change("stale")]
    _record(tx, "user", user_id, None, version, True)
    orgs = [
        r[0]
        for r in tx.execute(
            "select org_id from app.directory_user_organizations(%s) as org_id", (user_id,)
        ).fetchall()
    ]
    if not orgs:
        log.info("deleted user held no membership")
        return [Change("unchanged")]
    changes = []
    for org_id in orgs:
        tx.act_for(org_id)
        key = membership_key(org_id, user_id)
        _lock(tx, "membership", key)
        row = tx.execute(
            "delete from members where org_id = %s and user_id = %s returning role",
            (org_id, user_id),
        ).fetchone()
        _record(tx, "membership", key, org_id, version, True)
        tx.audit(
            org_id,
            action,
            f"/organizations/{org_id}/members/{user_id}",
            detail=f"user deleted: removed was={row[0]}" if row else "user deleted",
        )
        changes.append(Change("removed", org_id, users=(user_id,)))
    return changes


# ---------------------------------------------------------------- events


def apply(tx: DirectoryTransaction, event: events.Event) -> list[Change]:
    """One webhook event (a handled type) through the functions above."""
    action = f"clerk.{event.type}"
    data = event.data
    if isinstance(data, events.Organization):
        return [apply_organization(tx, data, action)]
    if isinstance(data, events.Membership):
        if event.type == "organizationMembership.deleted":
            version = max(data.version, event.timestamp)
            return [
                delete_membership(
                    tx, data.organization.id, data.user_id, version, action, membership_id=data.id
                )
            ]
        return [apply_membership(tx, data, action)]
    if isinstance(data, events.Deleted):
        if event.type == "organization.deleted":
            return [delete_organization(tx, data.id, event.timestamp, action)]
        return delete_user(tx, data.id, event.timestamp, action)
    return []


def prune_deliveries(runtime: Runtime) -> int:
    """Forget seen `svix-id`s older than the retention."""
    with runtime.directory_db.transaction({"sub": ACTOR}) as conn:
        return conn.execute(
            "delete from directory_deliveries"
            " where received_at < now() - make_interval(days => %s)",
            (runtime.settings.directory_delivery_retention_days,),
        ).rowcount
