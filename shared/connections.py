"""Connections of a client to an ad platform: start, callback, disconnect, list.

    start       an editor or admin of the client asks to connect a platform: a
                single-use state (32 random bytes; only its SHA-256 is stored),
                bound to user, organization, client and platform, with a PKCE
                verifier kept server-side, for ten minutes
    callback    the provider sends the browser back with code and state: the
                state is consumed atomically (a replay finds nothing), the code
                is exchanged outside any transaction with a bounded timeout, and
                one transaction stores the connection, its sealed refresh token,
                the dataset and the audit record
    disconnect  revoke at the provider (bounded), then one transaction deletes the
                ciphertext, marks the connection disconnected with what the
                provider said (`shared.revocation`) and audits it
    list        the client's connections, never token material

Invariants:
- Every entry point resolves the client with `shared.policy.access_client` in
  the caller's transaction before acting, and uses the client it returns.
- Each entry point writes the request's one audit record with its work
  (`audit.record(tx, ...)`); a failure is recorded by the HTTP layer.
- A state that is unknown, forged, expired, used or another user's gives one
  and the same `InvalidState`; the `oauth_states_own` policy already hides
  other users' rows, and the consume statement checks expiry with our clock.
- A provider error stores nothing: the connection row is written only after a
  successful exchange. The plaintext refresh token lives in memory only; the
  cipher binds its ciphertext to the connection id (generated here first) and
  the organization.
- Provisioning is requested in the callback's transaction under a savepoint: if
  the warehouse fails the connection still stands (the token is not lost), the
  audit says `dataset=pending`, and `POST /datasets` provisions it later.
- Platforms without a refresh token (Meta; TikTok's long-term advertiser
  tokens) store their long-lived access token in its place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.errors import AccessDenied, ProviderError
from shared.platforms import oauth, registry
from shared.platforms.base import TokenSet
from shared.policy import Client, access_client
from shared.revocation import HELD, Disconnected, Revocation, revoke_held, revoke_tokens
from shared.tenancy import TenantTransaction, tenant

if TYPE_CHECKING:
    from shared.audit import RequestAudit
    from shared.principal import Principal
    from shared.runtime import Runtime

log = logging.getLogger("cosma.connections")

STATE_TTL_S = 600
CALLBACK_PATH = "/oauth/callback"
# What a connection shows to the people who see its client: never token material.
_LIST = (
    "select c.org_id, x.id::text, x.client_id::text, x.platform, x.status, x.scopes,"
    " x.scopes_flagged, x.account_ids, x.created_at, x.updated_at, x.last_synced_at,"
    " x.health, x.revocation, x.revocation_reason, x.disconnected_at"
    " from clients c left join connections x on x.client_id = c.id"
    " where c.id = {}::uuid order by x.created_at"
)
_LIST_NAMES = (
    "id",
    "client_id",
    "platform",
    "status",
    "scopes",
    "scopes_flagged",
    "account_ids",
    "created_at",
    "updated_at",
    "last_synced_at",
    "health",
    "revocation",
    "revocation_reason",
    "disconnected_at",
)


@dataclass(frozen=True)
class Started:
    authorization_url: str
    expires_in: int

    def public(self) -> dict[str, Any]:
        return {"authorization_url": self.authorization_url, "expires_in": self.expires_in}


@dataclass(frozen=True)
class Connected:
    connection_id: str
    client_id: str
    platform: str
    scopes_flagged: bool
    dataset: str  # "ready" or "pending"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.connection_id,
            "client_id": self.client_id,
            "platform": self.platform,
            "scopes_flagged": self.scopes_flagged,
            "dataset": self.dataset,
        }


def redirect_uri(runtime: Runtime) -> str:
    return runtime.settings.public_url.rstrip("/") + CALLBACK_PATH


def _state_hash(state: str) -> bytes:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).digest()


def _timestamp(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _canonical(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return ""


# ---------------------------------------------------------------- start


def start(
    runtime: Runtime,
    principal: Principal,
    audit: RequestAudit,
    platform_name: str,
    client_id: str,
    account_ids: list[str] | None = None,
) -> Started:
    """Create the single-use state and return the provider's authorization URL."""
    platform = runtime.platforms.platform(platform_name)
    state = secrets.token_urlsafe(32)
    verifier = oauth.new_code_verifier() if platform.pkce else None
    callback = redirect_uri(runtime)
    with tenant(runtime.db, principal) as tx:
        client = access_client(tx, principal, "connect", client_id)
        oauth_client_id = runtime.platforms.client_id(platform.name)
        tx.execute(
            "insert into oauth_states (state_hash, org_id, user_id, client_id, platform,"
            " code_verifier, redirect_uri, expires_at, account_ids)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                _state_hash(state),
                principal.org_id,
                principal.user_id,
                client.id,
                platform.name,
                verifier,
                callback,
                _timestamp(runtime.clock() + STATE_TTL_S),
                list(account_ids or []),
            ),
        )
        audit.record(
            tx,
            resource=f"/clients/{client.id}/connections",
            detail=f"start platform={platform.name}",
        )
    url = oauth.authorization_url(
        platform,
        client_id=oauth_client_id,
        redirect_uri=callback,
        state=state,
        code_verifier=verifier,
    )
    return Started(url, STATE_TTL_S)


