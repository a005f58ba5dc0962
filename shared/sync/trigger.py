"""The sync trigger: only Cloud Scheduler, with a Google-signed OIDC token, starts a sync.

`verify(authorization, settings)` accepts a request only when every check holds:

- a `Bearer` token whose RS256 signature verifies against Google's signing keys
  (`settings.google_certs_url`, so tests serve their own), with `iat` not in
  the future and `exp` not past;
- `aud` exactly `settings.sync_audience` (the function URL; an empty setting
  refuses everything rather than skipping the check);
- `iss` is Google's (`accounts.google.com`, with or without the scheme);
- `email` is `settings.scheduler_sa_email` and `email_verified` is true.

These are google-auth's `id_token.verify_token` checks (the token read by
`shared.jws`, as Clerk's are); `tests/integration/test_sync_trigger.py` holds
the two to the same decisions. Google publishes its keys as a JWK set (v3,
the default: RSA keys built from their numbers) and as X.509 certificates
(v1: read only when that URL is configured, since cryptography's x509 costs a
cold start ~30 ms). The keys are fetched on every verification, as google-auth
does, so a key Google withdraws stops verifying at once; a scheduled job is
called every few minutes, not per user request.

Any failure is the one fixed `Unauthorized` (401): the caller never learns
which check failed (the log says), and the caller of `verify` runs nothing.
Only a failure to fetch the keys is `Unavailable` (503), so Cloud Scheduler
retries.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from shared import errors, jws

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    from shared.settings import Settings

log = logging.getLogger("cosma.sync.trigger")

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CERTS_TIMEOUT_S = 10.0
_MAX_CERTS_BYTES = 256 * 1024


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
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    audience = settings.sync_audience if audience is None else audience
    expected_email = settings.scheduler_sa_email if expected_email is None else expected_email
    # A token too large is `jws.Compact`'s to refuse, as for Clerk's.
    if scheme.lower() != "bearer" or not token or not audience or not expected_email:
        raise errors.Unauthorized()
    try:
        claims = _verified_claims(token, settings.google_certs_url, audience)
        if not _claims_ok(claims, expected_email):
            raise errors.TokenRefused("issuer or email")
    except errors.TokenRefused as exc:
        log.warning("sync trigger refused: %s", exc.reason)
        raise errors.Unauthorized() from None
    return str(claims["email"])


def _verified_claims(token: str, certs_url: str, audience: str) -> dict[str, Any]:
    compact = jws.Compact(token)  # RS256, checked as it was read
    kid = compact.header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise errors.TokenRefused("no key id")  # Google's tokens always name their key
    key = google_keys(certs_url).get(kid)
    if key is None:
        raise errors.TokenRefused("unknown key id")
    claims = compact.verified_payload(key)
    # google-auth's clock: whole seconds, no skew allowed by default.
    now = int(time.time())
    if jws.number(claims, "iat") > now:
        raise errors.TokenRefused("issued in the future")
    if jws.number(claims, "exp") < now:
        raise errors.TokenRefused("expired")
    # Exactly the one audience: a list naming it too is refused, as google-auth
    # refuses it (its test is `aud in [audience]`).
    if claims.get("aud") != audience:
        raise errors.TokenRefused("audience")
    return claims


def _claims_ok(claims: dict[str, Any], expected_email: str) -> bool:
    return (
        claims.get("iss") in GOOGLE_ISSUERS
        and claims.get("email") == expected_email
        and claims.get("email_verified") is True
    )


def google_keys(url: str) -> dict[str, RSAPublicKey]:
    """Google's signing keys by `kid`, fetched now; `Unavailable` if out of reach.

    The standard library's HTTP client, with a timeout: `requests` would add
    ~35 ms to every cold start of the function, and a hung fetch would hang it.
    """
    import http.client
    import urllib.request

    if not url.startswith(("https://", "http://")):
        log.warning("sync trigger: the certificate URL is not http(s)")
        raise errors.Unavailable("The token certificates are unavailable.")
    # S310: the scheme is checked just above (no file: or custom schemes).
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=CERTS_TIMEOUT_S) as response:  # noqa: S310
            document = json.loads(response.read(_MAX_CERTS_BYTES))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # HTTPError (a status other than 2xx) is an OSError too.
        log.warning("sync trigger: Google certificates unavailable (%s)", type(exc).__name__)
        raise errors.Unavailable("The token certificates are unavailable.") from None
    if isinstance(document, dict) and "keys" in document:
        return jws.parse_jwks(document)
    if isinstance(document, dict):
        return _x509_keys(document)
    log.warning("sync trigger: Google certificates unreadable")
    raise errors.Unavailable("The token certificates are unavailable.")


def _x509_keys(document: dict[str, Any]) -> dict[str, RSAPublicKey]:
    """v1's `{kid: PEM certificate}`: each certificate's RSA key (its validity dates
    are not checked, as google-auth does not; Google rotates the keys)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    keys: dict[str, RSAPublicKey] = {}
    for kid, pem in document.items():
        if not isinstance(pem, str):
            continue
        try:
            key = x509.load_pem_x509_certificate(pem.encode("ascii")).public_key()
        except (ValueError, UnicodeEncodeError):
            continue
        if isinstance(key, RSAPublicKey):
            keys[kid] = key
    return keys
