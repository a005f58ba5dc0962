"""RFC 6749 form posts (Google, LinkedIn, Microsoft, the local sandbox) and the
form revocations: RFC 7009 (client authenticated) and Google's (token only).

Errors come as {"error": "invalid_grant", ...} with a 4xx status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import AccessDenied, InvalidGrant, ProviderError, ProviderUnavailable
from shared.platforms.base import TokenSet
from shared.platforms.oauth.call import as_int, code_params, json_object, scopes, str_or_none

if TYPE_CHECKING:
    from shared.platforms.entry import Platform
    from shared.platforms.oauth.call import ProviderCall

__all__ = ["FormRevocation", "FormTokens"]


@dataclass(frozen=True)
class FormTokens:
    """`grant_type=authorization_code | refresh_token`, client secret in the body."""

    # Microsoft's identity platform wants the scopes again on a refresh (its own
    # SDK sends them); RFC 6749 makes them optional, so the others get none.
    scope_on_refresh: bool = False

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
            params["scope"] = " ".join(platform.scopes)
        if challenge:
            params["code_challenge"] = challenge
            params["code_challenge_method"] = "S256"
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
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if call.platform.pkce and code_verifier:
            form["code_verifier"] = code_verifier
        return _tokens(call, post_form(call, call.platform.token_url, form))

    def refresh(
        self, call: ProviderCall, refresh_token: str, *, client_id: str, client_secret: str
    ) -> TokenSet:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if self.scope_on_refresh and call.platform.scopes:
            form["scope"] = " ".join(call.platform.scopes)
        return _tokens(call, post_form(call, call.platform.token_url, form))


@dataclass(frozen=True)
class FormRevocation:
    """RFC 7009: `token` plus the client's credentials. Google's endpoint takes the
    token alone (`client_auth=False`)."""

    client_auth: bool = True

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
        form = {"token": token}
        if self.client_auth:
            form.update(client_id=client_id, client_secret=client_secret)
        post_form(call, url, form, revoking=True)


def post_form(
    call: ProviderCall, url: str, form: Mapping[str, str], *, revoking: bool = False
) -> dict[str, Any]:
    response = call.send("POST", url, data=dict(form), headers={"Accept": "application/json"})
    if response.status_code < 400:
        return call.body(response)
    body = json_object(response) or {}
    error = body.get("error") if isinstance(body.get("error"), str) else ""
    name = call.name
    if error == "invalid_grant" or (error == "invalid_token" and revoking):
        raise InvalidGrant(f"{name} refused the grant (invalid_grant).")
    if error == "access_denied":
        raise AccessDenied(f"Access was denied at {name}.")
    if error in ("invalid_client", "unauthorized_client"):
        raise ProviderError(f"{name} refused our client credentials.")
    if error == "temporarily_unavailable":
        raise ProviderUnavailable(f"{name} is temporarily unavailable.")
    raise ProviderError(f"{name} refused the request ({error or 'no reason'}).")


def _tokens(call: ProviderCall, answer: dict[str, Any]) -> TokenSet:
    return TokenSet(
        access_token=call.required(answer, "access_token"),
        refresh_token=str_or_none(answer.get("refresh_token")),
        expires_in=as_int(answer.get("expires_in")),
        refresh_expires_in=as_int(answer.get("refresh_token_expires_in")),
        scopes=scopes(answer.get("scope")),
        external_user_id=str_or_none(answer.get("user_id") or answer.get("open_id")),
    )