# ---------------------------------------------------------------- callback


@dataclass(frozen=True)
class _State:
    org_id: str
    client_id: str
    platform: str
    code_verifier: str | None
    redirect_uri: str
    account_ids: list[str]


def consume_state(
    runtime: Runtime, tx: TenantTransaction, principal: Principal, state: str
) -> _State:
    """Mark the state used, atomically, or raise InvalidState. Commit before the exchange."""
    if not state or len(state) > 256:
        raise errors.InvalidState()
    row = tx.execute(
        "update oauth_states set used_at = now()"
        " where state_hash = %s and used_at is null and expires_at > %s"
        " and user_id = %s and org_id = %s"
        " returning org_id, client_id::text, platform, code_verifier, redirect_uri, account_ids",
        (_state_hash(state), _timestamp(runtime.clock()), principal.user_id, principal.org_id),
    ).fetchone()
    if row is None:
        raise errors.InvalidState()
    return _State(row[0], row[1], row[2], row[3], row[4], list(row[5] or []))


def exchange(runtime: Runtime, consumed: _State, code: str) -> tuple[registry.Platform, TokenSet]:
    """The provider's tokens for `code`: no transaction is open while we wait."""
    if not code or len(code) > 4096:
        raise errors.InvalidState()
    settings = runtime.settings
    platform = runtime.platforms.platform(consumed.platform)
    tokens = oauth.exchange_code(
        platform,
        code,
        redirect_uri=consumed.redirect_uri,
        code_verifier=consumed.code_verifier,
        client_id=runtime.platforms.client_id(platform.name),
        client_secret=runtime.secrets.get(registry.client_secret_name(platform.name)),
        timeout=settings.oauth_timeout_s,
    )
    return platform, tokens


def check_scopes(runtime: Runtime, platform: registry.Platform, granted: tuple[str, ...]) -> bool:
    """True when the grant is broader than the registry's scopes (recorded and flagged).

    A grant that lacks a required scope is useless: it is revoked (best effort)
    by the caller and refused here as AccessDenied. TikTok sets permissions on
    the app and reports ids, so there is nothing to compare.
    """
    if not platform.scopes:
        return False
    have = set(granted)
    if platform.required_scopes - have:
        raise AccessDenied(f"{platform.name} granted less access than reports need.")
    extra = have - set(platform.scopes) - registry.IMPLICIT_SCOPES
    if extra:
        log.warning(
            "broader grant than requested",
            extra={"fields": {"platform": platform.name, "extra_scopes": sorted(extra)}},
        )
    return bool(extra)


def store(
    runtime: Runtime,
    tx: TenantTransaction,
    principal: Principal,
    audit: RequestAudit,
    consumed: _State,
    platform: registry.Platform,
    tokens: TokenSet,
    scopes_flagged: bool,
) -> Connected:
    """One transaction: connection, sealed token, dataset (savepoint), audit."""
    client = access_client(tx, principal, "connect", consumed.client_id)
    connection_id = str(uuid.uuid4())
    credential = tokens.refresh_token or tokens.access_token
    sealed = runtime.cipher.encrypt(
        credential, connection_id=connection_id, org_id=principal.org_id
    )
    tx.execute(
        "insert into connections (id, org_id, client_id, platform, external_account_id,"
        " status, scopes, scopes_flagged, token_ciphertext, key_version, created_by,"
        " account_ids) values (%s, %s, %s, %s, %s, 'active', %s, %s, %s, %s, %s, %s)",
        (
            connection_id,
            principal.org_id,
            client.id,
            platform.name,
            (tokens.external_user_id or None) and str(tokens.external_user_id)[:128],
            list(tokens.scopes),
            scopes_flagged,
            sealed.ciphertext,
            sealed.key_version,
            principal.user_id,
            # "All accounts" on a platform whose grant names them (TikTok) means
            # exactly those: its report API cannot list them without the app secret
            # in a URL.
            consumed.account_ids or list(tokens.account_ids),
        ),
    )
    dataset = _provision(runtime, tx, principal, client, platform.name)
    audit.record(
        tx,
        resource=f"/connections/{connection_id}",
        detail=(
            f"connected platform={platform.name} client={client.id}"
            f" scopes_flagged={str(scopes_flagged).lower()} dataset={dataset}"
        ),
    )
    return Connected(connection_id, client.id, platform.name, scopes_flagged, dataset)


