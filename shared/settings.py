"""Settings: one frozen object, built from the environment at the edge.

Functions call `Settings.from_env()` once, on first use; tests and the local
server build `Settings(...)` directly. Nothing below the edge reads
`os.environ`. Secret values never live here: only where to find them
(a URL that carries a password is the one exception the platform imposes, and
it is read from a Secret Manager mount, never from the repository).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shared.platform_names import CLOUD_PLATFORMS

# `<KEY>_CLIENT_ID` and `<KEY>_BASE_URL` are read for the deployed platforms only.
_PLATFORM_KEYS = tuple(name.upper() for name in CLOUD_PLATFORMS)
_ROLES = ("admin", "editor", "viewer")
_LOCATIONS = ("US", "EU")

# Clerk organization role (key) => our role. Clerk's own defaults are `org:admin`
# and `org:member`; `org:editor` and `org:viewer` are custom roles an instance
# creates. A role missing here gives no access at all.
DEFAULT_CLERK_ROLE_MAP: Mapping[str, str] = {
    "org:admin": "admin",
    "org:editor": "editor",
    "org:viewer": "viewer",
    "org:member": "viewer",
}


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def clerk_role_key(role: str) -> str:
    """A Clerk organization role in its `org:` form (session tokens v2 drop the prefix)."""
    role = role.strip()
    return role if role.startswith("org:") else f"org:{role}"


def parse_role_map(spec: str) -> dict[str, str]:
    """`"org:admin=admin,org:billing=viewer"` => {clerk role: our role}; `""` is the default.

    Raises ValueError on an entry that is not `<clerk role>=<admin|editor|viewer>`:
    a typo must stop the function at start, not silently lock people out.
    """
    if not spec.strip():
        return dict(DEFAULT_CLERK_ROLE_MAP)
    mapping: dict[str, str] = {}
    for entry in _split(spec):
        clerk, sep, ours = (part.strip() for part in entry.partition("="))
        if not sep or not clerk or ours not in _ROLES:
            raise ValueError(
                f"CLERK_ROLE_MAP entry {entry!r} is not '<clerk role>=<{'|'.join(_ROLES)}>'"
            )
        mapping[clerk_role_key(clerk)] = ours
    return mapping


def _location(value: str) -> str:
    location = value.strip().upper() or "US"
    if location not in _LOCATIONS:
        raise ValueError(f"COSMA_DEFAULT_DATA_LOCATION must be one of {', '.join(_LOCATIONS)}")
    return location


@dataclass(frozen=True)
class Settings:
    env: str = "local"
    database_url: str = ""
    worker_database_url: str = ""
    # The directory function's role (cosma_directory): Clerk's organizations and members.
    directory_database_url: str = ""
    allowed_origins: tuple[str, ...] = ()
    app_url: str = "http://localhost:3000"
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 64 * 1024
    # How many X-Forwarded-For entries, counted from the right, our own proxies
    # append (Google's external Application Load Balancer: two, the client and
    # itself). 0: no proxy, the socket peer is the client (local runs).
    trusted_xff_entries: int = 0
    # Identity (Clerk).
    clerk_issuer: str = ""
    clerk_jwks_url: str = ""
    clerk_jwt_key: str = ""
    # More exact issuers a session token may name besides `clerk_issuer` (the
    # instance's Frontend API URL): its proxy URL, each satellite domain's.
    clerk_other_issuers: tuple[str, ...] = ()
    # Audiences a session token's `aud` may name; a token with any other `aud` is
    # refused (Clerk sets one only when a custom session template does).
    clerk_audiences: tuple[str, ...] = ()
    # The directory (Clerk webhooks, reconcile). The webhook signing secrets
    # ("clerk-webhook-secret", up to two during a rotation) and the Backend API
    # key ("clerk-secret-key") come from the secrets port.
    clerk_role_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CLERK_ROLE_MAP))
    default_data_location: str = "US"
    clerk_api_url: str = "https://api.clerk.com/v1"
    clerk_api_timeout_s: float = 10.0
    # Seen `svix-id`s are kept this long (Svix retries for about three days).
    directory_delivery_retention_days: int = 14
    # How long a webhook request erases a deleted organization's clients; what is
    # left is erased by the next reconcile.
    directory_erase_budget_s: float = 20.0
    reconcile_budget_s: float = 480.0
    # The reconcile trigger (Cloud Scheduler OIDC), like sync's.
    reconcile_audience: str = ""
    reconcile_scheduler_sa_email: str = ""
    # Secrets: where the keyring is mounted (cloud) or kept (local).
    keyring_dir: Path | None = None
    secrets_dir: Path | None = None
    gcp_project: str = ""
    keyring_secret_name: str = "token-keyring"  # noqa: S105 (a secret's name, not a value)
    secret_manager_endpoint: str = ""
    # Key rotation (shared.keyring, shared.retirement): an instance re-reads the
    # keyring at least this often before sealing a token, and an old key version
    # may be retired only this long after a newer one was first used to seal. The
    # grace covers the refresh and the longest request (540 s) an instance of the
    # previous deployment may still be finishing; it is never less than the refresh.
    keyring_refresh_s: float = 60.0
    key_retire_grace_s: float = 600.0
    # Warehouse.
    warehouse: str = "duckdb"
    warehouse_dir: Path | None = None
    bigquery_endpoint: str = ""
    bq_query_sa: str = ""
    bq_sync_sa: str = ""
    # Default Cloud KMS key of new datasets (CMEK); empty: Google-managed keys.
    bq_kms_key: str = ""
    bq_retry_deadline_s: float = 30.0
    # Client exports (GDPR/DPA requests): a Cloud Storage bucket in the cloud, else a
    # local folder; how long an export's download link lasts (the bucket deletes
    # exports some days later, see terraform/modules/exports).
    export_bucket: str = ""
    export_dir: Path | None = None
    storage_endpoint: str = ""
    export_link_ttl_s: int = 3600
    bytes_billed_cap: int = 10 * 1024**3
    query_timeout_s: float = 30.0
    # Sync trigger (Cloud Scheduler OIDC).
    sync_audience: str = ""
    scheduler_sa_email: str = ""
    google_certs_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    # Sync work sharing (shared.sync): the budget stays below the function timeout
    # (540 s), and a lease outlives it so a crashed run's connections come back.
    sync_budget_s: float = 480.0
    sync_lease_s: int = 600
    sync_batch: int = 2
    sync_interval_s: int = 24 * 3600
    sync_first_days: int = 90
    sync_api_timeout_s: float = 30.0
    # "Sync now" (`POST /connections/{id}/sync`): at most once per connection in
    # this many seconds, so members cannot hammer a platform through us.
    sync_now_cooldown_s: int = 900
    # Observability.
    sentry_dsn: str = ""
    # Or the name of the secret holding the DSN (the secrets port reads it).
    sentry_dsn_secret: str = ""
    release: str = ""
    log_level: str = "INFO"
    # Per-platform overrides: client ids and base URLs (tests point them at loopback).
    platform_client_ids: Mapping[str, str] = field(default_factory=dict)
    platform_base_urls: Mapping[str, str] = field(default_factory=dict)
    # OAuth calls to the providers: code exchange and refresh, and revocation.
    oauth_timeout_s: float = 10.0
    oauth_revoke_timeout_s: float = 5.0
    db_pool_max: int = 4
    # Rate limits, "<rate>/<seconds>s[:<burst>]" (see shared.ratelimit); "" turns one off.
    rate_limit_ip: str = "60/60s:30"
    rate_limit_user: str = "1200/60s:200"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            return env.get(name, default).strip()

        def path(name: str) -> Path | None:
            value = get(name)
            return Path(value) if value else None

        client_ids = {
            key.lower(): get(f"{key}_CLIENT_ID")
            for key in _PLATFORM_KEYS
            if get(f"{key}_CLIENT_ID")
        }
        base_urls = {
            key.lower(): get(f"{key}_BASE_URL") for key in _PLATFORM_KEYS if get(f"{key}_BASE_URL")
        }
        values: dict[str, Any] = {
            "env": get("COSMA_ENV", "local"),
            "database_url": get("DATABASE_URL"),
            "worker_database_url": get("WORKER_DATABASE_URL"),
            "directory_database_url": get("DIRECTORY_DATABASE_URL"),
            "allowed_origins": _split(get("COSMA_ALLOWED_ORIGINS")),
            "app_url": get("COSMA_APP_URL", "http://localhost:3000"),
            "public_url": get("COSMA_PUBLIC_URL", "http://127.0.0.1:8080"),
            "max_body_bytes": int(get("COSMA_MAX_BODY_BYTES", str(64 * 1024))),
            "trusted_xff_entries": int(get("COSMA_TRUSTED_XFF_ENTRIES", "0")),
            "clerk_issuer": get("CLERK_ISSUER"),
            "clerk_jwks_url": get("CLERK_JWKS_URL"),
            "clerk_jwt_key": env.get("CLERK_JWT_KEY", ""),
            "clerk_other_issuers": _split(get("CLERK_OTHER_ISSUERS")),
            "clerk_audiences": _split(get("CLERK_AUDIENCES")),
            "clerk_role_map": parse_role_map(get("CLERK_ROLE_MAP")),
            "default_data_location": _location(get("COSMA_DEFAULT_DATA_LOCATION", "US")),
            "clerk_api_url": get("CLERK_API_URL", "https://api.clerk.com/v1"),
            "clerk_api_timeout_s": float(get("CLERK_API_TIMEOUT_S", "10")),
            "directory_delivery_retention_days": int(
                get("COSMA_DIRECTORY_DELIVERY_RETENTION_DAYS", "14")
            ),
            "directory_erase_budget_s": float(get("COSMA_DIRECTORY_ERASE_BUDGET_S", "20")),
            "reconcile_budget_s": float(get("COSMA_RECONCILE_BUDGET_S", "480")),
            "reconcile_audience": get("RECONCILE_AUDIENCE"),
            "reconcile_scheduler_sa_email": get("RECONCILE_SCHEDULER_SA_EMAIL"),
            "keyring_dir": path("COSMA_KEYRING_DIR"),
            "secrets_dir": path("COSMA_SECRETS_DIR"),
            "gcp_project": get("GCP_PROJECT"),
            "keyring_secret_name": get("COSMA_KEYRING_SECRET", "token-keyring"),
            "secret_manager_endpoint": get("SECRET_MANAGER_ENDPOINT"),
            "keyring_refresh_s": float(get("COSMA_KEYRING_REFRESH_S", "60")),
            "key_retire_grace_s": float(get("COSMA_KEY_RETIRE_GRACE_S", "600")),
            "warehouse": get("COSMA_WAREHOUSE", "bigquery" if get("GCP_PROJECT") else "duckdb"),
            "warehouse_dir": path("COSMA_WAREHOUSE_DIR"),
            "bigquery_endpoint": get("BIGQUERY_ENDPOINT"),
            "bq_query_sa": get("BQ_QUERY_SA"),
            "bq_sync_sa": get("BQ_SYNC_SA"),
            "bq_kms_key": get("BQ_KMS_KEY"),
            "bq_retry_deadline_s": float(get("BQ_RETRY_DEADLINE_S", "30")),
            "export_bucket": get("COSMA_EXPORT_BUCKET"),
            "export_dir": path("COSMA_EXPORT_DIR"),
            "storage_endpoint": get("STORAGE_ENDPOINT"),
            "export_link_ttl_s": int(get("COSMA_EXPORT_LINK_TTL_S", "3600")),
            "bytes_billed_cap": int(get("COSMA_BYTES_BILLED_CAP", str(10 * 1024**3))),
            "query_timeout_s": float(get("COSMA_QUERY_TIMEOUT_S", "30")),
            "sync_audience": get("SYNC_AUDIENCE"),
            "scheduler_sa_email": get("SCHEDULER_SA_EMAIL"),
            "google_certs_url": get(
                "GOOGLE_CERTS_URL", "https://www.googleapis.com/oauth2/v3/certs"
            ),
            "sync_budget_s": float(get("COSMA_SYNC_BUDGET_S", "480")),
            "sync_lease_s": int(get("COSMA_SYNC_LEASE_S", "600")),
            "sync_batch": int(get("COSMA_SYNC_BATCH", "2")),
            "sync_interval_s": int(get("COSMA_SYNC_INTERVAL_S", str(24 * 3600))),
            "sync_first_days": int(get("COSMA_SYNC_FIRST_DAYS", "90")),
            "sync_api_timeout_s": float(get("COSMA_SYNC_API_TIMEOUT_S", "30")),
            "sync_now_cooldown_s": int(get("COSMA_SYNC_NOW_COOLDOWN_S", "900")),
            "sentry_dsn": get("SENTRY_DSN"),
            "sentry_dsn_secret": get("SENTRY_DSN_SECRET"),
            "release": get("COSMA_RELEASE"),
            "log_level": get("COSMA_LOG_LEVEL", "INFO"),
            "platform_client_ids": client_ids,
            "platform_base_urls": base_urls,
            "oauth_timeout_s": float(get("COSMA_OAUTH_TIMEOUT_S", "10")),
            "oauth_revoke_timeout_s": float(get("COSMA_OAUTH_REVOKE_TIMEOUT_S", "5")),
            "db_pool_max": int(get("COSMA_DB_POOL_MAX", "4")),
            "rate_limit_ip": get("COSMA_RATE_LIMIT_IP", "60/60s:30"),
            "rate_limit_user": get("COSMA_RATE_LIMIT_USER", "1200/60s:200"),
        }
        return cls(**values)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)
