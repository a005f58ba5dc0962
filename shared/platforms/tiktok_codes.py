"""TikTok's business error codes (the `code` of its answer envelope), classified once
for the token endpoints (`oauth/tiktok.py`) and the report API (`reports/tiktok.py`).

Every code named here is in the official SDK's table (`NumericErrorCodes`,
tiktok-business-api-sdk-official 1.1.3; tests/conformance/ holds them to it):

    TOKEN_REFUSED  40102 access token expired, 40104 empty, 40105 invalid:
                   a fresh access token may work (on a token endpoint: the grant is dead)
    DEAD_GRANT     40103 refresh token expired, 40107 invalid refresh token,
                   40110 auth code error, 40131 TikTok user authorization failed
    RATE_LIMITED   40016 (frequency control), 40100 too frequent, 40132 frequency
                   limited, 61000 too many requests
    PERMISSION     40001 permission error, 40003 forbidden, 40106 invalid core user,
                   40130 scope not authorized
    unavailable    50000-59999 (TikTok's service errors) and 60001 (maintenance)
    anything else  a request not to repeat as is (70001, for one, is an invalid
                   business-auth type: a client error)
"""

from __future__ import annotations

from typing import Literal

__all__ = ["DEAD_GRANT", "PERMISSION", "RATE_LIMITED", "TOKEN_REFUSED", "classify"]

TOKEN_REFUSED = frozenset({40102, 40104, 40105})
DEAD_GRANT = frozenset({40103, 40107, 40110, 40131})
RATE_LIMITED = frozenset({40016, 40100, 40132, 61000})
PERMISSION = frozenset({40001, 40003, 40106, 40130})
MAINTENANCE = 60001
# TikTok gives no Retry-After; a minute is its documented QPS window.
RATE_LIMIT_RETRY_S = 60.0

Kind = Literal["token", "grant", "rate", "permission", "unavailable", "refused"]


def classify(code: int) -> Kind:
    if code in TOKEN_REFUSED:
        return "token"
    if code in DEAD_GRANT:
        return "grant"
    if code in RATE_LIMITED:
        return "rate"
    if code in PERMISSION:
        return "permission"
    if 50000 <= code < 60000 or code == MAINTENANCE:
        return "unavailable"
    return "refused"
