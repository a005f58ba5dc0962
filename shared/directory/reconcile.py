"""The daily reconcile: Clerk's Backend API against our rows, for missed webhooks.

Reads every organization and each one's memberships from Clerk
(`shared.clerk_api`), and applies what differs through the same functions as
the webhook (`shared.directory.store`), so ordering by `updated_at`,
tombstones, the role map and the data-location rule hold the same way; only
real differences are audited (actor `clerk`, `via=reconcile`).

Removals are made with care, because a list read page by page can miss an
item that moved while it was read:
- a member we hold that Clerk did not list is asked for once more by user id,
  and removed only if Clerk still has no such membership; its removal carries
  the time the organization's list was read, so a membership added since
  (newer) is never removed;
- an organization we hold that Clerk did not list is asked for by id, and
  deleted (suspended, its clients erased) only if Clerk answers 404. If that
  would remove every organization, or more than half of ours, nothing is
  removed unless `allow_mass_removal` is given: a key of another Clerk
  instance must not erase our clients.

Then the clients of every deleted organization still holding some are erased,
and seen `svix-id`s past their retention are pruned. `dry_run` runs the same
code and rolls every transaction back. The run stops starting organizations
once `reconcile_budget_s` has passed (`stopped: budget`); the next run starts
over and converges.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared import clerk_api, errors
from shared.directory import erasure, events, store

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("cosma.directory")


@dataclass
class Summary:
    organizations: int = 0  # listed by Clerk
    memberships: int = 0
    created: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    erased_clients: int = 0
    clients_left: int = 0
    refused: list[str] = field(default_factory=list)
    stopped: str = "done"
    dry_run: bool = False

    def count(self, change: store.Change) -> None:
        if change.status in ("created", "updated", "removed"):
            setattr(self, change.status, getattr(self, change.status) + 1)
        else:
            self.unchanged += 1

    def public(self) -> dict[str, Any]:
        return {
            "organizations": self.organizations,
            "memberships": self.memberships,
            "created": self.created,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "erased_clients": self.erased_clients,
            "clients_left": self.clients_left,
            "refused": list(self.refused),
            "stopped": self.stopped,
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class OrgProgress:
    org_id: str
    members: int
    created: int
    updated: int
    removed: int


def backend(runtime: Runtime) -> clerk_api.ClerkBackend:
    settings = runtime.settings
    return clerk_api.ClerkBackend(
        settings.clerk_api_url,
        runtime.secrets.get(clerk_api.SECRET_NAME),
        timeout_s=settings.clerk_api_timeout_s,
    )


def run(
    runtime: Runtime,
    *,
    request_id: str,
    dry_run: bool = False,
    allow_mass_removal: bool = False,
    on_progress: Callable[[OrgProgress], None] | None = None,
) -> Summary:
    """`reconcile` with Clerk's Backend API as configured (`clerk_api_url`, the
    `clerk-secret-key` secret)."""
    clerk = backend(runtime)
    try:
        return reconcile(
            runtime,
            clerk,
            request_id=request_id,
            dry_run=dry_run,
            allow_mass_removal=allow_mass_removal,
            on_progress=on_progress,
        )
    finally:
        clerk.close()


def _our_organizations(runtime: Runtime) -> dict[str, bool]:
    """Our organization ids => suspended (the one cross-organization read we make)."""
    with runtime.directory_db.transaction({"sub": store.ACTOR}) as conn:
        rows = conn.execute("select id, suspended from app.directory_organizations()").fetchall()
    return {row[0]: bool(row[1]) for row in rows}


def reconcile(
    runtime: Runtime,
    clerk: clerk_api.ClerkBackend,
    *,
    request_id: str,
    dry_run: bool = False,
    allow_mass_removal: bool = False,
    on_progress: Callable[[OrgProgress], None] | None = None,
) -> Summary:
    summary = Summary(dry_run=dry_run)
    started = runtime.clock()
    deadline = started + runtime.settings.reconcile_budget_s
    ours = _our_organizations(runtime)
    listed = [events.organization(raw) for raw in clerk.organizations()]
    summary.organizations = len(listed)
    for org in listed:
        if runtime.clock() >= deadline:
            summary.stopped = "budget"
            break
        progress = _organization(runtime, clerk, org, ours, summary, request_id, dry_run)
        if on_progress is not None:
            on_progress(progress)
    if summary.stopped == "done":
        _removed_organizations(
            runtime,
            clerk,
            ours,
            {org.id for org in listed},
            int(started * 1000),
            summary,
            request_id,
            dry_run,
            allow_mass_removal,
        )
    if not dry_run:
        for org_id, suspended in _our_organizations(runtime).items():
            if suspended:
                done = erasure.erase_clients(
                    runtime, org_id, deadline=deadline, request_id=request_id, via="reconcile"
                )
                summary.erased_clients += done.clients
                summary.clients_left += done.left
        store.prune_deliveries(runtime)
    return summary


def _organization(
    runtime: Runtime,
    clerk: clerk_api.ClerkBackend,
    org: events.Organization,
    ours: dict[str, bool],
    summary: Summary,
    request_id: str,
    dry_run: bool,
) -> OrgProgress:
    """One Clerk organization and its memberships, in one transaction."""
    listed_ms = int(runtime.clock() * 1000)
    memberships = [events.membership(raw) for raw in clerk.memberships(org.id)]
    summary.memberships += len(memberships)
    before = (summary.created, summary.updated, summary.removed)
    missing: list[str] = []

    def work(tx: store.DirectoryTransaction) -> None:
        action = "updated" if org.id in ours else "created"
        summary.count(store.apply_organization(tx, org, f"clerk.organization.{action}"))
        tx.act_for(org.id)
        held = {
            r[0]
            for r in tx.execute(
                "select user_id from members where org_id = %s", (org.id,)
            ).fetchall()
        }
        for membership in memberships:
            action = "updated" if membership.user_id in held else "created"
            summary.count(
                store.apply_membership(tx, membership, f"clerk.organizationMembership.{action}")
            )
        listed_users = {m.user_id for m in memberships}
        missing.extend(sorted(held - listed_users))

    _run(runtime, request_id, dry_run, work)
    if missing:
        # Asked again by id: a list read page by page can skip an item that moved.
        still = {m.user_id for m in map(events.membership, clerk.memberships(org.id, missing))}
        gone = [user for user in missing if user not in still]

        def remove(tx: store.DirectoryTransaction) -> None:
            for user in gone:
                summary.count(
                    store.delete_membership(
                        tx, org.id, user, listed_ms, "clerk.organizationMembership.deleted"
                    )
                )

        if gone:
            _run(runtime, request_id, dry_run, remove)
    created, updated, removed = (
        summary.created - before[0],
        summary.updated - before[1],
        summary.removed - before[2],
    )
    return OrgProgress(org.id, len(memberships), created, updated, removed)


def _removed_organizations(
    runtime: Runtime,
    clerk: clerk_api.ClerkBackend,
    ours: dict[str, bool],
    listed: set[str],
    started_ms: int,
    summary: Summary,
    request_id: str,
    dry_run: bool,
    allow_mass_removal: bool,
) -> None:
    candidates = sorted(org_id for org_id, suspended in ours.items() if not suspended)
    gone = [org_id for org_id in candidates if org_id not in listed]
    gone = [org_id for org_id in gone if clerk.organization(org_id) is None]
    if not gone:
        return
    if not allow_mass_removal and (not listed or 2 * len(gone) > len(candidates)):
        reason = (
            f"{len(gone)} of our {len(candidates)} organization(s) are not in Clerk:"
            " not removed (a key of another instance?); rerun with allow_mass_removal"
        )
        log.warning("reconcile refused a mass removal", extra={"fields": {"count": len(gone)}})
        summary.refused.append(reason)
        return

    def remove(tx: store.DirectoryTransaction) -> None:
        for org_id in gone:
            summary.count(
                store.delete_organization(tx, org_id, started_ms, "clerk.organization.deleted")
            )

    _run(runtime, request_id, dry_run, remove)


def _run(
    runtime: Runtime,
    request_id: str,
    dry_run: bool,
    work: Callable[[store.DirectoryTransaction], None],
) -> None:
    try:
        with store.transaction(
            runtime, request_id=request_id, via="reconcile", audit_unchanged=False
        ) as tx:
            work(tx)
            if dry_run:
                raise errors.DryRunRollback
    except errors.DryRunRollback:
        pass


def verify_scheduler(authorization: str, runtime: Runtime) -> str:
    """The reconcile trigger's token: Cloud Scheduler's OIDC token, as for sync."""
    from shared.sync import trigger

    settings = runtime.settings
    return trigger.verify(
        authorization,
        settings,
        audience=settings.reconcile_audience,
        expected_email=settings.reconcile_scheduler_sa_email,
    )
