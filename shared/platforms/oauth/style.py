"""The two strategy interfaces a platform's OAuth protocol is made of.

A registry entry holds one `TokenStyle` (how to send the browser to consent,
trade a code, refresh) and one `Revocation` (how to give a grant back), or
None where the platform has no revocation endpoint. Each concrete style is a
small frozen object in its own module, like httpx's `Auth` classes:

    form.py     RFC 6749 form posts; RFC 7009 and Google's revocation
    tiktok.py   TikTok's JSON envelope {code, message, data}
    meta.py     Graph API: short-lived -> long-lived token, DELETE /{user}/permissions
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from shared.platforms.base import TokenSet
    from shared.platforms.entry import Platform
    from shared.platforms.oauth.call import ProviderCall


class TokenStyle(Protocol):
    def authorize_params(
        self,
        platform: Platform,
        *,
        client_id: str,
        redirect_uri: str,
        state: str,
        challenge: str | None,
    ) -> dict[str, str]:
        """The authorize URL's query (no secret ever)."""
        ...

    def exchange(
        self,
        call: ProviderCall,
        code: str,
        *,
        redirect_uri: str,
        code_verifier: str | None,
        client_id: str,
        client_secret: str,
    ) -> TokenSet: ...

    def refresh(
        self, call: ProviderCall, refresh_token: str, *, client_id: str, client_secret: str
    ) -> TokenSet:
        """A fresh access token; `refresh_token` as the provider answered it."""
        ...


class Revocation(Protocol):
    def revoke(
        self,
        call: ProviderCall,
        token: str,
        *,
        client_id: str,
        client_secret: str,
        external_user_id: str | None,
    ) -> None:
        """Give the grant back; raises the provider error tree on failure."""
        ...
