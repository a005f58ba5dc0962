"""Types every platform module shares, and the provider error tree.

    ProviderError (errors.UpstreamError, 502)
    ├── InvalidGrant          the refresh token or code is dead: reconnect needed
    ├── AccessDenied          the user refused consent at the provider
    ├── PermissionDenied      the token works but may not read this account (health)
    ├── RateLimited           429 or a platform quota; carries retry_after seconds
    └── ProviderUnavailable   5xx, timeouts, connection errors: retry later

Messages name the platform and the kind of failure, never a token, code or
secret, and never the provider's raw body (it can echo what we sent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared import errors


class ProviderError(errors.UpstreamError):
    slug = "upstream"


class InvalidGrant(ProviderError):
    slug, title = "invalid-grant", "The provider refused the grant"


class AccessDenied(ProviderError):
    status, slug, title = 400, "access-denied", "Access was denied at the provider"


class PermissionDenied(ProviderError):
    slug, title = "permission-denied", "The provider denied access to the account"


class RateLimited(ProviderError):
    slug, title = "provider-rate-limited", "The provider is rate limiting us"

    def __init__(self, detail: str | None = None, retry_after: float = 60.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    status, slug, title = 503, "provider-unavailable", "The provider is unavailable"


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint answered. `refresh_token` is None when the provider
    did not rotate it (keep the stored one)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_in: int | None = None
    refresh_expires_in: int | None = None
    scopes: tuple[str, ...] = ()
    external_user_id: str | None = None
    # Ad accounts the grant itself names (TikTok answers `advertiser_ids`); a
    # connection asked for "all accounts" reads these.
    account_ids: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never print a token
        return f"TokenSet(expires_in={self.expires_in}, scopes={self.scopes})"


@dataclass(frozen=True)
class Account:
    """An ad account a connection reads, with what its reports need."""

    id: str
    currency: str = "USD"
    timezone: str = "UTC"
    name: str = ""
