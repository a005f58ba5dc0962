"""Meta's Graph API: code -> short-lived user token -> long-lived token
(`fb_exchange_token`), then /me for the user id and the granted permissions;
revocation is DELETE /{user_id}/permissions. Errors as {"error": {"code": 190, ...}}.

Meta issues no refresh token: the long-lived token is stored in its place, and
refreshing re-exchanges it, which proves it alive (190 when not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import (
    AccessDenied,
    InvalidGrant,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from shared.platforms.base import TokenSet
from shared.platforms.oauth.call import as_int, code_params, json_object

if TYPE_CHECKING:
    from shared.platforms.entry import Platform
    from shared.platforms.oauth.call import ProviderCall

__all__ = ["MetaGraphTokens", "MetaPermissionsRevocation"]

# 190 is a dead token, 100 on the token endpoint a bad code; 4/17/32/613 and
# 80000-80014 are rate limits; 1/2 are temporary.
_RATE_LIMITED = frozenset({4, 17, 32, 613})
_TEMPORARY = frozenset({1, 2})


@dataclass(frozen=True)
class MetaGraphTokens:
    def authorize_params(
        self,
        platform: Platform,
        *,
        client_id: str,
        redirect_uri: str,
        state: str,
        challenge: str | None,
    ) -> dict[str, str]:
        params = code_params(client_id=client_id, redirect_uri=redirect_uri, state=state)
        if platform.scopes:
            params["scope"] = ",".join(platform.scopes)
        return params

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
        form = {
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "code": code,
        }
        short = graph(call, "POST", call.platform.token_url, data=form)
        short_token = call.required(short, "access_token")
        long_lived = _long_lived(call, short_token, client_id, client_secret)
        token = call.required(long_lived, "access_token")
        me = graph(
            call,
            "GET",
            f"{call.platform.api_base_url}/me",
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
            expires_in=as_int(long_lived.get("expires_in")),
            scopes=granted,
            external_user_id=str(user_id) if user_id else None,
        )

    def refresh(
        self, call: ProviderCall, refresh_token: str, *, client_id: str, client_secret: str
    ) -> TokenSet:
        answer = _long_lived(call, refresh_token, client_id, client_secret)
        token = call.required(answer, "access_token")
        return TokenSet(
            access_token=token, refresh_token=token, expires_in=as_int(answer.get("expires_in"))
        )


@dataclass(frozen=True)
class MetaPermissionsRevocation:
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
        # `{user_id}` is the granting user's id, or "me" for the token's own user.
        url = url.replace("{user_id}", external_user_id or "me")
        graph(call, "DELETE", url, headers={"Authorization": f"Bearer {token}"})


def _long_lived(
    call: ProviderCall, token: str, client_id: str, client_secret: str
) -> dict[str, Any]:
    form = {
        "grant_type": "fb_exchange_token",
        "client_id": client_id,
        "client_secret": client_secret,
        "fb_exchange_token": token,
    }
    return graph(call, "POST", call.platform.token_url, data=form)


def graph(
    call: ProviderCall,
    method: str,
    url: str,
    *,
    data: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    response = call.send(
        method,
        url,
        data=dict(data) if data else None,
        params=dict(params) if params else None,
        headers=dict(headers) if headers else None,
    )
    failed = response.status_code >= 400
    answer = (json_object(response) or {}) if failed else call.body(response)
    error = answer.get("error")
    if not failed and not isinstance(error, dict):
        return answer
    detail = error if isinstance(error, dict) else {}
    raw = detail.get("code")
    code = raw if isinstance(raw, int) else -1
    name = call.name
    if code == 190 or (code == 100 and url == call.platform.token_url):
        raise InvalidGrant(f"{name} refused the grant (code {code}).")
    if code in _RATE_LIMITED or 80000 <= code <= 80014:
        raise RateLimited(f"{name} is rate limiting us.", retry_after=300.0)
    if code in _TEMPORARY or detail.get("is_transient") is True:
        raise ProviderUnavailable(f"{name} reported a temporary error.")
    if code in (10, 200) or 200 <= code <= 299:
        raise AccessDenied(f"{name} denied a permission (code {code}).")
    raise ProviderError(f"{name} refused the request (code {code}).")
