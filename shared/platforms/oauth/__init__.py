"""The token protocol of each platform: authorize URL, code exchange, refresh, revoke.

    url = oauth.authorization_url(entry, client_id=..., redirect_uri=..., state=...)
    tokens = oauth.exchange_code(entry, code, redirect_uri=..., code_verifier=..., ...)
    tokens = oauth.refresh(entry, refresh_token, client_id=..., client_secret=...)
    outcome = oauth.revoke(entry, token, client_id=..., client_secret=...)

Each registry entry carries its wire style as objects (`Platform.token_style`,
`Platform.revocation`; the interfaces are in `style.py`), so these entry points
never branch on a platform:

    form.py     RFC 6749 form posts (Google, LinkedIn, Microsoft, the sandbox);
                RFC 7009 revocation, and Google's token-only variant
    tiktok.py   TikTok's JSON envelope; HTTP 200 with a non-zero `code` on errors
    meta.py     Graph API: code -> short-lived -> long-lived token, /me, and
                DELETE /{user_id}/permissions

Every call goes through `shared.platforms.transport` (timeouts, 429 with
Retry-After, 5xx) and each style maps its own error bodies onto the provider
error tree: InvalidGrant (dead code or token), AccessDenied, RateLimited,
ProviderUnavailable and ProviderError. Messages name the platform and the kind
of failure, never a token, a code, a secret or the provider's body.

Secrets travel in request bodies or headers, never in URLs (urllib3 logs URLs
at debug level).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from shared.errors import ProviderError
from shared.platforms.base import TokenSet
from shared.platforms.oauth.call import ProviderCall
from shared.platforms.oauth.pkce import code_challenge, new_code_verifier

if TYPE_CHECKING:
    # Imported where a call is made: listing connections never loads it (cold start).
    import requests

    from shared.platforms.entry import Platform

__all__ = [
    "authorization_url",
    "code_challenge",
    "exchange_code",
    "new_code_verifier",
    "refresh",
    "revoke",
]


def authorization_url(
    platform: Platform,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    code_verifier: str | None = None,
) -> str:
    """Where the browser goes to grant access. Carries no secret."""
    challenge = code_challenge(code_verifier) if platform.pkce and code_verifier else None
    params = platform.token_style.authorize_params(
        platform, client_id=client_id, redirect_uri=redirect_uri, state=state, challenge=challenge
    )
    params.update(dict(platform.authorize_params))
    return f"{platform.authorize_url}?{urlencode(params)}"


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
    return platform.token_style.exchange(
        _call(platform, http, timeout),
        code,
        redirect_uri=redirect_uri,
        code_verifier=code_verifier,
        client_id=client_id,
        client_secret=client_secret,
    )


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
    tokens = platform.token_style.refresh(
        _call(platform, http, timeout),
        refresh_token,
        client_id=client_id,
        client_secret=client_secret,
    )
    return unless_same(tokens, refresh_token)


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
    if platform.revocation is None or not platform.revoke_url:
        return "not_supported"
    try:
        platform.revocation.revoke(
            _call(platform, http, timeout),
            token,
            client_id=client_id,
            client_secret=client_secret,
            external_user_id=external_user_id,
        )
    except ProviderError as exc:
        return f"failed:{exc.slug.replace('-', '_')}"
    return "revoked"


def unless_same(tokens: TokenSet, old_refresh: str) -> TokenSet:
    """Report a refresh token only when it changed (the caller stores only rotations);
    every other field, the granted accounts included, is kept as answered."""
    if tokens.refresh_token == old_refresh:
        return dataclasses.replace(tokens, refresh_token=None)
    return tokens


def _call(platform: Platform, http: requests.Session | None, timeout: float) -> ProviderCall:
    if http is None:
        import requests

        http = requests.Session()
    return ProviderCall(platform, http, timeout)
