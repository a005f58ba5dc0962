"""Local OAuth providers, one per wire protocol, for `tests.support.servers.serve`.

    FormProvider    RFC 6749 form posts (Google, LinkedIn, Microsoft, the sandbox)
    TikTokProvider  TikTok Business: JSON {app_id, secret, auth_code}, errors as
                    HTTP 200 {"code": <non-zero>}
    MetaProvider    Graph API: code -> short-lived -> long-lived token, /me with
                    permissions, DELETE /{user}/permissions

Each answers at the paths of its registry entry (the test settings rebase the
platform onto the server's address), checks the client id and secret, keeps
codes single-use and checks PKCE S256 when a challenge was sent. Switches:

    token_mode   None | "500" | "429" | "slow" | "invalid_grant" | "access_denied"
    revoke_mode  None | "500" | "slow"
    granted      the scopes the grant reports (default: what was asked)

`authorize(url)` plays the browser: it follows the authorization URL and
returns the callback's query (code and state) from the provider's redirect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug.wrappers import Request, Response

from shared.platforms.registry import Registry
from shared.settings import Settings
from tests.support.log_scan import remember
from tests.support.servers import Recorder

CLIENT_SECRET = "test-client-secret-9f3a"
# What a rate-limiting provider asks us to wait ("429" mode).
RETRY_AFTER_S = 7


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _path(url: str | None) -> str:
    return urlsplit(url or "").path


class _Provider:
    def __init__(self, name: str, client_id: str, *, slow_s: float = 3.0) -> None:
        self.name = name
        self.client_id = client_id
        self.entry = Registry.from_settings(Settings()).platform(name)
        self.slow_s = slow_s
        self.token_mode: str | None = None
        self.revoke_mode: str | None = None
        self.granted: tuple[str, ...] | None = None
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: set[str] = set()
        self.issued_refresh: list[str] = []
        self.revoked: list[str] = []
        self.lock = threading.Lock()
        self.app = Recorder(self.handle)

    # ------------------------------------------------------------ browser side

    def authorize(self, url: str) -> dict[str, str]:
        """Follow the authorization URL like a browser; the redirect's query."""
        response = requests.get(url, allow_redirects=False, timeout=5)
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        return {k: v[0] for k, v in query.items()}

    def handle(self, request: Request) -> Response:
        if request.path == _path(self.entry.authorize_url):
            return self._authorize(request)
        return self.endpoint(request)

    def endpoint(self, request: Request) -> Response:  # pragma: no cover - overridden
        raise NotImplementedError

    def _authorize(self, request: Request) -> Response:
        args = request.args
        client = args.get("app_id" if self.name == "tiktok" else "client_id")
        redirect = args.get("redirect_uri", "")
        if client != self.client_id or not redirect:
            return Response("bad client", status=400)
        code = remember(secrets.token_urlsafe(16))
        with self.lock:
            self.codes[code] = {
                "redirect_uri": redirect,
                "challenge": args.get("code_challenge"),
                "scope": args.get("scope", ""),
            }
        params = {"state": args.get("state", ""), "code": code}
        if self.name == "tiktok":
            params["auth_code"] = code
        from urllib.parse import urlencode

        return Response(status=302, headers={"Location": f"{redirect}?{urlencode(params)}"})

    def _take_code(self, code: str) -> dict[str, Any] | None:
        with self.lock:
            return self.codes.pop(code, None)

    def _new_refresh(self) -> str:
        token = remember(f"rt-{self.name}-{secrets.token_urlsafe(24)}")
        with self.lock:
            self.refresh_tokens.add(token)
            self.issued_refresh.append(token)
        return token

    def _switch(self, mode: str | None) -> Response | None:
        if mode == "500":
            return Response("upstream broke", status=500)
        if mode == "429":
            return Response("slow down", status=429, headers={"Retry-After": str(RETRY_AFTER_S)})
        if mode == "slow":
            # Slower than any caller waits: answer nothing afterwards either, or a
            # token issued after the caller gave up would show up in the next test.
            time.sleep(self.slow_s)
            return Response("too late", status=504)
        return None


