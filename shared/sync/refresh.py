"""Token refresh for sync: single-flight per connection, under its row lock.

One worker transaction per refresh:

1. `select ... for update` on the connection row: any other refresh of the same
   connection (another run, a reconnect, the key rotation's update) waits or
   skips, and what we read after the lock is the newest refresh token. The row
   must still be active and leased to this run (`LeaseLost` otherwise);
2. open the sealed refresh token (bound to this connection and organization);
3. call the provider's token endpoint (bounded by a timeout, so the lock is too);
4. on success, seal and store a rotated refresh token and `last_refresh_at` in
   the same transaction, then commit. The access token is returned and stays in
   memory only; it is never stored, logged or put in an error.

Failures:

- `InvalidGrant`: the grant is dead. Still under the lock, the row is re-read
  through the update's condition (the ciphertext must still be the one we
  used, so a reconnect that stored a new token is never marked) and set to
  `reauth_required`, with a health text; the lease query never picks it again.
- any other provider failure (`RateLimited` with its Retry-After,
  `ProviderUnavailable` for 5xx and timeouts): nothing changes here; the run
  records the failure and the connection backs off (`shared.sync.backoff`).
- an unreadable stored token: the connection is set to `error` with a health
  text (only a reconnect can repair it), and `InvalidToken` is raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import InvalidGrant, InvalidToken, LeaseLost, NotActive

if TYPE_CHECKING:
    import requests

    from shared.platforms.registry import Platform
    from shared.runtime import Runtime
    from shared.sync.leases import Lease

log = logging.getLogger("cosma.sync.refresh")

_LOCK = """
select org_id, status, token_ciphertext, lease_owner from public.connections
 where id = %s for update
"""

_STORE_ROTATED = """
update public.connections
   set token_ciphertext = %s, key_version = %s, last_refresh_at = now(),
       access_token_expires_at = now() + make_interval(secs => %s), updated_at = now()
 where id = %s
"""

_STORE_REFRESHED = """
update public.connections
   set last_refresh_at = now(),
       access_token_expires_at = now() + make_interval(secs => %s), updated_at = now()
 where id = %s
"""

_MARK_REAUTH = """
update public.connections
   set status = 'reauth_required', health = %s, updated_at = now()
 where id = %s and token_ciphertext = %s and status = 'active'
"""

_MARK_UNREADABLE = """
update public.connections
   set status = 'error', health = %s, updated_at = now()
 where id = %s and token_ciphertext = %s
"""

REAUTH_HEALTH = "the provider refused the stored grant: reconnect this platform"
UNREADABLE_HEALTH = "the stored credential could not be read: reconnect this platform"


@dataclass(frozen=True)
class Refreshed:
    """The access token (memory only) and whether a rotated refresh token was stored."""

    access_token: str
    rotated: bool

    def __repr__(self) -> str:
        return f"Refreshed(rotated={self.rotated})"


def refresh(
    runtime: Runtime,
    lease: Lease,
    *,
    platform: Platform,
    credentials: tuple[str, str],
    http: requests.Session | None = None,
    timeout: float = 10.0,
) -> Refreshed:
    """A fresh access token for the leased connection; see the module docstring."""
    from shared.platforms import oauth

    client_id, client_secret = credentials
    cipher = runtime.cipher
    failure: BaseException | None = None
    result: Refreshed | None = None
    with runtime.worker_db.transaction() as conn:
        row = conn.execute(_LOCK, (lease.connection_id,)).fetchone()
        if row is None or row[1] != "active" or row[2] is None:
            raise NotActive()
        if row[3] != lease.owner:
            # Our lease expired and another run holds the connection now: it syncs.
            raise LeaseLost()
        org_id, sealed = str(row[0]), bytes(row[2])
        try:
            refresh_token = cipher.decrypt(sealed, connection_id=lease.connection_id, org_id=org_id)
        except InvalidToken:
            conn.execute(_MARK_UNREADABLE, (UNREADABLE_HEALTH, lease.connection_id, sealed))
            failure = InvalidToken()
        if failure is None:
            try:
                tokens: Any = oauth.refresh(
                    platform,
                    refresh_token,
                    client_id=client_id,
                    client_secret=client_secret,
                    http=http,
                    timeout=timeout,
                )
            except InvalidGrant as exc:
                conn.execute(_MARK_REAUTH, (REAUTH_HEALTH, lease.connection_id, sealed))
                failure = exc
            else:
                lifetime = int(tokens.expires_in or 3600)
                rotated = bool(tokens.refresh_token) and tokens.refresh_token != refresh_token
                if rotated:
                    stored = cipher.encrypt(
                        tokens.refresh_token, connection_id=lease.connection_id, org_id=org_id
                    )
                    conn.execute(
                        _STORE_ROTATED,
                        (stored.ciphertext, stored.key_version, lifetime, lease.connection_id),
                    )
                else:
                    conn.execute(_STORE_REFRESHED, (lifetime, lease.connection_id))
                result = Refreshed(tokens.access_token, rotated)
        # Other provider errors propagate from inside: the transaction rolls back,
        # which releases the lock and changes nothing.
    if failure is not None:
        log.warning(
            "sync refresh refused",
            extra={
                "fields": {
                    "connection_id": lease.connection_id,
                    "platform": lease.platform,
                    "error_class": getattr(failure, "slug", type(failure).__name__),
                }
            },
        )
        raise failure
    if result is None:  # every path above sets one or the other
        raise RuntimeError("refresh produced no result")
    return result
