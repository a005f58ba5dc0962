"""Datasets of a client: provision, list, drop; and a client's erasure and export.

Every function here takes the caller's transaction (`ctx.tenant()`) and
authorizes first (`shared.policy.require_client`): no warehouse call happens
before the caller is known to be allowed. Warehouse work runs inside that
transaction, so a warehouse failure rolls the Postgres side back and a retry
converges (every warehouse step is idempotent).

- `provision` is idempotent: the same (client, platform) gives the same dataset
  id, in the organization's location; a recorded dataset in another location
  is a Conflict (data never moves silently). Admins provision ("manage"); the
  OAuth callback provisions for editors with action "connect". Callers write
  the audit record (a route writes exactly one).
- `erase_client` drops every dataset of the client (with their contents),
  deletes its connections' token ciphertext, deletes the client row (which
  cascades to connections, datasets, OAuth states and sync runs) and writes
  the audit record; audit rows are never deleted.
- `export_client` writes the client's rows as Parquet files under the export
  folder (a GCS bucket in the cloud would take this place; it is local here).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shared import errors
from shared.policy import require_client
from shared.warehouse.ids import (
    canonical_client_id,
    dataset_id_for,
    labels_for,
)
from shared.warehouse.port import DatasetSpec

if TYPE_CHECKING:
    from shared.principal import Principal
    from shared.runtime import Runtime

_SELECT_ONE = (
    "select client_id::text, platform, dataset_id, location, status, created_at"
    " from datasets where client_id = %s and platform = %s"
)
_SELECT_ALL = (
    "select client_id::text, platform, dataset_id, location, status, created_at"
    " from datasets where client_id = %s order by platform"
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
    runtime: Runtime,
    tx: Any,
    principal: Principal,
    client_id: str,
    platform: str,
    *,
    action: Literal["manage", "connect"] = "manage",
) -> DatasetRecord:
    """The client's dataset for `platform`, created if needed, recorded in Postgres."""
    platform = runtime.platforms.check(platform)
    require_client(tx, principal, action, client_id)
    client_id = canonical_client_id(client_id)
    org = tx.execute(
        "select location from organizations where id = %s", (principal.org_id,)
    ).fetchone()
    if org is None:
        raise errors.NotFound("No such organization.")
    location = org[0]
    settings = runtime.settings
    dataset_id = dataset_id_for(settings.env, client_id, platform)
    existing = tx.execute(_SELECT_ONE, (client_id, platform)).fetchone()
    if existing is not None and (existing[2], existing[3]) != (dataset_id, location):
        raise errors.Conflict("The dataset exists with another configuration.")
    runtime.warehouse.ensure_dataset(
        DatasetSpec(
            dataset_id=dataset_id,
            location=location,
            labels=labels_for(settings.env, principal.org_id, client_id, platform),
            readers=tuple(sa for sa in (settings.bq_query_sa,) if sa),
            writers=tuple(sa for sa in (settings.bq_sync_sa,) if sa),
        )
    )
    row = tx.execute(
        _UPSERT,
        (principal.org_id, client_id, platform, dataset_id, location),
    ).fetchone()
    return _record(row)


def list_datasets(tx: Any, principal: Principal, client_id: str) -> list[DatasetRecord]:
    require_client(tx, principal, "read", client_id)
    rows = tx.execute(_SELECT_ALL, (canonical_client_id(client_id),)).fetchall()
    return [_record(row) for row in rows]


def drop(runtime: Runtime, tx: Any, principal: Principal, client_id: str, platform: str) -> None:
    """Delete the dataset (and its rows) of (client, platform) and its record."""
    platform = runtime.platforms.check(platform)
    require_client(tx, principal, "manage", client_id)
    client_id = canonical_client_id(client_id)
    row = tx.execute(
        "delete from datasets where client_id = %s and platform = %s returning dataset_id",
        (client_id, platform),
    ).fetchone()
    if row is None:
        raise errors.NotFound("No such dataset.")
    runtime.warehouse.drop_dataset(row[0])


@dataclass(frozen=True)
class Erasure:
    client_id: str
    datasets_dropped: int
    connections_revoked: int

    def public(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "datasets_dropped": self.datasets_dropped,
            "connections_revoked": self.connections_revoked,
        }


def erase_client(runtime: Runtime, tx: Any, principal: Principal, client_id: str) -> Erasure:
    """Everything of the client goes except its audit trail; see the module docstring."""
    require_client(tx, principal, "manage", client_id)
    client_id = canonical_client_id(client_id)
    # Tokens first: even if a later step fails and is retried, no query in between
    # could still use them (the whole transaction commits or nothing does).
    revoked = tx.execute(
        "update connections set token_ciphertext = null, key_version = null,"
        " status = 'revoked', updated_at = now() where client_id = %s",
        (client_id,),
    ).rowcount
    dataset_ids = [
        r[0]
        for r in tx.execute(
            "select dataset_id from datasets where client_id = %s", (client_id,)
        ).fetchall()
    ]
    # Also the ids of datasets never recorded (a provisioning that died before its commit).
    expected = {dataset_id_for(runtime.settings.env, client_id, p) for p in runtime.platforms.names}
    for dataset_id in sorted(expected | set(dataset_ids)):
        runtime.warehouse.drop_dataset(dataset_id)
    deleted = tx.execute("delete from clients where id = %s", (client_id,)).rowcount
    if deleted != 1:
        raise errors.NotFound("No such client.")
    tx.audit(
        resource=f"/clients/{client_id}",
        detail=f"erased: datasets={len(dataset_ids)} connections={revoked}",
    )
    return Erasure(client_id, len(dataset_ids), revoked)


def export_dir(runtime: Runtime) -> Path:
    settings = runtime.settings
    if settings.export_dir is not None:
        return Path(settings.export_dir)
    if settings.warehouse_dir is not None:
        return Path(settings.warehouse_dir).parent / "exports"
    return Path(".cosma/exports")


def export_client(runtime: Runtime, tx: Any, principal: Principal, client_id: str) -> list[Path]:
    """The client's rows, one Parquet file per dataset, in a fresh folder."""
    require_client(tx, principal, "manage", client_id)
    client_id = canonical_client_id(client_id)
    rows = tx.execute(
        "select dataset_id from datasets where client_id = %s order by platform", (client_id,)
    ).fetchall()
    stamp = dt.datetime.fromtimestamp(runtime.clock(), dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = export_dir(runtime) / principal.org_id / client_id / stamp
    files: list[Path] = []
    for (dataset_id,) in rows:
        files.extend(runtime.warehouse.export_parquet(dataset_id, dest))
    return files
