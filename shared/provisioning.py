"""Datasets of a client: provision, list, drop; and a client's erasure and export.

Every entry point opens the caller's transaction and authorizes first
(`shared.policy.access_client`): no warehouse call happens before the caller
is known to be allowed. Warehouse work runs inside that transaction, so a
warehouse failure rolls the Postgres side back and a retry converges (every
warehouse step is idempotent). Each writes the request's one audit record
with its work.

- `provision` is idempotent: the same (client, platform) gives the same dataset
  id, in the organization's location; a recorded dataset in another location
  is a Conflict (data never moves silently). Admins provision ("manage"); the
  OAuth callback provisions for editors through `ensure_dataset`, inside its
  own transaction, once it has checked "connect" on the client.
- `erase_client` revokes every grant of the client at its provider (as
  disconnect does, saying truthfully which were revoked), drops every dataset
  of the client (with their contents), deletes its connections' token
  ciphertext, deletes the client row (which cascades to connections, datasets,
  OAuth states, sync runs and assignments) and writes the audit record; audit
  rows are never deleted. The work itself is `erase`, which the directory
  runs too when Clerk deletes an organization (`shared.directory.erasure`),
  in its own transactions and with its own record.
- `export_client` has the warehouse write each dataset of the client as
  Parquet into a fresh folder of the export sink (BigQuery's extract job into
  the bucket in the cloud, a local folder here) and seals it with a manifest;
  `export_download` streams one object of it back while its link is valid
  (`shared.export`). Both audit records name the export.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from shared import errors
from shared.export import (
    Download,
    Export,
    ExportFolder,
    export_prefix,
    new_export_id,
    open_download,
    seal,
)
from shared.policy import Client, access_client
from shared.revocation import HELD, Disconnected, revoke_held
from shared.tenancy import TenantTransaction, tenant
from shared.warehouse.ids import canonical_client_id, dataset_id_for, labels_for
from shared.warehouse.port import DatasetSpec

if TYPE_CHECKING:
    import psycopg

    from shared.audit import RequestAudit
    from shared.principal import Principal
    from shared.runtime import Runtime

_SELECT_ONE = (
    "select client_id::text, platform, dataset_id, location, status, created_at"
    " from datasets where client_id = %s and platform = %s"
)
_LIST_WITH_CLIENT = (
    "select c.org_id, d.client_id::text, d.platform, d.dataset_id, d.location, d.status,"
    " d.created_at from clients c left join datasets d on d.client_id = c.id"
    " where c.id = {}::uuid order by d.platform"
)
_UPSERT = (
    "insert into datasets (org_id, client_id, platform, dataset_id, location, status)"
    " values (%s, %s, %s, %s, %s, 'ready')"
    " on conflict (client_id, platform) do update set status = 'ready'"
    " returning client_id::text, platform, dataset_id, location, status, created_at"
)


@dataclass(frozen=True)
class DatasetRecord:
    client_id: str
    platform: str
    dataset_id: str
    location: str
    status: str
    created_at: dt.datetime | None = None

    def public(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "platform": self.platform,
            "dataset_id": self.dataset_id,
            "location": self.location,
            "status": self.status,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


def _record(row: Any) -> DatasetRecord:
    return DatasetRecord(*row)


def provision(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str, platform: str
) -> DatasetRecord:
    """`POST /datasets`: the client's dataset for `platform` (admins)."""
    # A platform this deployment does not serve is refused before anything is read.
    platform = runtime.platforms.check(platform)
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "manage", client_id)
        record = ensure_dataset(runtime, tx, principal, client, platform)
        audit.record(tx, resource=f"/datasets/{record.client_id}/{record.platform}")
    return record


