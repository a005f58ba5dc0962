"""A sync test bench: its own migrated database, connections with sealed tokens,
and datasets, so leasing in these tests never touches other tests' connections.

The sync worker leases every due connection in its database; the session
database is shared with every other test module, so sync tests use a database
of their own on the same server (`sync_database`), with the same roles.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from cosma import localdb
from shared import migrate
from shared.runtime import Runtime
from shared.settings import Settings
from shared.warehouse import DatasetSpec, dataset_id_for, labels_for
from tests.support.seed import Org, Seeder


def sync_database(pg: localdb.LocalDatabase) -> localdb.LocalDatabase:
    """A fresh migrated database on the session's server, roles unchanged."""
    name = f"cosma_sync_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    localdb.create_database(pg.admin_url, name, fresh=True)
    admin = localdb.with_database(pg.admin_url, name)
    migrate.apply(admin)
    return localdb.LocalDatabase(
        admin_url=admin,
        app_url=localdb.with_database(pg.app_url, name),
        worker_url=localdb.with_database(pg.worker_url, name),
        directory_url=localdb.with_database(pg.directory_url, name),
    )


@dataclass
class Bench:
    """Seeds connections the way the OAuth callback leaves them."""

    db: localdb.LocalDatabase
    runtime: Runtime
    seeder: Seeder

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def org(self, **kwargs: Any) -> Org:
        return self.seeder.org(**kwargs)

    def dataset(self, org: Org, client_id: str, platform: str = "sandbox") -> str:
        dataset_id = dataset_id_for(self.settings.env, client_id, platform)
        self.runtime.warehouse.ensure_dataset(
            DatasetSpec(
                dataset_id, "US", labels_for(self.settings.env, org.id, client_id, platform)
            )
        )
        self.sql(
            "insert into datasets (org_id, client_id, platform, dataset_id, location)"
            " values (%s, %s, %s, %s, 'US') on conflict do nothing",
            (org.id, client_id, platform, dataset_id),
        )
        return dataset_id

    def connection(
        self,
        org: Org,
        client_id: str,
        refresh_token: str,
        *,
        platform: str = "sandbox",
        account_ids: tuple[str, ...] = (),
        dataset: bool = True,
    ) -> str:
        """An active, due connection holding `refresh_token` sealed for its row."""
        if dataset:
            self.dataset(org, client_id, platform)
        connection_id = str(uuid.uuid4())
        sealed = self.runtime.cipher.encrypt(
            refresh_token, connection_id=connection_id, org_id=org.id
        )
        self.sql(
            "insert into connections (id, org_id, client_id, platform, created_by,"
            " token_ciphertext, key_version, account_ids, next_sync_at)"
            " values (%s, %s, %s, %s, 'seed', %s, %s, %s, now() - interval '1 minute')",
            (
                connection_id,
                org.id,
                client_id,
                platform,
                sealed.ciphertext,
                sealed.key_version,
                list(account_ids),
            ),
        )
        return connection_id

    def stored_token(self, connection_id: str) -> str:
        row = self.one(
            "select org_id, token_ciphertext from connections where id = %s", (connection_id,)
        )
        return self.runtime.cipher.decrypt(
            bytes(row[1]), connection_id=connection_id, org_id=row[0]
        )

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db.admin_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def one(self, query: str, params: Any = None) -> tuple[Any, ...]:
        rows = self.sql(query, params)
        assert len(rows) == 1, rows
        return rows[0]

    def connection_row(self, connection_id: str) -> dict[str, Any]:
        with psycopg.connect(self.db.admin_url, autocommit=True) as conn:
            cursor = conn.execute("select * from connections where id = %s", (connection_id,))
            names = [d[0] for d in cursor.description or []]
            row = cursor.fetchone()
        assert row is not None
        return dict(zip(names, row, strict=True))

    def runs(self, connection_id: str) -> list[dict[str, Any]]:
        with psycopg.connect(self.db.admin_url, autocommit=True) as conn:
            cursor = conn.execute(
                "select * from sync_runs where connection_id = %s order by started_at",
                (connection_id,),
            )
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def retire_all(self) -> None:
        """Take every connection out of the schedule (tests start from a clean slate)."""
        self.sql("update connections set next_sync_at = now() + interval '30 days'")
