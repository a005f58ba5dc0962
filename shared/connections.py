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
                ciphertext, marks the connection revoked and audits the outcome
    list        the client's connections, never token material

Invariants:
- Every entry point resolves the client's organization with
  `shared.policy.require_client` in the caller's transaction before acting.
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
from shared.policy import require_client

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from shared.http import Context
    from shared.principal import Principal
    from shared.runtime import Runtime

log = logging.getLogger("cosma.connections")

STATE_TTL_S = 600
CALLBACK_PATH = "/oauth/callback"
# What a connection shows to the people who see its client: never token material.
_LIST = (
    "select id::text, client_id::text, platform, status, scopes, scopes_flagged, account_ids,"
    " created_at, updated_at, last_synced_at, health"
    " from connections where client_id = %s order by created_at"
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


@dataclass(frozen=True)
class Disconnected:
    connection_id: str
    revoke: str

    def public(self) -> dict[str, Any]:
        return {"id": self.connection_id, "status": "revoked", "revoke": self.revoke}


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
    tx: Any,
    principal: Principal,
    platform_name: str,
    client_id: str,
    account_ids: list[str] | None = None,
) -> Started:
    """Create the single-use state and return the provider's authorization URL."""
    platform = runtime.platforms.platform(platform_name)
    require_client(tx, principal, "connect", client_id)
    oauth_client_id = runtime.platforms.client_id(platform.name)
    state = secrets.token_urlsafe(32)
    verifier = oauth.new_code_verifier() if platform.pkce else None
    callback = redirect_uri(runtime)
    tx.execute(
        "insert into oauth_states (state_hash, org_id, user_id, client_id, platform,"
        " code_verifier, redirect_uri, expires_at, account_ids)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            _state_hash(state),
            principal.org_id,
            principal.user_id,
            _canonical(client_id),
            platform.name,
            verifier,
            callback,
            _timestamp(runtime.clock() + STATE_TTL_S),
            list(account_ids or []),
        ),
    )
    url = oauth.authorization_url(
        platform,
        client_id=oauth_client_id,
        redirect_uri=callback,
        state=state,
        code_verifier=verifier,
    )
    tx.audit(
        resource=f"/clients/{_canonical(client_id)}/connections",
        detail=f"start platform={platform.name}",
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


def consume_state(runtime: Runtime, tx: Any, principal: Principal, state: str) -> _State:
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


def exchange(runtime: Runtime, consumed: _State, code: str) -> tuple[registry.Platform, Any]:
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
    tx: Any,
    principal: Principal,
    consumed: _State,
    platform: registry.Platform,
    tokens: Any,
    scopes_flagged: bool,
) -> Connected:
    """One transaction: connection, sealed token, dataset (savepoint), audit."""
    require_client(tx, principal, "connect", consumed.client_id)
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
            consumed.client_id,
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
    dataset = _provision(runtime, tx, principal, consumed.client_id, platform.name)
    tx.audit(
        resource=f"/connections/{connection_id}",
        detail=(
            f"connected platform={platform.name} client={consumed.client_id}"
            f" scopes_flagged={str(scopes_flagged).lower()} dataset={dataset}"
        ),
    )
    return Connected(connection_id, consumed.client_id, platform.name, scopes_flagged, dataset)


def _provision(runtime: Runtime, tx: Any, principal: Principal, client_id: str, name: str) -> str:
    """Ask for the dataset under a savepoint; a warehouse failure leaves it pending."""
    try:
        from shared import provisioning
    except ImportError:  # pragma: no cover - the datasets module ships with shared
        return "pending"
    try:
        with tx.conn.transaction():  # a savepoint inside the caller's transaction
            provisioning.provision(runtime, tx, principal, client_id, name, action="connect")
    except errors.CosmaError as exc:
        log.warning("dataset provisioning deferred: %s", exc.slug)
        return "pending"
    return "ready"


def revoke_quietly(runtime: Runtime, platform: registry.Platform, tokens: Any) -> str:
    """Give back a grant we will not keep (best effort, bounded)."""
    settings = runtime.settings
    try:
        secret = runtime.secrets.get(registry.client_secret_name(platform.name))
    except errors.CosmaError:
        return "failed:unavailable"
    return oauth.revoke(
        platform,
        tokens.refresh_token or tokens.access_token,
        client_id=runtime.platforms.client_id(platform.name),
        client_secret=secret,
        external_user_id=tokens.external_user_id,
        timeout=settings.oauth_revoke_timeout_s,
    )


def callback(ctx: Context, principal: Principal, code: str, state: str, error: str) -> Connected:
    """The whole callback; raises our errors (nothing stored) or returns the connection."""
    runtime = ctx.runtime
    with ctx.tenant() as tx:
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
        revoke_quietly(runtime, platform, tokens)
        raise
    with ctx.tenant() as tx:
        return store(runtime, tx, principal, consumed, platform, tokens, flagged)


