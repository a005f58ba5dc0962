"""Giving a grant back to its provider, and saying truthfully whether it worked.

Disconnect and erasure delete the stored token whatever happens; revoking
the grant at the provider is a separate fact. A `Revocation` says which:
`revoked` only when the provider confirmed it (or refused the token as
already dead, which is the same for the user), otherwise `not revoked` with
the reason and the page where the person who granted access can remove the
app by hand. A platform without a revocation endpoint (Microsoft) is never
"revoked".

Every call is bounded (`oauth_revoke_timeout_s`) and never raises for
provider trouble: the caller records the outcome and carries on deleting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.platforms import oauth, registry

if TYPE_CHECKING:
    from shared.platforms.base import TokenSet
    from shared.runtime import Runtime

__all__ = ["HELD", "Disconnected", "Revocation", "revoke_held", "revoke_stored", "revoke_tokens"]

# The provider refused the token as dead: nobody can use it any more.
_ALREADY_DEAD = "failed:invalid_grant"


@dataclass(frozen=True)
class Revocation:
    revoked: bool
    # Why not (`not_supported`, `provider_unavailable`, `credential_unreadable`, ...),
    # or `already_invalid` when the provider refused a token that was already dead.
    reason: str = ""
    manual_url: str = ""

    @property
    def status(self) -> str:
        """The `connections.revocation` column."""
        return "revoked" if self.revoked else "not_revoked"

    def detail(self) -> str:
        """For the audit record: no token, no URL parameters."""
        return f"revocation={self.status}" + (f" reason={self.reason}" if self.reason else "")

    def public(self) -> dict[str, Any]:
        body: dict[str, Any] = {"revoked": self.revoked, "reason": self.reason or None}
        if not self.revoked:
            body["remove_access_at"] = self.manual_url or None
        return body


@dataclass(frozen=True)
class Disconnected:
    """The token is deleted; `revocation` says whether the grant died at the provider."""

    connection_id: str
    platform: str
    revocation: Revocation

    def public(self) -> dict[str, Any]:
        return {
            "id": self.connection_id,
            "platform": self.platform,
            "status": "disconnected",
            "token_deleted": True,
            "revocation": self.revocation.public(),
        }


def _outcome(platform: registry.Platform | None, answer: str) -> Revocation:
    manual = platform.manual_revoke_url if platform is not None else ""
    if answer == "revoked":
        return Revocation(True)
    if answer == _ALREADY_DEAD:
        return Revocation(True, "already_invalid")
    return Revocation(False, answer.removeprefix("failed:"), manual)


def revoke_tokens(runtime: Runtime, platform: registry.Platform, tokens: TokenSet) -> Revocation:
    """Give back a grant we will not keep (the callback's refused grants)."""
    return _revoke(
        runtime, platform, tokens.refresh_token or tokens.access_token, tokens.external_user_id
    )


# The columns `revoke_held` reads, in its order: what a connection holds at the provider.
HELD = "id::text, platform, token_ciphertext, external_account_id"


def revoke_held(runtime: Runtime, org_id: str, held: tuple[Any, ...]) -> Disconnected:
    """Revoke what a connection row (`HELD` columns) holds; nothing stored is `no_token`."""
    connection_id, platform, ciphertext, external_user_id = held
    if ciphertext is None:  # no token was stored: nothing at the provider to give back
        return Disconnected(connection_id, platform, Revocation(False, "no_token"))
    revocation = revoke_stored(
        runtime,
        org_id=org_id,
        connection_id=connection_id,
        platform_name=platform,
        ciphertext=bytes(ciphertext),
        external_user_id=external_user_id,
    )
    return Disconnected(connection_id, platform, revocation)


def revoke_stored(
    runtime: Runtime,
    *,
    org_id: str,
    connection_id: str,
    platform_name: str,
    ciphertext: bytes,
    external_user_id: str | None,
) -> Revocation:
    """Open the stored token and revoke it at the provider."""
    try:
        platform = runtime.platforms.platform(platform_name)
    except errors.CosmaError as exc:
        # A platform no longer configured must not keep a token alive here.
        return Revocation(False, exc.slug.replace("-", "_"))
    try:
        token = runtime.cipher.decrypt(ciphertext, connection_id=connection_id, org_id=org_id)
    except errors.InvalidToken:
        return _outcome(platform, "failed:credential_unreadable")
    except errors.CosmaError as exc:  # the keyring itself is unavailable
        return _outcome(platform, f"failed:{exc.slug.replace('-', '_')}")
    return _revoke(runtime, platform, token, external_user_id)


def _revoke(
    runtime: Runtime, platform: registry.Platform, token: str, external_user_id: str | None
) -> Revocation:
    settings = runtime.settings
    if platform.revocation is None or not platform.revoke_url:
        return _outcome(platform, "not_supported")
    try:
        secret = runtime.secrets.get(registry.client_secret_name(platform.name))
        client_id = runtime.platforms.client_id(platform.name)
    except errors.CosmaError as exc:
        return _outcome(platform, f"failed:{exc.slug.replace('-', '_')}")
    answer = oauth.revoke(
        platform,
        token,
        client_id=client_id,
        client_secret=secret,
        external_user_id=external_user_id,
        timeout=settings.oauth_revoke_timeout_s,
    )
    return _outcome(platform, answer)
