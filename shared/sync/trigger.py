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

import functools
import logging
import sys
from typing import TYPE_CHECKING, Any

from shared import errors

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger("cosma.sync.trigger")

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CERTS_TIMEOUT_S = 10.0
_MAX_TOKEN = 8192


def verify(
    authorization: str,
    settings: Settings,
    *,
    audience: str | None = None,
    expected_email: str | None = None,
) -> str:
    """The verified scheduler email, or Unauthorized / Unavailable.

    `audience` and `expected_email` default to sync's (`sync_audience`,
    `scheduler_sa_email`); another scheduled job (the directory's reconcile)
    passes its own URL and its own scheduler account."""
    import google.auth.exceptions
    from google.oauth2 import id_token

    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    audience = settings.sync_audience if audience is None else audience
    expected_email = settings.scheduler_sa_email if expected_email is None else expected_email
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
            token, _certs_request(), audience=audience, certs_url=settings.google_certs_url
        )
    except google.auth.exceptions.TransportError as exc:
        log.warning("sync trigger: Google certificates unavailable")
        raise errors.Unavailable("The token certificates are unavailable.") from exc
    except Exception as exc:
        if not _is_token_error(exc):
            raise
        claims = None  # the reason stays here: one message for every failure
    if not isinstance(claims, dict) or not _claims_ok(claims, expected_email):
        log.warning("sync trigger refused")
        raise errors.Unauthorized()
    return str(claims["email"])


def _claims_ok(claims: dict[str, Any], expected_email: str) -> bool:
    return (
        claims.get("iss") in GOOGLE_ISSUERS
        and claims.get("email") == expected_email
        and claims.get("email_verified") is True
    )


def _is_token_error(exc: Exception) -> bool:
    import google.auth.exceptions

    if isinstance(exc, ValueError | google.auth.exceptions.GoogleAuthError):
        return True
    # google-auth reads certificates in the JWK format with pyjwt, and only then
    # loads it: if it is not loaded, none of its errors can have been raised.
    pyjwt = sys.modules.get("jwt")
    return pyjwt is not None and isinstance(exc, pyjwt.PyJWTError)


@functools.cache
def _certs_request() -> Any:
    """google-auth's transport interface over the standard library (built once).

    The one call it makes is a GET of the certificates; `requests` (what
    `google.auth.transport.requests` loads) would add ~35 ms to every cold start
    of the sync function. A timeout keeps the fetch from hanging the function.
    """
    import http.client
    import urllib.error
    import urllib.request

    import google.auth.exceptions
    import google.auth.transport

    class CertsRequest(google.auth.transport.Request):
        def __call__(
            self,
            url: str,
            method: str = "GET",
            body: bytes | None = None,
            headers: dict[str, str] | None = None,
            timeout: float | None = None,
            **_: Any,
        ) -> _CertsResponse:
            if not url.startswith(("https://", "http://")):
                raise google.auth.exceptions.TransportError("certificate URL must be http(s)")  # type: ignore[no-untyped-call]
            # S310: the scheme is checked just above (no file: or custom schemes).
            request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)  # noqa: S310
            try:
                limit = timeout or CERTS_TIMEOUT_S
                with urllib.request.urlopen(request, timeout=limit) as response:  # noqa: S310
                    return _CertsResponse(response.status, dict(response.headers), response.read())
            except urllib.error.HTTPError as exc:
                with exc:
                    return _CertsResponse(exc.code, dict(exc.headers), exc.read())
            except (OSError, http.client.HTTPException) as exc:
                raise google.auth.exceptions.TransportError(type(exc).__name__) from exc  # type: ignore[no-untyped-call]

    return CertsRequest()


class _CertsResponse:
    def __init__(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.status = status
        self.headers = headers
        self.data = data