# ---------------------------------------------------------------- disconnect


def disconnect(ctx: Context, principal: Principal, connection_id: str) -> Disconnected:
    """Revoke at the provider, then delete the token and audit, in one transaction."""
    runtime = ctx.runtime
    canonical = _canonical(connection_id)
    if not canonical:
        raise errors.NotFound("No such connection.")
    with ctx.tenant() as tx:
        row = tx.execute(
            "select client_id::text, platform, token_ciphertext, external_account_id"
            " from connections where id = %s",
            (canonical,),
        ).fetchone()
        if row is None:
            raise errors.NotFound("No such connection.")
        client_id, name, ciphertext, external_user_id = row
        require_client(tx, principal, "disconnect", client_id)
    outcome = "none:no_token"
    if ciphertext is not None:
        outcome = _revoke_stored(
            runtime, principal, canonical, name, bytes(ciphertext), external_user_id
        )
    with ctx.tenant() as tx:
        require_client(tx, principal, "disconnect", client_id)
        tx.execute(
            "update connections set token_ciphertext = null, key_version = null,"
            " status = 'revoked', updated_at = now() where id = %s",
            (canonical,),
        )
        tx.audit(resource=f"/connections/{canonical}", detail=f"revoke={outcome}")
    return Disconnected(canonical, outcome)


def _revoke_stored(
    runtime: Runtime,
    principal: Principal,
    connection_id: str,
    name: str,
    ciphertext: bytes,
    external_user_id: str | None,
) -> str:
    from shared.errors import InvalidToken

    settings = runtime.settings
    try:
        platform = runtime.platforms.platform(name)
        token = runtime.cipher.decrypt(
            ciphertext, connection_id=connection_id, org_id=principal.org_id
        )
        secret = runtime.secrets.get(registry.client_secret_name(name))
        oauth_client_id = runtime.platforms.client_id(name)
    except InvalidToken:
        return "failed:credential_unreadable"
    except errors.CosmaError as exc:
        # A platform no longer configured must not keep a token alive here.
        return f"failed:{exc.slug.replace('-', '_')}"
    return oauth.revoke(
        platform,
        token,
        client_id=oauth_client_id,
        client_secret=secret,
        external_user_id=external_user_id,
        timeout=settings.oauth_revoke_timeout_s,
    )


# ---------------------------------------------------------------- list


def list_connections(tx: Any, principal: Principal, client_id: str) -> list[dict[str, Any]]:
    require_client(tx, principal, "read", client_id)
    rows = tx.execute(_LIST, (_canonical(client_id),)).fetchall()
    return [
        {
            name: (value.isoformat() if isinstance(value, dt.datetime) else value)
            for name, value in zip(_LIST_NAMES, row, strict=True)
        }
        for row in rows
    ]


# ---------------------------------------------------------------- callback response


def callback_response(ctx: Context, code: str, state: str, error: str) -> Response:
    """The callback as the browser sees it: a redirect to the app, never carrying
    the code or a token. A caller that asks for JSON (`Accept: application/json`,
    the frontend calling the API itself) gets JSON, or problem+json on failure."""
    from shared.http import json_response

    wants_json = "application/json" in ctx.request.headers.get("Accept", "")
    try:
        principal = ctx.principal()
        connected = callback(ctx, principal, code, state, error)
    except errors.CosmaError as exc:
        if wants_json:
            raise
        _audit_failure(ctx, exc)
        return _redirect(ctx, {"status": "error", "reason": exc.slug})
    if wants_json:
        return json_response(
            {
                "id": connected.connection_id,
                "client_id": connected.client_id,
                "platform": connected.platform,
                "scopes_flagged": connected.scopes_flagged,
                "dataset": connected.dataset,
            }
        )
    return _redirect(
        ctx,
        {"status": "connected", "platform": connected.platform, "client_id": connected.client_id},
    )


def _redirect(ctx: Context, params: dict[str, str]) -> Response:
    from urllib.parse import urlencode

    from werkzeug.wrappers import Response

    target = f"{ctx.runtime.settings.app_url.rstrip('/')}/connections?{urlencode(params)}"
    return Response(status=302, headers={"Location": target})


def _audit_failure(ctx: Context, exc: errors.CosmaError) -> None:
    """The route's one audit record for a failure answered with a redirect."""
    principal = ctx.known_principal
    if principal is None or ctx.audited:
        return
    if exc.status in (401, 403, 404):
        outcome = "denied"
    elif exc.status < 500:
        outcome = "rejected"
    else:
        outcome = "error"
    with ctx.runtime.db.tenant(principal, request_id=ctx.request_id, ctx=ctx) as tx:
        tx.audit(resource=ctx.request.path, outcome=outcome, detail=f"error={exc.slug}")
