"""Types every platform module shares.

The providers' errors are `shared.errors.ProviderError` and its subclasses,
drawn with the rest of the tree in `shared/errors.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
