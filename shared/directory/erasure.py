"""A deleted Clerk organization's clients, erased through the path of DELETE /clients/{id}.

`organization.deleted` suspends the organization in the event's transaction
(members removed, so every request is refused; sync leases none of its
connections); its clients are then erased here one at a time, each with
`shared.provisioning.erase` (grants revoked at their providers, datasets
dropped with their rows, tokens deleted, the client row and everything that
cascades from it) and its own audit record (action `clients.erase`, actor
`clerk`), as an admin's `DELETE /clients/{id}` would leave. A webhook erases for at most
`directory_erase_budget_s`; whatever is left (a timeout, a warehouse outage)
is erased by the next reconcile, which looks at every suspended organization.
A fault halfway loses nothing: each client is erased whole or not at all, and
erasing is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
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
        rows = tx.execute(_SUSPENDED_CLIENTS + " order by c.created_at, c.id", (org_id,)).fetchall()
        if not rows or runtime.clock() >= deadline:
            return len(rows)
    first = rows[0][0]

    @contextmanager
    def transaction() -> Iterator[store.DirectoryTransaction]:
        with store.transaction(runtime, request_id=request_id, via=via) as tx:
            tx.act_for(org_id)
            yield tx

    def resolve(tx: store.DirectoryTransaction, wanted: str) -> str:
        # Still a client of this organization, and the organization still deleted.
        row = tx.execute(_SUSPENDED_CLIENTS + " and c.id = %s", (org_id, wanted)).fetchone()
        if row is None:
            raise errors.NotFound("No such client.")
        return str(row[0])

    def record(tx: store.DirectoryTransaction, erasure: provisioning.Erasure) -> None:
        tx.audit(
            org_id,
            "clients.erase",
            f"/clients/{erasure.client_id}",
            detail=f"{erasure.detail()} cause=organization.deleted",
        )

    provisioning.erase(
        runtime, org_id, first, transaction=transaction, resolve=resolve, record=record
    )
    return None


# A suspended (deleted) organization's clients, oldest first.
_SUSPENDED_CLIENTS = (
    "select c.id::text from clients c join organizations o on o.id = c.org_id"
    " where c.org_id = %s and o.suspended_at is not null"
)
