"""The sandbox platform's OAuth 2.0 provider, served by the local server.

    GET  /sandbox/oauth/authorize   auto-approves; 302 to redirect_uri with code and state
    POST /sandbox/oauth/token       authorization_code (PKCE S256 checked) and
                                    refresh_token (rotating, like Microsoft's)
    POST /sandbox/oauth/revoke      RFC 7009: 200 whether or not the token was known

A real OAuth server for loopback, small on purpose: one registered client (the
sandbox client id and the `sandbox-client-secret` from the secrets port), one
scope, the redirect URI must be the API's own callback. Codes live 60 s and are
single-use, in memory. Tokens are random; their grants (a SHA-256 of each live
access and refresh token, never the token itself) are kept in
`<state>/sandbox/grants.json` (0600) once `keep_grants_in` names the folder, as
`cosma serve` does, so a restarted server still honours the refresh tokens the
API stored and sandbox connections stay syncable. `access_token_valid()` is
what the sandbox report API checks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from cosma import sandbox_platform
from shared.http import Context, Router, json_response
from shared.platforms import oauth, registry

if TYPE_CHECKING:
    from shared.settings import Settings

_log = logging.getLogger(__name__)
SCOPE = sandbox_platform.SCOPE
CODE_TTL_S = 60
ACCESS_TTL_S = 3600


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    expires_at: float


def ensure_client_secret(settings: Settings) -> None:
    """Local mode: create the sandbox client secret (0600) on first run."""
    folder = settings.secrets_dir
    if folder is None:
        return
    path = Path(folder) / registry.client_secret_name(sandbox_platform.NAME)
    if path.exists():
        return
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


GRANTS_FILE = "grants.json"


class SandboxOAuth:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        # Grants by token digest: access -> expiry, and the live refresh tokens.
        self._access: dict[str, float] = {}
        self._refresh: set[str] = set()
        self._store: Path | None = None

    def keep_grants_in(self, folder: Path) -> None:
        """Keep the grants in `folder` from now on, starting from those it holds."""
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / GRANTS_FILE
        try:
            data = json.loads(path.read_text())
            access = {str(k): float(v) for k, v in data["access"].items()}
            refresh = {str(v) for v in data["refresh"]}
        except FileNotFoundError:
            access, refresh = {}, set()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # Written in one rename, so only a hand edit damages it; the connections
            # then need a reconnect, as after a revocation.
            _log.warning("sandbox grants in %s unreadable: starting without them", path)
            access, refresh = {}, set()
        with self._lock:
            self._store = path
            self._access.update(access)
            self._refresh |= refresh

    def live_refresh_grants(self) -> int:
        """How many refresh tokens are live now: what the provider would still honour."""
        with self._lock:
            return len(self._refresh)

    def access_token_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._access.get(_digest(token))
        return expiry is not None and expiry > self._clock()

    def _save(self) -> None:
        """Write the grants (under `self._lock`) in one rename, readable by us only."""
        if self._store is None:
            return
        now = self._clock()
        self._access = {k: v for k, v in self._access.items() if v > now}
        text = json.dumps({"access": self._access, "refresh": sorted(self._refresh)})
        fd, partial = tempfile.mkstemp(dir=self._store.parent, prefix=".grants.")
        try:
            with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
                handle.write(text)
            os.replace(partial, self._store)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def router(self) -> Router:
        router = Router("sandbox", peer=True)
        router.route("GET", "/sandbox/oauth/authorize")(self._authorize)
        router.route("POST", "/sandbox/oauth/token")(self._token)
        router.route("POST", "/sandbox/oauth/revoke")(self._revoke)
        return router

    # ------------------------------------------------------------ endpoints

    def _authorize(self, ctx: Context) -> Response:
        args = ctx.request.args
        client_id = ctx.runtime.platforms.client_id(sandbox_platform.NAME)
        callback = ctx.settings.public_url.rstrip("/") + "/oauth/callback"
        # An unknown client or redirect URI is never redirected to (RFC 6749 4.1.2.1).
        if args.get("client_id") != client_id or args.get("redirect_uri") != callback:
            return _error("invalid_request", status=400)
        params = {"state": args.get("state", "")}
        if args.get("response_type") != "code":
            params["error"] = "unsupported_response_type"
        elif args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            params["error"] = "invalid_request"
        elif SCOPE not in args.get("scope", "").split():
            params["error"] = "invalid_scope"
        else:
            code = secrets.token_urlsafe(32)
            with self._lock:
                self._codes[code] = _Code(
                    client_id, callback, args["code_challenge"], self._clock() + CODE_TTL_S
                )
            params["code"] = code
        return Response(status=302, headers={"Location": f"{callback}?{urlencode(params)}"})

    def _token(self, ctx: Context) -> Response:
        form = ctx.request.form
        if not self._client_ok(ctx, form.get("client_id", ""), form.get("client_secret", "")):
            return _error("invalid_client", status=401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            with self._lock:
                found = self._codes.pop(form.get("code", ""), None)  # single use
            verifier = form.get("code_verifier", "")
            if (
                found is None
                or found.expires_at <= self._clock()
                or found.redirect_uri != form.get("redirect_uri")
                or not verifier
                or not hmac.compare_digest(oauth.code_challenge(verifier), found.challenge)
            ):
                return _error("invalid_grant")
            return json_response(self._issue())
        if grant == "refresh_token":
            old = _digest(form.get("refresh_token", ""))
            with self._lock:
                known = old in self._refresh
                self._refresh.discard(old)  # rotation: the old one dies now
                self._save()
            if not known:
                return _error("invalid_grant")
            return json_response(self._issue())
        return _error("unsupported_grant_type")

    def _revoke(self, ctx: Context) -> Response:
        form = ctx.request.form
        if not self._client_ok(ctx, form.get("client_id", ""), form.get("client_secret", "")):
            return _error("invalid_client", status=401)
        token = _digest(form.get("token", ""))
        with self._lock:
            self._refresh.discard(token)
            self._access.pop(token, None)
            self._save()
        return Response(status=200)

    # ------------------------------------------------------------ internals

    def _client_ok(self, ctx: Context, client_id: str, secret: str) -> bool:
        expected = ctx.runtime.secrets.get(registry.client_secret_name(sandbox_platform.NAME))
        ours = ctx.runtime.platforms.client_id(sandbox_platform.NAME)
        return client_id == ours and hmac.compare_digest(secret.encode(), expected.encode())

    def _issue(self) -> dict[str, object]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        with self._lock:
            self._access[_digest(access)] = self._clock() + ACCESS_TTL_S
            self._refresh.add(_digest(refresh))
            self._save()
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL_S,
            "refresh_token": refresh,
            "scope": SCOPE,
        }


def _error(code: str, status: int = 400) -> Response:
    return json_response({"error": code}, status=status)


# The local server's one provider: the sandbox report API checks tokens against it.
provider = SandboxOAuth()
