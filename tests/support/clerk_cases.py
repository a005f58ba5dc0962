"""Session-token cases as Clerk issues them (and as it does not), shared by our
verifier's tests and the differential tests against Clerk's own SDKs.

Each case is a token signed with a real key, what our verifier must decide,
and which Clerk SDK, if any, decides the same case (per shared/FACTS.md:
the Python SDK checks times, `azp` and `aud`; the JS SDK also refuses non-session
token types and chooses the organization). A case with no oracle is a rule of
our own, stricter than both SDKs; its docstring-like `why` says so.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt

from tests.support.identity import TEST_AZP, TEST_ISSUER, TokenIssuer
from tests.support.log_scan import remember

PROXY_ISSUER = "https://app.cosma.test/__clerk"
SATELLITE_ISSUER = "https://clerk.satellite.cosma.test"
API_AUDIENCE = "https://api.cosma.test"
USER, ORG = "user_2case", "org_2case"
TEN_YEARS_S = 10 * 365 * 24 * 3600

Oracle = Literal["js", "py", "both", "ours"]


@dataclass(frozen=True)
class Case:
    name: str
    accept: bool
    oracle: Oracle
    why: str
    claims: dict[str, Any] = field(default_factory=dict)  # overrides of the v2 defaults
    drop: tuple[str, ...] = ()
    header: dict[str, Any] = field(default_factory=dict)  # overrides; None drops a field
    version: int = 2
    audiences: tuple[str, ...] = ()  # configured in the verifier (and the SDKs)
    issuers: tuple[str, ...] = (TEST_ISSUER,)  # configured in our verifier
    payload_text: str = ""  # the exact JSON payload, when JSON itself is the case
    clock_ahead_s: float = 0.0  # our verifier's clock, ahead of the real one
    org_id: str = ORG
    impersonator: str = ""

    def token(self, issuer: TokenIssuer, now: float | None = None) -> str:
        header: dict[str, Any] = {"kid": issuer.kid, "typ": "JWT", **self.header}
        if self.payload_text:
            payload = self.payload_text.encode()
        else:
            claims = issuer.claims(USER, ORG, "admin", version=self.version, now=now)
            claims.update(self.claims)
            for name in self.drop:
                claims.pop(name, None)
            # allow_nan (the default) writes Infinity and NaN, which Python reads back.
            payload = json.dumps(claims).encode()
        token = jwt.api_jws.encode(payload, issuer.key, algorithm="RS256", headers=header)
        return remember(token)


def _times(now: float) -> str:
    t = int(now)
    return f'"iat": {t}, "nbf": {t - 5}'


def _base_text(now: float, exp: str) -> str:
    """A v2 payload with `exp` written as given (e.g. a literal JSON cannot round-trip)."""
    return (
        f'{{"azp": "{TEST_AZP}", "exp": {exp}, {_times(now)}, "iss": "{TEST_ISSUER}",'
        f' "sid": "sess_2case", "sub": "{USER}", "v": 2, "o": {{"id": "{ORG}", "rol": "admin"}}}}'
    )


# Clerk's OAuth access token test fixture (@clerk/backend's
# `mockSignedOAuthAccessTokenJwt`), re-signed with our key: a JWT with `sid` and
# `azp` like a session, but `typ: at+jwt` and OAuth claims.
_OAUTH_CLAIMS: dict[str, Any] = {
    "client_id": "client_2VTWUzvGC5UhdJCNx6xG1D98edc",
    "scope": "read:foo write:bar",
    "jti": "oat_2xKa9Bgv7NxMRDFyQw8LpZ3cTmU1vHjE",
}


def cases(now: float | None = None) -> list[Case]:
    t = time.time() if now is None else now
    return [
        # ------------------------------------------------ controls
        Case("v2 session", True, "both", "Clerk's default v2 session token"),
        Case("v1 session", True, "both", "a v1 token: org_id", version=1),
        Case(
            "session category",
            True,
            "js",
            "Clerk's session `cat`",
            header={"cat": "cl_B7d4PD111AAA"},
        ),
        Case("no typ", True, "js", "typ is optional for Clerk's SDK", header={"typ": None}),
        # ------------------------------------------------ times must be finite numbers
        Case(
            "exp Infinity",
            False,
            "both",
            "never expires, even ten years on",
            claims={"exp": float("inf")},
            clock_ahead_s=TEN_YEARS_S,
        ),
        Case("exp NaN", False, "both", "NaN compares as not expired", claims={"exp": float("nan")}),
        Case(
            "nbf NaN", False, "both", "NaN compares as already valid", claims={"nbf": float("nan")}
        ),
        Case("nbf -Infinity", False, "both", "valid since forever", claims={"nbf": float("-inf")}),
        Case(
            "iat NaN",
            False,
            "both",
            "NaN compares as issued in the past",
            claims={"iat": float("nan")},
        ),
        Case(
            "exp 1e400",
            False,
            "py",
            "a literal beyond a double: Python reads inf (JS reads Infinity and accepts)",
            payload_text=_base_text(t, "1e400"),
            clock_ahead_s=TEN_YEARS_S,
        ),
        Case(
            "exp 10**400",
            False,
            "ours",
            "an integer no double holds; both SDKs accept it as never expiring",
            claims={"exp": 10**400},
            clock_ahead_s=TEN_YEARS_S,
        ),
        # ------------------------------------------------ only session tokens
        Case(
            "OAuth access token (Clerk's fixture)",
            False,
            "js",
            "typ at+jwt: an OAuth access token, not a session",
            header={"typ": "at+jwt"},
            claims=_OAUTH_CLAIMS,
            drop=("v", "o", "fva"),
        ),
        Case(
            "typ application/at+jwt",
            False,
            "js",
            "the other OAuth access token typ",
            header={"typ": "application/at+jwt"},
            claims=_OAUTH_CLAIMS,
        ),
        Case(
            "typ jwt lowercase",
            False,
            "js",
            "Clerk's SDK allows exactly `JWT`",
            header={"typ": "jwt"},
        ),
        Case(
            "machine category",
            False,
            "js",
            "Clerk's M2M token category",
            header={"cat": "cl_B7d4PD333AAA"},
        ),
        Case(
            "unknown category",
            False,
            "js",
            "any category but a session's",
            header={"cat": "cl_X7d4PD999XXX"},
        ),
        Case(
            "machine subject",
            False,
            "js",
            "a machine (mch_) subject is no session",
            claims={"sub": "mch_2case"},
        ),
        # ------------------------------------------------ the organization, as Clerk chooses it
        Case(
            "v2 with only org_id",
            True,
            "js",
            "v2: `o` or no organization",
            claims={"org_id": "org_stray"},
            drop=("o",),
            org_id="",
        ),
        Case(
            "v1 with o and org_id",
            True,
            "js",
            "not v2: org_id, whatever `o` says",
            version=1,
            claims={"o": {"id": "org_from_o"}},
        ),
        Case("no v, o only", True, "js", "not v2: `o` is not read", drop=("v",), org_id=""),
        Case(
            "v is the string 2",
            True,
            "js",
            "v must be the number 2",
            claims={"v": "2", "org_id": "org_from_org_id"},
            org_id="org_from_org_id",
        ),
        Case("v is 2.0", True, "js", "2.0 is the number 2", claims={"v": 2.0}),
        # ------------------------------------------------ impersonation
        Case(
            "impersonated",
            True,
            "js",
            "act names the person acting",
            claims={
                "act": {
                    "sub": "user_2support",
                    "iss": "https://dashboard.clerk.com",
                    "sid": "sess_2support",
                }
            },
            impersonator="user_2support",
        ),
        Case(
            "act without sub",
            False,
            "ours",
            "impersonation by no one named",
            claims={"act": {"iss": "https://dashboard.clerk.com"}},
        ),
        Case(
            "act not an object",
            False,
            "ours",
            "act must be an object",
            claims={"act": "user_2support"},
        ),
        # ------------------------------------------------ audiences
        Case(
            "aud matches",
            True,
            "both",
            "the configured audience",
            claims={"aud": API_AUDIENCE},
            audiences=(API_AUDIENCE,),
        ),
        Case(
            "aud list with a match",
            True,
            "both",
            "one of the token's audiences is ours",
            claims={"aud": ["https://other.test", API_AUDIENCE]},
            audiences=(API_AUDIENCE,),
        ),
        Case(
            "aud mismatch",
            False,
            "both",
            "another audience",
            claims={"aud": "https://other.test"},
            audiences=(API_AUDIENCE,),
        ),
        Case(
            "aud, none configured",
            False,
            "py",
            "an audience we were not told to accept",
            claims={"aud": API_AUDIENCE},
        ),
        Case(
            "no aud, one configured",
            True,
            "js",
            "no audience: nothing to match",
            audiences=(API_AUDIENCE,),
        ),
        Case(
            "aud not a string",
            False,
            "py",
            "an audience of another type",
            claims={"aud": 7},
            audiences=(API_AUDIENCE,),
        ),
        # ------------------------------------------------ several issuers, each exact
        Case(
            "proxy issuer",
            True,
            "ours",
            "the instance's proxy URL, configured",
            claims={"iss": PROXY_ISSUER},
            issuers=(TEST_ISSUER, PROXY_ISSUER, SATELLITE_ISSUER),
        ),
        Case(
            "satellite issuer",
            True,
            "ours",
            "a satellite domain, configured",
            claims={"iss": SATELLITE_ISSUER},
            issuers=(TEST_ISSUER, PROXY_ISSUER, SATELLITE_ISSUER),
        ),
        Case(
            "issuer with a trailing slash",
            False,
            "ours",
            "exact, not a prefix",
            claims={"iss": TEST_ISSUER + "/"},
            issuers=(TEST_ISSUER, PROXY_ISSUER, SATELLITE_ISSUER),
        ),
        Case(
            "issuer under a configured one",
            False,
            "ours",
            "exact, not a prefix",
            claims={"iss": PROXY_ISSUER + "/evil"},
            issuers=(TEST_ISSUER, PROXY_ISSUER, SATELLITE_ISSUER),
        ),
        Case(
            "unconfigured satellite",
            False,
            "ours",
            "only configured issuers",
            claims={"iss": SATELLITE_ISSUER},
        ),
    ]
