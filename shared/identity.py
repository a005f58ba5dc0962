"""Clerk session-token verification: who the caller is and which organization.

`ClerkVerifier.verify(token)` returns `SessionClaims` or raises:

- `errors.Unauthorized` for every token problem, with one fixed message (the
  reason is logged at INFO, never the token);
- `errors.Unavailable` (503) when the key cannot be obtained (JWKS down,
  identity not configured): an unreachable key never turns into an accept.

Invariants:

- RS256 only. The header's `alg` is checked before any key is chosen, and the
  signature is verified as RSASSA-PKCS1-v1_5 with SHA-256 and nothing else
  (RFC 7518 3.3, with cryptography), so `none`, HS256 keyed with the public key
  and every other algorithm are refused. The compact serialization is read
  exactly (RFC 7515 7.1): three base64url segments without padding, a JSON
  object as header and as payload; anything else is malformed. This is all a
  JWT library would do here, at a third of pyjwt's import cost on a cold start.
- The key is a PEM public key (Clerk's `CLERK_JWT_KEY`, networkless) or comes
  from the JWKS URL. JWKS keys are cached by `kid`; an unknown `kid` refetches
  at most once per `refetch_interval` (60 s), so no caller can make us hammer
  the JWKS endpoint. A failed fetch is retried after `retry_interval`.
- Session tokens only: a header `typ` other than `JWT` (Clerk's OAuth access
  tokens are `at+jwt`, signed with the same instance key and carrying `sid`
  and `azp` too), a header `cat` other than Clerk's session category, and a
  machine subject (`mch_...`) are refused, as Clerk's JS SDK refuses them as
  sessions.
- `iss` equals one of the configured issuers exactly (the Frontend API URL,
  and a proxy URL or satellite domains where the instance has them); `exp`,
  `nbf` and `iat` are required, finite numbers (Python's JSON parser accepts
  `Infinity` and `NaN`, which compare as never expired), checked against the
  injected clock with at most 5 s leeway; `azp` must be present and in the
  allowed origins; `aud`, when present, must name a configured audience
  (none configured: a token with an audience is refused); `sub` and `sid`
  present; `sts` = `pending` refused.
- The organization is chosen as Clerk's SDKs choose it: from `o: {id, rol,
  slg, per}` only when `v` is 2, otherwise from `org_id`, `org_role`
  (`org:admin`), `org_slug`, `org_permissions`. It says which organization the
  session acts in; the Cosma role comes from our own tables (`shared.authn`),
  never from the token.
- Impersonation: Clerk's `act` claim names the person acting (`act.sub`) for
  the user the session belongs to (`sub`); it becomes
  `SessionClaims.impersonator`, so the audit can name both. An `act` that names no one is refused.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from shared import errors, jws
from shared.jws import parse_jwks

log = logging.getLogger("cosma.identity")

LEEWAY_S = 5.0
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z")
# Clerk's JWT categories (header `cat`): a session token carries the first or
# none; the second marks a token Clerk's SDKs skip the category check for.
# Anything else (machine tokens: `cl_B7d4PD333AAA`) is not a session.
_SESSION_CATEGORIES = frozenset({"cl_B7d4PD111AAA", "cl_I7d4PD111III"})
_MACHINE_SUBJECT = "mch_"


@dataclass(frozen=True)
class SessionClaims:
    """What a verified Clerk session token says, normalised over v1 and v2."""

    user_id: str
    session_id: str
    expires_at: float
    org_id: str = ""
    org_role: str = ""
    org_slug: str = ""
    org_permissions: tuple[str, ...] = ()
    version: int = 1
    # Impersonation: the person acting as `user_id` (Clerk's `act.sub`); "" when nobody.
    # Not called "actor": the audit's actor is the user the session belongs to.
    impersonator: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


class ClerkVerifier:
    def __init__(
        self,
        *,
        issuer: str | Iterable[str],
        authorized_parties: Iterable[str],
        audiences: Iterable[str] = (),
        jwt_key: str = "",
        jwks_url: str = "",
        clock: Callable[[], float] = time.time,
        leeway: float = LEEWAY_S,
        fetch_timeout: float = 3.0,
        refetch_interval: float = 60.0,
        retry_interval: float = 5.0,
    ) -> None:
        issuers = [issuer] if isinstance(issuer, str) else list(issuer)
        self.issuers = frozenset(i for i in issuers if i)
        self.authorized_parties = frozenset(authorized_parties)
        self.audiences = frozenset(a for a in audiences if a)
        self.jwks_url = jwks_url
        self.clock = clock
        self.leeway = min(leeway, LEEWAY_S)
        self.fetch_timeout = fetch_timeout
        self.refetch_interval = refetch_interval
        self.retry_interval = retry_interval
        self._static_key = load_public_key(jwt_key) if jwt_key.strip() else None
        self._keys: dict[str, RSAPublicKey] = {}
        self._last_fetch: float | None = None
        self._last_fetch_failed = False
        self._lock = threading.Lock()
        self.fetches = 0  # observable, for tests and operators

    # ------------------------------------------------------------ public

    def verify(self, token: str) -> SessionClaims:
        try:
            return self._verify(token)
        except errors.TokenRefused as exc:
            log.info("session token refused: %s", exc.reason)
            raise errors.Unauthorized() from None

    # ------------------------------------------------------------ steps

    def _verify(self, token: str) -> SessionClaims:
        if not self.issuers:
            raise errors.Unavailable("Authentication is not configured.")
        compact = jws.Compact(token)
        header = compact.header  # RS256, checked as it was read
        if header.get("typ", "JWT") != "JWT":
            raise errors.TokenRefused("not a session token (typ)")
        if "cat" in header and header["cat"] not in _SESSION_CATEGORIES:
            raise errors.TokenRefused("not a session token (cat)")
        key = self._key_for(header.get("kid"))
        return self._check_claims(compact.verified_payload(key))

    def _check_claims(self, payload: dict[str, Any]) -> SessionClaims:
        now = self.clock()
        if payload.get("iss") not in self.issuers:
            raise errors.TokenRefused("issuer mismatch")
        exp, nbf, iat = (
            jws.number(payload, "exp"),
            jws.number(payload, "nbf"),
            jws.number(payload, "iat"),
        )
        if exp <= now - self.leeway:
            raise errors.TokenRefused("expired")
        if nbf > now + self.leeway:
            raise errors.TokenRefused("not yet valid")
        if iat > now + self.leeway:
            raise errors.TokenRefused("issued in the future")
        azp = payload.get("azp")
        if not isinstance(azp, str) or azp not in self.authorized_parties:
            raise errors.TokenRefused("authorized party not allowed")
        aud = payload.get("aud")
        if aud is not None and not _audience_allowed(aud, self.audiences):
            raise errors.TokenRefused("audience not allowed")
        sub, sid = payload.get("sub"), payload.get("sid")
        if not isinstance(sub, str) or not _ID.match(sub):
            raise errors.TokenRefused("subject missing")
        if sub.startswith(_MACHINE_SUBJECT):
            raise errors.TokenRefused("not a session token (machine subject)")
        if not isinstance(sid, str) or not _SESSION_ID.match(sid):
            raise errors.TokenRefused("session id missing")
        if payload.get("sts") == "pending":
            raise errors.TokenRefused("session pending")
        impersonator = _impersonator(payload) if "act" in payload else ""
        return _with_organization(payload, sub, sid, exp, impersonator)

    # ------------------------------------------------------------ keys

    def _key_for(self, kid: Any) -> RSAPublicKey:
        if self._static_key is not None:
            return self._static_key
        if not self.jwks_url:
            raise errors.Unavailable("Authentication is not configured.")
        if not isinstance(kid, str) or not kid:
            raise errors.TokenRefused("no key id")
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:  # single flight: one fetch however many callers miss
            key = self._keys.get(kid)
            if key is not None:
                return key
            now = self.clock()
            wait = self.retry_interval if self._last_fetch_failed else self.refetch_interval
            if self._last_fetch is not None and now - self._last_fetch < wait:
                if self._last_fetch_failed and not self._keys:
                    raise errors.Unavailable("The identity provider is unavailable.")
                raise errors.TokenRefused("unknown key id (refetch throttled)")
            self._last_fetch = now
            self._refresh()
            key = self._keys.get(kid)
        if key is None:
            raise errors.TokenRefused("unknown key id")
        return key

    def _refresh(self) -> None:
        import requests

        self.fetches += 1
        try:
            response = requests.get(
                self.jwks_url, timeout=self.fetch_timeout, headers={"Accept": "application/json"}
            )
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            self._last_fetch_failed = True
            log.warning("JWKS fetch failed: %s", type(exc).__name__)
            raise errors.Unavailable("The identity provider is unavailable.") from None
        keys = parse_jwks(document)
        self._last_fetch_failed = False
        # Replace, not merge: a key Clerk withdrew must stop verifying.
        self._keys = keys


def load_public_key(pem: str) -> RSAPublicKey:
    """Clerk's PEM public key, as pasted into `CLERK_JWT_KEY`.

    Accepts real newlines, escaped `\\n`, or the key on one line (the form some
    platforms force on environment variables): the body is re-wrapped.
    """
    text = pem.strip().replace("\\n", "\n")
    body = re.sub(r"-----(BEGIN|END) PUBLIC KEY-----|\s+", "", text)
    wrapped = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    normalized = f"-----BEGIN PUBLIC KEY-----\n{wrapped}\n-----END PUBLIC KEY-----\n"
    try:
        key = load_pem_public_key(normalized.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise errors.Unavailable("The identity key is not a valid PEM public key.") from exc
    if not isinstance(key, RSAPublicKey):
        raise errors.Unavailable("The identity key is not an RSA public key.")
    return key


def _audience_allowed(aud: Any, audiences: frozenset[str]) -> bool:
    """No audience (absent, null, "" or []), as both Clerk SDKs treat it; otherwise
    a string or a list of strings naming at least one configured audience."""
    if aud is None or aud == "" or aud == []:
        return True
    if isinstance(aud, str):
        return aud in audiences
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return any(a in audiences for a in aud)
    return False


def _impersonator(payload: Mapping[str, Any]) -> str:
    """Who is impersonating the session's user (Clerk's `act.sub`); `act` is present."""
    act = payload["act"]
    person = act.get("sub") if isinstance(act, dict) else None
    if not isinstance(person, str) or not _ID.match(person):
        raise errors.TokenRefused("malformed impersonator (act)")
    return person


def _with_organization(
    payload: dict[str, Any], sub: str, sid: str, exp: float, impersonator: str
) -> SessionClaims:
    # Clerk's SDKs test `v === 2`: the number 2 (2.0 too), not "2"; a bool never equals 2.
    v2 = payload.get("v") == 2
    if v2:
        # v2: the organization is `o` or none at all; a stray `org_id` is ignored.
        org = payload.get("o")
        org = org if isinstance(org, dict) else {}
        org_id, role = org.get("id"), org.get("rol")
        slug, per = org.get("slg"), org.get("per")
        permissions = tuple(p for p in per.split(",") if p) if isinstance(per, str) else ()
    else:
        org_id, role = payload.get("org_id"), payload.get("org_role")
        slug, per = payload.get("org_slug"), payload.get("org_permissions")
        permissions = tuple(p for p in per if isinstance(p, str)) if isinstance(per, list) else ()
        if isinstance(role, str) and role.startswith("org:"):
            role = role[len("org:") :]
    if org_id is None:
        org_id = ""
    if not isinstance(org_id, str) or (org_id and not _ID.match(org_id)):
        raise errors.TokenRefused("malformed organization")
    return SessionClaims(
        user_id=sub,
        session_id=sid,
        expires_at=exp,
        org_id=org_id,
        org_role=role if isinstance(role, str) else "",
        org_slug=slug if isinstance(slug, str) else "",
        org_permissions=permissions,
        version=2 if v2 else 1,
        impersonator=impersonator,
        raw=payload,
    )