def _provision(
    runtime: Runtime, tx: TenantTransaction, principal: Principal, client: Client, name: str
) -> str:
    """Ask for the dataset under a savepoint; a warehouse failure leaves it pending."""
    from shared import provisioning

    try:
        with tx.conn.transaction():  # a savepoint inside the caller's transaction
            provisioning.ensure_dataset(runtime, tx, principal, client, name)
    except errors.CosmaError as exc:
        log.warning("dataset provisioning deferred: %s", exc.slug)
        return "pending"
    return "ready"


def callback(
    runtime: Runtime, principal: Principal, audit: RequestAudit, code: str, state: str, error: str
) -> Connected:
    """The whole callback; raises our errors (nothing stored) or returns the connection."""
    with tenant(runtime.db, principal) as tx:
        consumed = consume_state(runtime, tx, principal, state)
    # The state is spent from here on, whatever happens next.
    if error:
        if error == "access_denied":
            raise AccessDenied("Access was denied at the provider.")
        raise ProviderError("The provider could not complete the authorization.")
    platform, tokens = exchange(runtime, consumed, code)
    try:
        flagged = check_scopes(runtime, platform, tokens.scopes)
    except AccessDenied:
        revoke_tokens(runtime, platform, tokens)
        raise
    with tenant(runtime.db, principal) as tx:
        return store(runtime, tx, principal, audit, consumed, platform, tokens, flagged)


# ---------------------------------------------------------------- disconnect


def disconnect(
    runtime: Runtime, principal: Principal, audit: RequestAudit, connection_id: str
) -> Disconnected:
    """Revoke at the provider, then delete the token and audit, in one transaction."""
    canonical = _canonical(connection_id)
    if not canonical:
        raise errors.NotFound("No such connection.")
    with tenant(runtime.db, principal) as tx:
        # S608: HELD is a constant column list; the id is a parameter.
        statement = f"select client_id::text, {HELD} from connections where id = %s"  # noqa: S608
        row = tx.execute(statement, (canonical,)).fetchone()
        if row is None:
            raise errors.NotFound("No such connection.")
        client = access_client(tx, principal, "disconnect", row[0])
    done = revoke_held(runtime, principal.org_id, row[1:])
    with tenant(runtime.db, principal) as tx:
        access_client(tx, principal, "disconnect", client.id)
        tx.execute(
            _DISCONNECT + " where id = %s", (*_disconnect_values(done.revocation), canonical)
        )
        audit.record(tx, resource=f"/connections/{canonical}", detail=done.revocation.detail())
    return done


# Delete the token now; record what the provider said about the grant.
_DISCONNECT = (
    "update connections set token_ciphertext = null, key_version = null,"
    " status = 'disconnected', revocation = %s, revocation_reason = %s,"
    " disconnected_at = now(), updated_at = now()"
)


def _disconnect_values(revocation: Revocation) -> tuple[str, str | None]:
    return revocation.status, revocation.reason or None


# ---------------------------------------------------------------- list


def list_connections(
    runtime: Runtime, principal: Principal, audit: RequestAudit, client_id: str
) -> list[dict[str, Any]]:
    """The client's connections (never token material).

    One round trip, as the query route's plan: under RLS, the client's
    organization (for `require_found`) with its connections, and the request's
    record in the same statement, written only if the client is visible.
    Nothing is answered before that record is durable."""
    canonical = _canonical(client_id)
    if not canonical:
        raise errors.NotFound("No such client.")
    rows = audit.read_client_listing(
        principal, _LIST, canonical, resource=f"/connections?client_id={canonical}"
    )
    return [
        {
            name: (value.isoformat() if isinstance(value, dt.datetime) else value)
            for name, value in zip(_LIST_NAMES, row[1:], strict=True)
        }
        for row in rows
        if row[1] is not None  # the client's row alone: no connection yet
    ]