def ensure_dataset(
    runtime: Runtime,
    tx: TenantTransaction,
    principal: Principal,
    client: Client,
    platform: str,
) -> DatasetRecord:
    """The client's dataset for `platform`, created if needed, recorded in Postgres.
    The caller has checked its right on `client`."""
    platform = runtime.platforms.check(platform)
    org = tx.execute(
        "select location from organizations where id = %s", (principal.org_id,)
    ).fetchone()
    if org is None:
        raise errors.NotFound("No such organization.")
    location = org[0]
    settings = runtime.settings
    dataset_id = dataset_id_for(settings.env, client.id, platform)
    existing = tx.execute(_SELECT_ONE, (client.id, platform)).fetchone()
    if existing is not None and (existing[2], existing[3]) != (dataset_id, location):
        raise errors.Conflict("The dataset exists with another configuration.")
    runtime.warehouse.ensure_dataset(
        DatasetSpec(
            dataset_id=dataset_id,
            location=location,
            labels=labels_for(settings.env, principal.org_id, client.id, platform),
            readers=tuple(sa for sa in (settings.bq_query_sa,) if sa),
            writers=tuple(sa for sa in (settings.bq_sync_sa,) if sa),
        )
    )
    row = tx.execute(
        _UPSERT,
        (principal.org_id, client.id, platform, dataset_id, location),
    ).fetchone()
    return _record(row)


def list_datasets(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str
) -> list[DatasetRecord]:
    """The client's datasets: one round trip under RLS (the client's organization
    for `require_found`, with its datasets, and the request's record in the same
    statement, written only if the client is visible)."""
    canonical = canonical_client_id(client_id)
    rows = audit.read_client_listing(
        principal, _LIST_WITH_CLIENT, canonical, resource=f"/datasets?client_id={canonical}"
    )
    return [_record(row[1:]) for row in rows if row[1] is not None]


def drop(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str, platform: str
) -> None:
    """Delete the dataset (and its rows) of (client, platform) and its record."""
    platform = runtime.platforms.check(platform)
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "manage", client_id)
        row = tx.execute(
            "delete from datasets where client_id = %s and platform = %s returning dataset_id",
            (client.id, platform),
        ).fetchone()
        if row is None:
            raise errors.NotFound("No such dataset.")
        runtime.warehouse.drop_dataset(row[0])
        audit.record(tx, resource=f"/datasets/{client.id}/{platform}")


@dataclass(frozen=True)
class Erasure:
    client_id: str
    datasets_dropped: int
    # Every connection of the client, with what its provider said of the grant.
    disconnected: tuple[Disconnected, ...]

    def public(self) -> dict[str, Any]:
        revoked = sum(1 for d in self.disconnected if d.revocation.revoked)
        return {
            "client_id": self.client_id,
            "datasets_dropped": self.datasets_dropped,
            "connections_disconnected": len(self.disconnected),
            "grants_revoked": revoked,
            "grants_not_revoked": len(self.disconnected) - revoked,
            "connections": [d.public() for d in self.disconnected],
        }

    def detail(self) -> str:
        """For the audit record: counts, and which grants were not revoked and why."""
        not_revoked = [
            f"{d.connection_id}:{d.revocation.reason}"
            for d in self.disconnected
            if not d.revocation.revoked
        ]
        return (
            f"erased: datasets={self.datasets_dropped} connections={len(self.disconnected)}"
            f" revoked={len(self.disconnected) - len(not_revoked)}"
            + (f" not_revoked={','.join(not_revoked)}" if not_revoked else "")
        )


# S608: HELD is a constant column list; the client id is a parameter.
_HELD = f"select {HELD} from connections where client_id = %s order by created_at"  # noqa: S608


def erase_client(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str
) -> Erasure:
    """Everything of the client goes except its audit trail; see the module docstring."""

    def resolve(tx: TenantTransaction, wanted: str) -> str:
        return access_client(tx, principal, "manage", wanted).id

    def record(tx: TenantTransaction, erasure: Erasure) -> None:
        audit.record(tx, resource=f"/clients/{erasure.client_id}", detail=erasure.detail())

    return erase(
        runtime,
        principal.org_id,
        client_id,
        transaction=lambda: tenant(runtime.db, principal),
        resolve=resolve,
        record=record,
    )


class Executes(Protocol):
    """A transaction that runs statements: the caller's (`TenantTransaction`), or
    the directory's when Clerk deleted the organization."""

    def execute(self, query: Any, params: Any = None) -> psycopg.Cursor[Any]: ...


