"""TikTok API for Business: JSON bodies {app_id, secret, auth_code | refresh_token},
answered with the envelope {code, message, request_id, data}; HTTP 200 with a
non-zero `code` is an error. The grant names its advertisers (`advertiser_ids`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import InvalidGrant, ProviderError, ProviderUnavailable, RateLimited
from shared.platforms import tiktok_codes
from shared.platforms.base import TokenSet
from shared.platforms.oauth.call import as_int, scopes, str_or_none

if TYPE_CHECKING:
    from shared.platforms.entry import Platform
    from shared.platforms.oauth.call import ProviderCall

__all__ = ["TikTokRevocation", "TikTokTokens"]

# A connection holds at most this many accounts (the start request's limit too).
MAX_ADVERTISERS = 200


@dataclass(frozen=True)
class TikTokTokens:
    def authorize_params(
        self,
        platform: Platform,
        *,
        client_id: str,
        redirect_uri: str,
        state: str,
        challenge: str | None,
    ) -> dict[str, str]:
        # Permissions are chosen on the app in TikTok's portal: no scope, no PKCE.
        return {"app_id": client_id, "redirect_uri": redirect_uri, "state": state}

    def exchange(
        self,
        call: ProviderCall,
        code: str,
        *,
        redirect_uri: str,
        code_verifier: str | None,
        client_id: str,
        client_secret: str,
    ) -> TokenSet:
        body = {"app_id": client_id, "secret": client_secret, "auth_code": code}
        return _tokens(call, post_json(call, call.platform.token_url, body))

    def refresh(
        self, call: ProviderCall, refresh_token: str, *, client_id: str, client_secret: str
    ) -> TokenSet:
        body = {
            "app_id": client_id,
            "secret": client_secret,
            "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        }
        url = call.platform.refresh_url or call.platform.token_url
        return _tokens(call, post_json(call, url, body))


@dataclass(frozen=True)
class TikTokRevocation:
    def revoke(
        self,
        call: ProviderCall,
        token: str,
        *,
        client_id: str,
        client_secret: str,
        external_user_id: str | None,
    ) -> None:
        url = call.revoke_url()
        post_json(call, url, {"app_id": client_id, "secret": client_secret, "access_token": token})


def post_json(call: ProviderCall, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    response = call.send("POST", url, json=dict(body))
    answer = call.body(response)
    code = answer.get("code")
    if response.status_code >= 400 or code != 0:
        number = code if isinstance(code, int) else -1
        name = call.name
        kind = tiktok_codes.classify(number)
        # On a token endpoint a refused token (or code) means the grant is dead.
        if kind in ("grant", "token"):
            raise InvalidGrant(f"{name} refused the grant (code {number}).")
        if kind == "rate":
            retry = tiktok_codes.RATE_LIMIT_RETRY_S
            raise RateLimited(f"{name} is rate limiting us.", retry_after=retry)
        if kind == "unavailable":
            raise ProviderUnavailable(f"{name} reported an internal error.")
        raise ProviderError(f"{name} refused the request (code {number}).")
    data = answer.get("data")
    return data if isinstance(data, dict) else {}


def _tokens(call: ProviderCall, data: dict[str, Any]) -> TokenSet:
    return TokenSet(
        access_token=call.required(data, "access_token"),
        refresh_token=str_or_none(data.get("refresh_token")),
        expires_in=as_int(data.get("access_token_expire_in") or data.get("expires_in")),
        refresh_expires_in=as_int(
            data.get("refresh_token_expire_in") or data.get("refresh_token_expires_in")
        ),
        scopes=scopes(data.get("scope")),
        external_user_id=str_or_none(data.get("open_id") or data.get("creator_id")),
        account_ids=_advertiser_ids(data.get("advertiser_ids")),
    )


def _advertiser_ids(value: Any) -> tuple[str, ...]:
    """The granted advertisers: numeric ids only, at most as many as a connection
    may hold; anything else in the answer is ignored."""
    if not isinstance(value, list):
        return ()
    ids = [str(v) for v in value if isinstance(v, int | str) and str(v).isdigit()]
    return tuple(ids[:MAX_ADVERTISERS])
