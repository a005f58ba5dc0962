"""The token protocol of each platform: authorize URL, code exchange, refresh, revoke.

Three wire styles (`Platform.token_style`):

    form         RFC 6749 form posts, client secret in the body (Google, LinkedIn,
                 Microsoft, the sandbox); errors as {"error": "invalid_grant", ...}
    tiktok_json  JSON {app_id, secret, auth_code | refresh_token}; HTTP 200 with
                 {"code": <non-zero>, "message": ...} on errors
    meta_graph   Graph API: code -> short-lived token -> long-lived token
                 (fb_exchange_token), then /me for the user id and granted
                 permissions; errors as {"error": {"code": 190, ...}}

Errors map once, here, onto `shared.platforms.base`: InvalidGrant (dead code or
token), AccessDenied, RateLimited (429 and platform quotas, honouring
Retry-After), ProviderUnavailable (5xx, timeouts, connection errors) and
ProviderError for the rest. Messages name the platform and the kind of
failure, never a token, a code, a secret or the provider's body.

Secrets travel in request bodies or headers, never in URLs (urllib3 logs URLs
at debug level). Every call has a timeout.
"""

from __future__ import annotations

# Field names contain "token"; their values are URLs and protocol names, not secrets.
# ruff: noqa: S105
import base64
import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from shared.errors import (
    AccessDenied,
    InvalidGrant,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from shared.platforms.base import TokenSet
from shared.platforms.registry import Platform

if TYPE_CHECKING:
    # Imported where a call is made: listing connections never loads it (cold start).
    import requests

__all__ = [
    "authorization_url",
    "code_challenge",
    "exchange_code",
    "new_code_verifier",
    "refresh",
    "revoke",
]

log = logging.getLogger("cosma.oauth")

# TikTok business codes (HTTP 200 bodies): a dead token or code, and throttling.
_TIKTOK_INVALID_GRANT = frozenset({40102, 40105, 40131})
_TIKTOK_RATE_LIMITED = frozenset({40100})
# Graph API: 190 is a dead token, 100 on the token endpoint a bad code;
# 4/17/32/613 and 80000-80014 are rate limits; 1/2 are temporary.
_META_RATE_LIMITED = frozenset({4, 17, 32, 613})
_META_TEMPORARY = frozenset({1, 2})


# ---------------------------------------------------------------- authorize


def new_code_verifier() -> str:
    """A PKCE code verifier: 86 characters of base64url (RFC 7636 allows 43-128)."""
    return secrets.token_urlsafe(64)


def code_challenge(verifier: str) -> str:
    """The S256 challenge of a verifier: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    platform: Platform,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    code_verifier: str | None = None,
) -> str:
    """Where the browser goes to grant access. Carries no secret."""
    params: dict[str, str] = {platform.client_id_param: client_id}
    if platform.token_style != "tiktok_json":
        params["response_type"] = "code"
    params["redirect_uri"] = redirect_uri
    params["state"] = state
    if platform.scopes:
        params["scope"] = platform.scope_separator.join(platform.scopes)
    if platform.pkce and code_verifier:
        params["code_challenge"] = code_challenge(code_verifier)
        params["code_challenge_method"] = "S256"
    params.update(dict(platform.authorize_params))
    return f"{platform.authorize_url}?{urlencode(params)}"


# ---------------------------------------------------------------- exchange


def exchange_code(
    platform: Platform,
    code: str,
    *,
    redirect_uri: str,
    code_verifier: str | None,
    client_id: str,
    client_secret: str,
    http: requests.Session | None = None,
    timeout: float = 10,
) -> TokenSet:
    """Trade an authorization code for tokens."""
    session = http or _session()
    if platform.token_style == "tiktok_json":
        body = {"app_id": client_id, "secret": client_secret, "auth_code": code}
        return _tiktok_tokens(
            platform, _tiktok_call(platform, session, platform.token_url, body, timeout)
        )
    if platform.token_style == "meta_graph":
        return _meta_exchange(
            platform, session, code, redirect_uri, client_id, client_secret, timeout
        )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if platform.pkce and code_verifier:
        form["code_verifier"] = code_verifier
    return _form_tokens(platform, _form_call(platform, session, platform.token_url, form, timeout))


def refresh(
    platform: Platform,
    refresh_token: str,
    *,
    client_id: str,
    client_secret: str,
    http: requests.Session | None = None,
    timeout: float = 10,
) -> TokenSet:
    """A fresh access token. `TokenSet.refresh_token` is the rotated one, or None
    when the provider kept the old one (store it only when it is not None)."""
    session = http or _session()
    if platform.token_style == "tiktok_json":
        body = {
            "app_id": client_id,
            "secret": client_secret,
            "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        }
        url = platform.refresh_url or platform.token_url
        tokens = _tiktok_tokens(platform, _tiktok_call(platform, session, url, body, timeout))
        return _unless_same(tokens, refresh_token)
    if platform.token_style == "meta_graph":
        # Meta has no refresh token: re-exchanging the long-lived token proves it is
        # alive (error 190 when not) and yields an access token to use.
        form = {
            "grant_type": "fb_exchange_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "fb_exchange_token": refresh_token,
        }
        answer = _meta_call(platform, session, "POST", platform.token_url, timeout, data=form)
        token = _required(platform, answer, "access_token")
        tokens = TokenSet(
            access_token=token, refresh_token=token, expires_in=_int(answer.get("expires_in"))
        )
        return _unless_same(tokens, refresh_token)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    tokens = _form_tokens(
        platform, _form_call(platform, session, platform.token_url, form, timeout)
    )
    return _unless_same(tokens, refresh_token)


def revoke(
    platform: Platform,
    token: str,
    *,
    client_id: str,
    client_secret: str,
    external_user_id: str | None = None,
    http: requests.Session | None = None,
    timeout: float = 5,
) -> str:
    """Revoke a grant at the provider. Never raises for provider trouble: the
    outcome is "revoked", "not_supported" or "failed:<class>" (for the audit)."""
    if platform.revoke_style == "none" or not platform.revoke_url:
        return "not_supported"
    session = http or _session()
    try:
        if platform.revoke_style == "tiktok_json":
            body = {"app_id": client_id, "secret": client_secret, "access_token": token}
            _tiktok_call(platform, session, platform.revoke_url, body, timeout)
        elif platform.revoke_style == "meta_permissions":
            url = platform.revoke_url.replace("{user_id}", external_user_id or "me")
            headers = {"Authorization": f"Bearer {token}"}
            _meta_call(platform, session, "DELETE", url, timeout, headers=headers)
        elif platform.revoke_style == "google":
            _form_call(platform, session, platform.revoke_url, {"token": token}, timeout)
        else:  # rfc7009
            form = {"token": token, "client_id": client_id, "client_secret": client_secret}
            _form_call(platform, session, platform.revoke_url, form, timeout)
    except ProviderError as exc:
        return f"failed:{exc.slug.replace('-', '_')}"
    return "revoked"


# ---------------------------------------------------------------- transport


def _session() -> requests.Session:
    import requests

    return requests.Session()


def _send(
    platform: Platform,
    call: Callable[[], requests.Response],
) -> requests.Response:
    """Run one HTTP call; transport failures, 429 and 5xx become provider errors."""
    import requests

    try:
        response = call()
    except requests.Timeout:
        raise ProviderUnavailable(f"{platform.name} did not answer in time.") from None
    except requests.RequestException:
        raise ProviderUnavailable(f"{platform.name} could not be reached.") from None
    if response.status_code == 429:
        raise RateLimited(
            f"{platform.name} is rate limiting us.",
            retry_after=_retry_after(response.headers.get("Retry-After")),
        )
    if response.status_code >= 500:
        raise ProviderUnavailable(f"{platform.name} answered with a server error.")
    return response


def _json(platform: Platform, response: requests.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        value = None
    if not isinstance(value, dict):
        if response.status_code < 400 and not response.content:
            return {}
        raise ProviderError(f"{platform.name} answered with an unreadable body.")
    return value


def _form_call(
    platform: Platform,
    session: requests.Session,
    url: str,
    form: Mapping[str, str],
    timeout: float,
) -> dict[str, Any]:
    response = _send(
        platform,
        lambda: session.post(
            url, data=dict(form), headers={"Accept": "application/json"}, timeout=timeout
        ),
    )
    if response.status_code >= 400:
        body = _json_or_empty(response)
        error = str(body.get("error", "")) if isinstance(body.get("error"), str) else ""
        if error == "invalid_grant" or (error == "invalid_token" and "revoke" in url):
            raise InvalidGrant(f"{platform.name} refused the grant (invalid_grant).")
        if error == "access_denied":
            raise AccessDenied(f"Access was denied at {platform.name}.")
        if error in ("invalid_client", "unauthorized_client"):
            raise ProviderError(f"{platform.name} refused our client credentials.")
        if error == "temporarily_unavailable":
            raise ProviderUnavailable(f"{platform.name} is temporarily unavailable.")
        raise ProviderError(f"{platform.name} refused the request ({error or 'no reason'}).")
    return _json(platform, response)


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _tiktok_call(
    platform: Platform,
    session: requests.Session,
    url: str,
    body: Mapping[str, Any],
    timeout: float,
) -> dict[str, Any]:
    response = _send(platform, lambda: session.post(url, json=dict(body), timeout=timeout))
    answer = _json(platform, response)
    code = answer.get("code")
    if response.status_code >= 400 or code != 0:
        number = code if isinstance(code, int) else -1
        if number in _TIKTOK_INVALID_GRANT:
            raise InvalidGrant(f"{platform.name} refused the grant (code {number}).")
        if number in _TIKTOK_RATE_LIMITED:
            raise RateLimited(f"{platform.name} is rate limiting us.", retry_after=60.0)
        if number >= 50000:
            raise ProviderUnavailable(f"{platform.name} reported an internal error.")
        raise ProviderError(f"{platform.name} refused the request (code {number}).")
    data = answer.get("data")
    return data if isinstance(data, dict) else {}


def _meta_call(
    platform: Platform,
    session: requests.Session,
    method: str,
    url: str,
    timeout: float,
    *,
    data: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    response = _send(
        platform,
        lambda: session.request(
            method,
            url,
            data=dict(data) if data else None,
            params=dict(params) if params else None,
            headers=dict(headers) if headers else None,
            timeout=timeout,
        ),
    )
    answer = _json_or_empty(response) if response.status_code >= 400 else _json(platform, response)
    error = answer.get("error")
    if response.status_code >= 400 or isinstance(error, dict):
        detail = error if isinstance(error, dict) else {}
        raw = detail.get("code")
        code = raw if isinstance(raw, int) else -1
        if code == 190 or (code == 100 and "oauth/access_token" in url):
            raise InvalidGrant(f"{platform.name} refused the grant (code {code}).")
        if code in _META_RATE_LIMITED or 80000 <= code <= 80014:
            raise RateLimited(f"{platform.name} is rate limiting us.", retry_after=300.0)
        if code in _META_TEMPORARY or detail.get("is_transient") is True:
            raise ProviderUnavailable(f"{platform.name} reported a temporary error.")
        if code in (10, 200) or 200 <= code <= 299:
            raise AccessDenied(f"{platform.name} denied a permission (code {code}).")
        raise ProviderError(f"{platform.name} refused the request (code {code}).")
    return answer


def _meta_exchange(
    platform: Platform,
    session: requests.Session,
    code: str,
    redirect_uri: str,
    client_id: str,
    client_secret: str,
    timeout: float,
) -> TokenSet:
    short = _meta_call(
        platform,
        session,
        "POST",
        platform.token_url,
        timeout,
        data={
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "code": code,
        },
    )
    long_lived = _meta_call(
        platform,
        session,
        "POST",
        platform.token_url,
        timeout,
        data={
            "grant_type": "fb_exchange_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "fb_exchange_token": _required(platform, short, "access_token"),
        },
    )
    token = _required(platform, long_lived, "access_token")
    me = _meta_call(
        platform,
        session,
        "GET",
        f"{platform.api_base_url}/me",
        timeout,
        params={"fields": "id,permissions"},
        headers={"Authorization": f"Bearer {token}"},
    )
    granted = tuple(
        str(p.get("permission"))
        for p in (me.get("permissions") or {}).get("data", [])
        if isinstance(p, dict) and p.get("status") == "granted"
    )
    user_id = me.get("id")
    return TokenSet(
        access_token=token,
        refresh_token=token,
        expires_in=_int(long_lived.get("expires_in")),
        scopes=granted,
        external_user_id=str(user_id) if user_id else None,
    )


# ---------------------------------------------------------------- parsing


def _form_tokens(platform: Platform, answer: dict[str, Any]) -> TokenSet:
    return TokenSet(
        access_token=_required(platform, answer, "access_token"),
        refresh_token=_str_or_none(answer.get("refresh_token")),
        expires_in=_int(answer.get("expires_in")),
        refresh_expires_in=_int(answer.get("refresh_token_expires_in")),
        scopes=_scopes(answer.get("scope")),
        external_user_id=_str_or_none(answer.get("user_id") or answer.get("open_id")),
    )


def _tiktok_tokens(platform: Platform, data: dict[str, Any]) -> TokenSet:
    return TokenSet(
        access_token=_required(platform, data, "access_token"),
        refresh_token=_str_or_none(data.get("refresh_token")),
        expires_in=_int(data.get("access_token_expire_in") or data.get("expires_in")),
        refresh_expires_in=_int(
            data.get("refresh_token_expire_in") or data.get("refresh_token_expires_in")
        ),
        scopes=_scopes(data.get("scope")),
        external_user_id=_str_or_none(data.get("open_id") or data.get("creator_id")),
        account_ids=_advertiser_ids(data.get("advertiser_ids")),
    )


def _advertiser_ids(value: Any) -> tuple[str, ...]:
    """TikTok's granted advertisers: numeric ids only, at most as many as a
    connection may hold; anything else in the answer is ignored."""
    if not isinstance(value, list):
        return ()
    ids = [str(v) for v in value if isinstance(v, int | str) and str(v).isdigit()]
    return tuple(ids[:200])


def _unless_same(tokens: TokenSet, old_refresh: str) -> TokenSet:
    """Report a refresh token only when it changed (the caller stores only rotations)."""
    if tokens.refresh_token == old_refresh:
        return TokenSet(
            access_token=tokens.access_token,
            refresh_token=None,
            expires_in=tokens.expires_in,
            refresh_expires_in=tokens.refresh_expires_in,
            scopes=tokens.scopes,
            external_user_id=tokens.external_user_id,
        )
    return tokens


def _scopes(value: Any) -> tuple[str, ...]:
    """Granted scopes as a tuple: space- or comma-separated strings, or lists."""
    if isinstance(value, str):
        return tuple(s for s in value.replace(",", " ").split() if s)
    if isinstance(value, list | tuple):
        return tuple(str(s) for s in value if str(s))
    return ()


def _required(platform: Platform, answer: Mapping[str, Any], name: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not value:
        raise ProviderError(f"{platform.name} answered without a {name.replace('_', ' ')}.")
    return value


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); 60 if absent."""
    if not value:
        return 60.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 60.0