class FormProvider(_Provider):
    """Google, LinkedIn, Microsoft and the sandbox speak this."""

    def endpoint(self, request: Request) -> Response:
        path = request.path
        if path == _path(self.entry.token_url):
            return self._token(request)
        if path == _path(self.entry.revoke_url):
            return self._revoke(request)
        return Response("not found", status=404)

    def _error(self, error: str, status: int = 400) -> Response:
        return Response(json.dumps({"error": error}), status=status, mimetype="application/json")

    def _token(self, request: Request) -> Response:
        broken = self._switch(self.token_mode)
        if broken is not None:
            return broken
        if self.token_mode == "invalid_grant":
            return self._error("invalid_grant")
        if self.token_mode == "access_denied":
            return self._error("access_denied")
        form = request.form
        if form.get("client_id") != self.client_id or form.get("client_secret") != CLIENT_SECRET:
            return self._error("invalid_client", 401)
        if form.get("grant_type") == "authorization_code":
            found = self._take_code(form.get("code", ""))
            if found is None or found["redirect_uri"] != form.get("redirect_uri"):
                return self._error("invalid_grant")
            if (
                found["challenge"]
                and _challenge(form.get("code_verifier", "")) != found["challenge"]
            ):
                return self._error("invalid_grant")
            scope = " ".join(self.granted) if self.granted is not None else found["scope"]
            return self._tokens(scope)
        if form.get("grant_type") == "refresh_token":
            token = form.get("refresh_token", "")
            if token not in self.refresh_tokens:
                return self._error("invalid_grant")
            return self._tokens(" ".join(self.entry.scopes), rotate_from=token)
        return self._error("unsupported_grant_type")

    def _tokens(self, scope: str, rotate_from: str | None = None) -> Response:
        body: dict[str, Any] = {
            "access_token": remember(f"at-{secrets.token_urlsafe(16)}"),
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": scope,
        }
        if rotate_from is None or self.entry.refresh_rotates:
            body["refresh_token"] = self._new_refresh()
            if rotate_from is not None:
                self.refresh_tokens.discard(rotate_from)
        return Response(json.dumps(body), mimetype="application/json")

    def _revoke(self, request: Request) -> Response:
        broken = self._switch(self.revoke_mode)
        if broken is not None:
            return broken
        token = request.form.get("token", "")
        if self.name != "google_ads" and request.form.get("client_secret") != CLIENT_SECRET:
            return self._error("invalid_client", 401)
        with self.lock:
            self.refresh_tokens.discard(token)
            self.revoked.append(token)
        return Response(status=200)


