"""A deleted Clerk organization's clients, erased through the path of DELETE /clients/{id}.

`organization.deleted` suspends the organization in the event's transaction
(members removed, tokens deleted); its clients are then erased here one per
transaction, each with `shared.provisioning.erase` (datasets dropped with
their rows, tokens deleted, the client row and everything that cascades from
it) and its own audit record (action `clients.erase`, actor `clerk`), as an
admin's `DELETE /clients/{id}` would leave. A webhook erases for at most
`directory_erase_budget_s`; whatever is left (a timeout, a warehouse outage)
is erased by the next reconcile, which looks at every suspended organization.
A fault halfway loses nothing: each client is erased whole or not at all, and
erasing is idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared import errors
from shared.directory import store

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("cosma.directory")


@dataclass(frozen=True)
class Erased:
    org_id: str
    clients: int
    left: int


def erase_clients(
    runtime: Runtime, org_id: str, *, deadline: float, request_id: str, via: str
) -> Erased:
    """Erase the suspended organization's clients until none is left or `deadline`
    (on `runtime.clock`) has passed."""
    erased = retries = 0
    while True:
        try:
            left = _erase_one(runtime, org_id, deadline=deadline, request_id=request_id, via=via)
        except errors.NotFound:
            # Erased meanwhile by another run (this transaction rolled back): the
            # next pass no longer sees it. A client that keeps vanishing is a bug.
            retries += 1
            if retries > 3:
                raise
            continue
        if left is not None:
            if left:
                log.warning(
                    "erasure of a deleted organization left for later",
                    extra={"fields": {"org_id": org_id, "clients_left": left}},
                )
            return Erased(org_id, erased, left)
        erased += 1


def _erase_one(
    runtime: Runtime, org_id: str, *, deadline: float, request_id: str, via: str
) -> int | None:
    """Erase one client of the suspended organization: None when one was erased, else
    how many are left (0: done, or the organization is not suspended)."""
    from shared import provisioning

    with store.transaction(runtime, request_id=request_id, via=via) as tx:
        tx.act_for(org_id)
        suspended = tx.execute(
            "select 1 from organizations where id = %s and suspended_at is not null", (org_id,)
        ).fetchone()
        if suspended is None:
            return 0  # only a deleted organization's clients are erased here
        rows = tx.execute(
            "select id::text from clients where org_id = %s order by created_at, id", (org_id,)
        ).fetchall()
        if not rows or runtime.clock() >= deadline:
            return len(rows)
        client_id = rows[0][0]
        erasure = provisioning.erase(runtime, tx, client_id)
        tx.audit(
            org_id,
            "clients.erase",
            f"/clients/{client_id}",
            detail=f"{erasure.detail()} cause=organization.deleted",
        )
    return None
