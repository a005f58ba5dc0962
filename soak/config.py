"""The soak's knobs, and the environment every process of a run is started with.

The settings the servers get differ from the defaults only where a few minutes
must show what a day would: the keyring is re-read every 2 s and a retired key
version's grace is 5 s (`COSMA_KEYRING_REFRESH_S`, `COSMA_KEY_RETIRE_GRACE_S`),
a sync lease lasts 15 s so a killed invocation's connections come back within
the run, connections are due again every 60 s, and the provider calls time out
after 5 s (3 s for a revocation) so the provider's timeouts end within the run.
The membership cache's bound is `principal_ttl_s` (30 s, the deployed value, by
default; the short form uses 5 s so that removals are probed after it).
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.runtime import Runtime

ORIGIN = "http://localhost:3000"
SCHEDULER_EMAIL = "scheduler@cosma-soak.iam.gserviceaccount.com"
SERVERS = 4
ORGANIZATIONS = 20
CLIENTS_PER_ORG = 5
CLIENT_PROCESSES = 4
FIRST_DAYS = 30


@dataclass(frozen=True)
class Knobs:
    seconds: float = 180.0
    principal_ttl_s: float = 30.0
    servers: int = SERVERS
    organizations: int = ORGANIZATIONS
    clients_per_org: int = CLIENTS_PER_ORG
    client_processes: int = CLIENT_PROCESSES
    seed: int = 22


@dataclass
class Layout:
    """Where a run keeps its state, and the addresses of its processes."""

    home: Path
    peer_port: int
    server_ports: list[int]
    database: dict[str, str] = field(default_factory=dict)  # admin, app, worker, directory

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def public_url(self) -> str:
        """The one address the instances share, as behind the load balancer: the OAuth
        redirect URI and export links name it; clients send each request to an instance."""
        return f"http://127.0.0.1:{self.server_ports[0]}"

    def server_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.server_ports[index]}"

    @property
    def records(self) -> Path:
        return self.home / "records"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def save(self, path: Path) -> None:
        data = asdict(self)
        data["home"] = str(self.home)
        path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: Path) -> Layout:
        data = json.loads(path.read_text())
        return cls(
            home=Path(data["home"]),
            peer_port=int(data["peer_port"]),
            server_ports=[int(p) for p in data["server_ports"]],
            database=dict(data["database"]),
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(layout: Layout, knobs: Knobs) -> dict[str, str]:
    """The settings of every server, the peer and the sync and key commands."""
    home = layout.home
    public = layout.public_url
    peer = layout.peer_url
    db = layout.database
    return {
        "COSMA_ENV": "local",
        "DATABASE_URL": db.get("app", ""),
        "WORKER_DATABASE_URL": db.get("worker", ""),
        "DIRECTORY_DATABASE_URL": db.get("directory", ""),
        "COSMA_PUBLIC_URL": public,
        "COSMA_ALLOWED_ORIGINS": ORIGIN,
        # Each simulated person comes from an address of their own, through one proxy.
        "COSMA_TRUSTED_XFF_ENTRIES": "1",
        "CLERK_ISSUER": peer,
        "CLERK_JWKS_URL": f"{peer}/.well-known/jwks.json",
        "COSMA_KEYRING_DIR": str(home / "keys"),
        "COSMA_SECRETS_DIR": str(home / "secrets"),
        "COSMA_WAREHOUSE_DIR": str(home / "warehouse"),
        "COSMA_EXPORT_DIR": str(home / "exports"),
        # The sandbox is registered by the local bootstrap only (`cosma.sandbox_platform`),
        # so its base URL is a setting the soak's processes apply, not the environment's.
        "SOAK_SANDBOX_URL": peer,
        "SYNC_AUDIENCE": f"{public}/sync",
        "SCHEDULER_SA_EMAIL": SCHEDULER_EMAIL,
        "GOOGLE_CERTS_URL": f"{peer}/oauth2/v3/certs",
        "COSMA_KEYRING_REFRESH_S": "2",
        "COSMA_KEY_RETIRE_GRACE_S": "5",
        "COSMA_SYNC_LEASE_S": "15",
        "COSMA_SYNC_BUDGET_S": "15",
        "COSMA_SYNC_INTERVAL_S": "60",
        "COSMA_SYNC_FIRST_DAYS": str(FIRST_DAYS),
        "COSMA_SYNC_NOW_COOLDOWN_S": "20",
        "COSMA_SYNC_API_TIMEOUT_S": "5",
        "COSMA_OAUTH_TIMEOUT_S": "5",
        "COSMA_OAUTH_REVOKE_TIMEOUT_S": "3",
        "COSMA_LOG_LEVEL": "WARNING",
        "SOAK_PRINCIPAL_TTL_S": str(knobs.principal_ttl_s),
    }


def local_runtime() -> Runtime:
    """The local composition (the deployed platforms plus the sandbox, as `cosma serve`
    builds it) from the environment, with the sandbox served by the peer."""
    import os

    from cosma import sandbox_platform
    from shared import logs
    from shared.settings import Settings

    settings = Settings.from_env()
    logs.configure(settings.log_level)
    peer = os.environ.get("SOAK_SANDBOX_URL", "")
    if peer:
        bases = {**settings.platform_base_urls, sandbox_platform.NAME: peer}
        settings = settings.with_changes(platform_base_urls=bases)
    return sandbox_platform.local_runtime(settings)