T = TypeVar("T", bound=Executes)


def erase(
    runtime: Runtime,
    org_id: str,
    client_id: str,
    *,
    transaction: Callable[[], AbstractContextManager[T]],
    resolve: Callable[[T, str], str],
    record: Callable[[T, Erasure], None],
) -> Erasure:
    """The erasure of `org_id`'s client: `DELETE /clients/{id}` and a Clerk
    organization's deletion both come here.

    `transaction` opens the caller's transaction, `resolve` checks the client
    in it (raising NotFound) and gives its canonical id, `record` writes the
    caller's audit record with the work. Grants are revoked at their providers
    before the erasure transaction, with no transaction open while the
    providers answer; a connection made in between is revoked inside it. A
    failure after revocation leaves the client in place with its tokens
    deleted or not, and a retry converges (a grant already dead is reported as
    revoked).
    """
    with transaction() as tx:
        client = resolve(tx, client_id)
        held = tx.execute(_HELD, (client,)).fetchall()
    done = {row[0]: revoke_held(runtime, org_id, row) for row in held}
    with transaction() as tx:
        client = resolve(tx, client)
        for row in tx.execute(_HELD, (client,)).fetchall():
            if row[0] not in done:  # connected while we were revoking
                done[row[0]] = revoke_held(runtime, org_id, row)
        # Tokens first: even if a later step fails and is retried, no query in between
        # could still use them (the whole transaction commits or nothing does).
        tx.execute(
            "update connections set token_ciphertext = null, key_version = null,"
            " status = 'disconnected', updated_at = now() where client_id = %s",
            (client,),
        )
        dataset_ids = [
            r[0]
            for r in tx.execute(
                "select dataset_id from datasets where client_id = %s", (client,)
            ).fetchall()
        ]
        # Also the ids of datasets never recorded (a provisioning that died before its commit).
        env, names = runtime.settings.env, runtime.platforms.names
        expected = {dataset_id_for(env, client, p) for p in names}
        for dataset_id in sorted(expected | set(dataset_ids)):
            runtime.warehouse.drop_dataset(dataset_id)
        deleted = tx.execute("delete from clients where id = %s", (client,)).rowcount
        if deleted != 1:
            raise errors.NotFound("No such client.")
        erasure = Erasure(client, len(dataset_ids), tuple(done.values()))
        record(tx, erasure)
    return erasure


def _export_folder(runtime: Runtime, org_id: str, client_id: str, export_id: str) -> ExportFolder:
    return ExportFolder(runtime.exports, export_prefix(org_id, client_id, export_id))


def export_client(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str
) -> Export:
    """The client's rows, as Parquet objects per dataset, in a fresh export folder."""
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "manage", client_id)
        rows = tx.execute(
            "select dataset_id from datasets where client_id = %s order by platform",
            (client.id,),
        ).fetchall()
        now = dt.datetime.fromtimestamp(runtime.clock(), dt.UTC)
        export_id = new_export_id(now)
        folder = _export_folder(runtime, principal.org_id, client.id, export_id)
        for (dataset_id,) in rows:
            runtime.warehouse.export_parquet(dataset_id, folder)
        expires_at = now + dt.timedelta(seconds=runtime.settings.export_link_ttl_s)
        done = seal(
            folder, export_id=export_id, client_id=client.id, created_at=now, expires_at=expires_at
        )
        audit.record(
            tx, resource=done.resource, detail=f"objects={len(done.objects)} rows={done.rows}"
        )
    return done


def export_download(
    runtime: Runtime,
    principal: Principal,
    audit: RequestAudit,
    client_id: str,
    export_id: str,
    name: str,
) -> Download:
    """One object of an export of the client, while its link has not expired."""
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "manage", client_id)
        folder = _export_folder(runtime, principal.org_id, client.id, export_id)
        now = dt.datetime.fromtimestamp(runtime.clock(), dt.UTC)
        download = open_download(folder, name, now)
        audit.record(tx, resource=f"/clients/{client.id}/exports/{export_id}/{download.name}")
    return download
