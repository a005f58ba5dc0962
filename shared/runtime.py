"""The one bootstrap: settings in, adapters (and the core objects over them) out.

Composition only: each adapter is built on first use from settings, and no
request policy lives here (that is the HTTP layer's life cycle). Cold starts
matter, so nothing here connects or imports a cloud SDK until a request needs
it. Functions in the cloud use `current()` (settings from the environment,
built once per instance); tests and the local server build a
`Runtime(settings)` of their own and pass it to `Router.handle`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.settings import Settings

if TYPE_CHECKING:
    from shared.authn import Authenticator
    from shared.db import Database
    from shared.export import ExportSink
    from shared.keyring import LiveCipher
    from shared.platforms.registry import Registry
    from shared.ratelimit import RateLimiter
    from shared.secrets import Secrets
    from shared.warehouse import Warehouse

log = logging.getLogger("cosma.runtime")


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        platforms: Registry | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._platforms = platforms

    # ------------------------------------------------------------ adapters

    @cached_property
    def platforms(self) -> Registry:
        """The ad platforms this runtime serves: the deployed ones from settings,
        unless the bootstrap passed its own (the local one adds the sandbox)."""
        if self._platforms is not None:
            return self._platforms
        from shared.platforms.registry import Registry

        return Registry.from_settings(self.settings)

    @cached_property
    def db(self) -> Database:
        from shared.db import Database

        return Database(self.settings.database_url, max_size=self.settings.db_pool_max)

    @cached_property
    def worker_db(self) -> Database:
        from shared.db import Database

        return Database(
            self.settings.worker_database_url, max_size=self.settings.db_pool_max, name="worker"
        )

    @cached_property
    def directory_db(self) -> Database:
        """The directory's own role (cosma_directory): Clerk's organizations and members."""
        from shared.db import Database

        return Database(
            self.settings.directory_database_url,
            max_size=self.settings.db_pool_max,
            name="directory",
        )

    @cached_property
    def warehouse(self) -> Warehouse:
        """The configured warehouse; google.cloud.bigquery loads only for BigQuery."""
        settings = self.settings
        if settings.warehouse == "bigquery":
            from shared.warehouse.bigquery import BigQueryWarehouse

            return BigQueryWarehouse(
                settings.gcp_project,
                endpoint=settings.bigquery_endpoint,
                retry_deadline_s=settings.bq_retry_deadline_s,
                kms_key_name=settings.bq_kms_key,
            )
        from pathlib import Path

        from shared.warehouse.duckdb import DuckDBWarehouse

        # bq_kms_key is not passed: DuckDB's datasets are local files, encrypted (or
        # not) by the disk they sit on; CMEK is a BigQuery setting.
        return DuckDBWarehouse(settings.warehouse_dir or Path(".cosma/warehouse"))

    @cached_property
    def exports(self) -> ExportSink:
        """Where client exports go: the export bucket when one is configured (google.cloud
        .storage loads only then), else a local folder beside the warehouse."""
        settings = self.settings
        if settings.export_bucket:
            from shared.export.gcs import GCSExportSink

            return GCSExportSink(
                settings.export_bucket,
                project=settings.gcp_project,
                endpoint=settings.storage_endpoint,
            )
        from pathlib import Path

        from shared.export.local import LocalExportSink

        if settings.export_dir is not None:
            return LocalExportSink(settings.export_dir)
        if settings.warehouse_dir is not None:
            return LocalExportSink(Path(settings.warehouse_dir).parent / "exports")
        return LocalExportSink(Path(".cosma/exports"))

    @cached_property
    def secrets(self) -> Secrets:
        from shared.secrets import secrets_from_settings

        return secrets_from_settings(self.settings)

    @cached_property
    def cipher(self) -> LiveCipher:
        """The token cipher, kept current with the keyring while the instance runs
        (`shared.keyring`): a rotation reaches it without a restart."""
        from shared.keyring import LiveCipher

        return LiveCipher(
            self.secrets.keyring,
            refresh_s=self.settings.keyring_refresh_s,
            wall_clock=self.clock,
            on_primary=self._record_primary,
        )

    def _record_primary(self, version: str) -> None:
        """Record, once, when a key version first sealed a token (`shared.retirement`).
        With no database configured nothing sealed can be stored, so there is nothing
        to record."""
        if not (self.settings.database_url or self.settings.worker_database_url):
            return
        from shared import retirement

        retirement.record_primary(self.primary_db, version)

    @cached_property
    def primary_db(self) -> Database:
        """A connection of its own for `_record_primary`. A seal happens inside the
        caller's pooled transaction (the callback storing a connection); recording from
        that same pool would leave as many first seals at once as the pool holds each
        waiting for another's connection until the pool's timeout."""
        from shared.db import Database

        # The functions that seal hold one role each: oauth the app's, sync the worker's.
        url = self.settings.database_url or self.settings.worker_database_url
        return Database(url, max_size=1, name="key-versions")

    @cached_property
    def authenticator(self) -> Authenticator:
        from shared.authn import Authenticator

        # Every authentication ends in a membership lookup: on a cold start the first
        # connection is made on the pool's thread while the token verifier loads.
        self.db.connect_ahead()
        return Authenticator.from_settings(self.settings, self.db, clock=self.clock)

    def forget_membership(self, user_id: str, org_id: str) -> None:
        """Drop this instance's cached membership of (user, organization), if it has one,
        after this instance changed it; other instances follow within the cache's bound."""
        authenticator: Authenticator | None = self.__dict__.get("authenticator")
        if authenticator is not None:
            authenticator.forget(user_id, org_id)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        from shared.ratelimit import RateLimiter

        return RateLimiter.from_settings(self.settings, self.db)

    @cached_property
    def sentry_enabled(self) -> bool:
        """Sentry, initialised once on the first request, only when a DSN is configured
        (no DSN: `sentry_sdk` is never imported)."""
        if not (self.settings.sentry_dsn or self.settings.sentry_dsn_secret):
            return False
        from shared import observability

        return observability.init_sentry(self.settings, lambda: self.secrets)

    def close(self) -> None:
        for name in ("db", "worker_db", "directory_db", "primary_db", "warehouse", "exports"):
            adapter: Any = self.__dict__.get(name)
            if adapter is not None:
                adapter.close()


_current: Runtime | None = None
_current_lock = threading.Lock()


def current() -> Runtime:
    """The instance's runtime, from the environment, built on first use."""
    global _current
    if _current is None:
        with _current_lock:
            if _current is None:
                from shared import logs

                settings = Settings.from_env()
                logs.configure(settings.log_level)
                _current = Runtime(settings)
    return _current
