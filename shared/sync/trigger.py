"""The sync trigger: only Cloud Scheduler, with a Google-signed OIDC token, starts a sync.

`verify(authorization, settings)` accepts a request only when every check holds:

- a `Bearer` token whose RS256 signature verifies against Google's certificates
  (`settings.google_certs_url`, so tests serve their own), with a valid `exp`/`iat`;
- `aud` exactly `settings.sync_audience` (the function URL; an empty setting
  refuses everything rather than skipping the check, as google-auth would);
- `iss` is Google's (`accounts.google.com`, with or without the scheme);
- `email` is `settings.scheduler_sa_email` and `email_verified` is true.

Any failure is the one fixed `Unauthorized` (401): the caller never learns
which check failed, and the caller of `verify` runs nothing. Only a failure to
fetch the certificates is `Unavailable` (503), so Cloud Scheduler retries.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from shared import errors

if TYPE_CHECKING:
    import requests

    from shared.http import Context
    from shared.settings import Settings

log = logging.getLogger("cosma.sync.trigger")

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CERTS_TIMEOUT_S = 10.0
_MAX_TOKEN = 8192


def verify(
    authorization: str, settings: Settings, *, session: requests.Session | None = None
) -> str:
    """The verified scheduler email, or Unauthorized / Unavailable."""
    import google.auth.exceptions
    import jwt as pyjwt
    from google.oauth2 import id_token

    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    audience = settings.sync_audience
    expected_email = settings.scheduler_sa_email
    if (
        scheme.lower() != "bearer"
        or not token
        or len(token) > _MAX_TOKEN
        or not audience
        or not expected_email
    ):
        raise errors.Unauthorized()
    claims: Any = None
    try:
        claims = id_token.verify_token(
            token, _request(session), audience=audience, certs_url=settings.google_certs_url
        )
    except google.auth.exceptions.TransportError as exc:
        log.warning("sync trigger: Google certificates unavailable")
        raise errors.Unavailable("The token certificates are unavailable.") from exc
    except (ValueError, google.auth.exceptions.GoogleAuthError, pyjwt.PyJWTError):
        claims = None  # the reason stays here: one message for every failure
    if not isinstance(claims, dict) or not _claims_ok(claims, expected_email):
        log.warning("sync trigger refused")
        raise errors.Unauthorized()
    return str(claims["email"])


def verify_request(ctx: Context) -> None:
    """`verify` for a request to the sync function. A refused token counts against
    the client's IP like any failed authentication (a request with no token at all
    was already counted before routing), so nobody can probe the trigger freely."""
    authorization = ctx.request.headers.get("Authorization", "")
    try:
        verify(authorization, ctx.settings)
    except errors.Unauthorized:
        if authorization.strip():
            from shared.http import client_ip

            ctx.runtime.rate_limiter.failed_authentication(client_ip(ctx.request))
        raise


def _claims_ok(claims: dict[str, Any], expected_email: str) -> bool:
    return (
        claims.get("iss") in GOOGLE_ISSUERS
        and claims.get("email") == expected_email
        and claims.get("email_verified") is True
    )


def _request(session: requests.Session | None) -> Any:
    """A google-auth transport whose certificate fetch cannot hang the function."""
    from google.auth.transport.requests import Request

    class _TimedRequest(Request):
        def __call__(self, url: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", CERTS_TIMEOUT_S)
            return super().__call__(url, method, *args, **kwargs)  # type: ignore[no-untyped-call]

    return _TimedRequest(session)
