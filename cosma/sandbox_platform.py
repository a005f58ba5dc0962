"""The sandbox platform, registered by the local bootstrap and nowhere else.

    runtime = sandbox_platform.local_runtime(settings)   # what `cosma serve` and `cosma sync` use

The sandbox is a real OAuth provider (`cosma/sandbox_oauth.py`) and report API
(`cosma/sandbox_reports.py`) on the local server, under `settings.public_url`
(or `settings.platform_base_urls["sandbox"]`), read by its own connector
(`cosma/sandbox_connector.py`). A cloud environment composes
`Runtime(Settings.from_env())`, whose registry holds only the deployed
platforms: there `sandbox` is an unknown platform like any other name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.platforms.cloud import FORM, RFC7009
from shared.platforms.registry import Platform, Registry, rebased

if TYPE_CHECKING:
    from shared.runtime import Runtime
    from shared.settings import Settings

NAME = "sandbox"
# The client id when none is configured (the local provider accepts it).
CLIENT_ID = "cosma-local"
SCOPE = "reports.read"


def entry(settings: Settings) -> Platform:
    base = settings.public_url.rstrip("/") + "/sandbox"
    return rebased(
        Platform(
            name=NAME,
            authorize_url=f"{base}/oauth/authorize",
            token_url=f"{base}/oauth/token",
            revoke_url=f"{base}/oauth/revoke",
            revocation=RFC7009,
            scopes=(SCOPE,),
            scope_note="The local sandbox platform: one read-only scope.",
            pkce=True,
            # Rotating refresh tokens that die when idle, like Microsoft's.
            refresh_rotates=True,
            access_token_ttl_s=3600,
            refresh_token_ttl_s=None,
            refresh_idle_expiry_s=90 * 86_400,
            token_style=FORM,
            api_base_url=f"{base}/api",
            connector="cosma.sandbox_connector:SandboxConnector",
            public_client=True,
        ),
        settings,
    )


def registry(settings: Settings) -> Registry:
    """The deployed platforms plus the sandbox."""
    client_id = settings.platform_client_ids.get(NAME) or CLIENT_ID
    return Registry.from_settings(settings).with_platform(entry(settings), client_id=client_id)


def local_runtime(settings: Settings) -> Runtime:
    from shared.runtime import Runtime

    return Runtime(settings, platforms=registry(settings))