class TikTokProvider(_Provider):
    def endpoint(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if request.path == _path(self.entry.token_url):
            return self._token(body)
        if request.path == _path(self.entry.refresh_url):
            return self._refresh(body)
        if request.path == _path(self.entry.revoke_url):
            broken = self._switch(self.revoke_mode)
            if broken is not None:
                return broken
            self.revoked.append(str(body.get("access_token")))
            return self._ok({})
        return Response("not found", status=404)

    def _ok(self, data: dict[str, Any]) -> Response:
        payload = {"code": 0, "message": "OK", "request_id": "r1", "data": data}
        return Response(json.dumps(payload), mimetype="application/json")

    def _fail(self, code: int, message: str) -> Response:
        payload = {"code": code, "message": message, "request_id": "r1", "data": {}}
        return Response(json.dumps(payload), mimetype="application/json")

    def _checked(self, body: dict[str, Any]) -> Response | None:
        broken = self._switch(self.token_mode)
        if broken is not None:
            return broken
        if self.token_mode in ("invalid_grant", "access_denied"):
            return self._fail(40131, "Authorization code is expired.")
        if body.get("app_id") != self.client_id or body.get("secret") != CLIENT_SECRET:
            return self._fail(40001, "app_id or secret is wrong")
        return None

    def _token(self, body: dict[str, Any]) -> Response:
        failed = self._checked(body)
        if failed is not None:
            return failed
        if self._take_code(str(body.get("auth_code", ""))) is None:
            return self._fail(40131, "Authorization code is expired.")
        return self._ok(
            {
                "access_token": remember(f"at-{secrets.token_urlsafe(16)}"),
                "refresh_token": self._new_refresh(),
                "access_token_expire_in": 86400,
                "refresh_token_expire_in": 31536000,
                "advertiser_ids": ["7000000001"],
                "scope": [4, 5],
            }
        )

    def _refresh(self, body: dict[str, Any]) -> Response:
        failed = self._checked(body)
        if failed is not None:
            return failed
        if body.get("refresh_token") not in self.refresh_tokens:
            return self._fail(40105, "The access token is invalid.")
        return self._ok(
            {
                "access_token": remember(f"at-{secrets.token_urlsafe(16)}"),
                "refresh_token": body["refresh_token"],
                "access_token_expire_in": 86400,
            }
        )


class MetaProvider(_Provider):
    USER_ID = "10150000000000001"

    def __init__(self, name: str, client_id: str, **kw: Any) -> None:
        super().__init__(name, client_id, **kw)
        self.short: set[str] = set()
        self.long: set[str] = set()

    def _fail(self, code: int, status: int = 400) -> Response:
        body = {"error": {"message": "x", "type": "OAuthException", "code": code}}
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def endpoint(self, request: Request) -> Response:
        graph = _path(self.entry.api_base_url)
        if request.path == _path(self.entry.token_url):
            return self._token(request)
        if request.path == f"{graph}/me":
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in self.long:
                return self._fail(190)
            granted = self.granted if self.granted is not None else ("ads_read",)
            perms = [{"permission": p, "status": "granted"} for p in (*granted, "public_profile")]
            return Response(
                json.dumps({"id": self.USER_ID, "permissions": {"data": perms}}),
                mimetype="application/json",
            )
        if request.method == "DELETE" and request.path.endswith("/permissions"):
            broken = self._switch(self.revoke_mode)
            if broken is not None:
                return broken
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            self.revoked.append(token)
            self.long.discard(token)
            return Response(json.dumps({"success": True}), mimetype="application/json")
        return Response("not found", status=404)

    def _token(self, request: Request) -> Response:
        broken = self._switch(self.token_mode)
        if broken is not None:
            return broken
        if self.token_mode in ("invalid_grant", "access_denied"):
            return self._fail(100)
        form = request.form
        if form.get("client_id") != self.client_id or form.get("client_secret") != CLIENT_SECRET:
            return self._fail(1)
        if form.get("grant_type") == "fb_exchange_token":
            given = form.get("fb_exchange_token", "")
            if given not in self.short and given not in self.long:
                return self._fail(190)
            token = given if given in self.long else remember(f"ll-{secrets.token_urlsafe(24)}")
            self.long.add(token)
            self.issued_refresh.append(token)
            return Response(
                json.dumps({"access_token": token, "token_type": "bearer", "expires_in": 5183944}),
                mimetype="application/json",
            )
        found = self._take_code(form.get("code", ""))
        if found is None or found["redirect_uri"] != form.get("redirect_uri"):
            return self._fail(100)
        token = remember(f"sl-{secrets.token_urlsafe(16)}")
        self.short.add(token)
        return Response(
            json.dumps({"access_token": token, "token_type": "bearer", "expires_in": 3600}),
            mimetype="application/json",
        )


def provider_for(name: str, client_id: str, **kw: Any) -> _Provider:
    if name == "tiktok":
        return TikTokProvider(name, client_id, **kw)
    if name == "meta":
        return MetaProvider(name, client_id, **kw)
    return FormProvider(name, client_id, **kw)
