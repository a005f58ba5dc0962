"""`Platform`: what the OAuth flow and the sync engine need to know of one ad platform."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.platforms.oauth.style import Revocation, TokenStyle
    from shared.platforms.versions import ApiVersion

__all__ = ["IMPLICIT_SCOPES", "Platform"]

# Scopes that steer the grant (a refresh token, an id token) rather than name a
# permission, often left out of the granted list, and those a provider grants
# every app (Meta's public_profile): never required, never flagged as broader.
IMPLICIT_SCOPES: frozenset[str] = frozenset({"offline_access", "openid", "public_profile"})


@dataclass(frozen=True)
class Platform:
    """Where to send the user (authorize), where to trade a code or a refresh token
    (token, and TikTok's separate refresh endpoint), how to revoke, which scopes
    to ask for, whether PKCE applies, whether refresh tokens rotate, how long
    tokens live, and which report connector reads its API (`api_base_url`)."""

    name: str
    authorize_url: str
    token_url: str
    revoke_url: str | None
    # None: the platform has no revocation endpoint (disconnect deletes our copy).
    revocation: Revocation | None
    scopes: tuple[str, ...]
    scope_note: str
    pkce: bool
    refresh_rotates: bool
    access_token_ttl_s: int
    refresh_token_ttl_s: int | None
    refresh_idle_expiry_s: int | None
    token_style: TokenStyle
    api_base_url: str
    # "module:Class" of the report connector, imported when a sync first needs it.
    connector: str
    # TikTok refreshes at its own endpoint; everyone else at `token_url`.
    refresh_url: str | None = None
    # Extra authorize parameters (Google: offline access and a fresh consent,
    # without which a second connect returns no refresh token).
    authorize_params: tuple[tuple[str, str], ...] = ()
    # Where the person who granted access removes the app by hand, for when
    # revocation at the provider failed or the platform offers none.
    manual_revoke_url: str = ""
    # A public client (PKCE alone proves the caller): an unconfigured client
    # secret is sent empty instead of failing the refresh.
    public_client: bool = False
    # The report API version the connector speaks and its sunset (`versions.py`);
    # None for a platform of our own (the local sandbox).
    api_version: ApiVersion | None = None

    @property
    def required_scopes(self) -> frozenset[str]:
        """Scopes a grant must carry to be useful (implicit ones excluded)."""
        return frozenset(self.scopes) - IMPLICIT_SCOPES
