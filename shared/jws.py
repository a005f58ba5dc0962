"""RS256 compact JWS, read exactly: what both of our token verifiers share.

Clerk's session tokens (`shared.identity`) and Google's OIDC tokens for the
scheduled jobs (`shared.sync.trigger`) are both RS256 JWTs. Each verifier
chooses its key and checks its own claims; the reading of the token and the
signature check are here, once:

- the compact serialization (RFC 7515 7.1): three non-empty base64url
  segments without padding, and a JSON object as header and as payload;
  anything else is malformed;
- RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 3.3) over the two segments as
  sent, and nothing else: `alg` is checked as the header is read, before the
  caller chooses a key;
- JWK sets (RFC 7517): RSA signing keys by `kid`, the rest skipped;
- time claims as finite numbers.

Every refusal is `errors.TokenRefused` with a reason for the log; a verifier
turns it into its one fixed answer.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from cryptography.hazmat.primitives.hashes import SHA256

from shared import errors

ALGORITHM = "RS256"
MAX_TOKEN_BYTES = 8 * 1024
MAX_HEADER_BYTES = 1024
# `\Z`, not `$`: `$` also matches before a trailing newline.
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]*\Z")
_PKCS1 = PKCS1v15()
_SHA256 = SHA256()


class Compact:
    """A token split into its segments, its header read and its `alg` RS256 (the
    signature not yet verified)."""

    __slots__ = ("body", "head", "header", "signature")

    def __init__(self, token: str) -> None:
        if len(token) > MAX_TOKEN_BYTES:
            raise errors.TokenRefused("token too large")
        parts = token.split(".")
        if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
            raise errors.TokenRefused("malformed token")
        self.head, self.body, self.signature = parts
        self.header = json_object(self.head, limit=MAX_HEADER_BYTES)
        # Before any key is chosen: `none`, HS256 keyed with the public key and
        # every other algorithm end here.
        if self.header.get("alg") != ALGORITHM:
            raise errors.TokenRefused("algorithm not allowed")

    def verified_payload(self, key: RSAPublicKey) -> dict[str, Any]:
        """The payload, once the signature verifies with `key` (RS256)."""
        try:
            # The signing input is the two encoded segments as sent (RFC 7515 5.2).
            key.verify(
                decode(self.signature), f"{self.head}.{self.body}".encode("ascii"), _PKCS1, _SHA256
            )
        except InvalidSignature:
            raise errors.TokenRefused("signature") from None
        return json_object(self.body)


def decode(segment: str) -> bytes:
    """base64url without padding (RFC 7515 2), strictly: any other byte is refused."""
    if not _SEGMENT.match(segment) or len(segment) % 4 == 1:
        raise errors.TokenRefused("malformed token")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def json_object(segment: str, limit: int = MAX_TOKEN_BYTES) -> dict[str, Any]:
    if len(segment) > limit:
        raise errors.TokenRefused("malformed token")
    try:
        value = json.loads(decode(segment))
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.TokenRefused("malformed token") from exc
    if not isinstance(value, dict):
        raise errors.TokenRefused("malformed token")
    return value


def parse_jwks(document: Any) -> dict[str, RSAPublicKey]:
    """RSA signing keys of a JWKS document by `kid`; anything else is skipped."""
    keys: dict[str, RSAPublicKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return keys
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            key = RSAPublicNumbers(_jwk_int(entry, "e"), _jwk_int(entry, "n")).public_key()
        except (ValueError, TypeError):
            continue
        if isinstance(key, RSAPublicKey):
            keys[kid] = key
    return keys


def _jwk_int(entry: Mapping[str, Any], name: str) -> int:
    """A JWK's unsigned big-endian integer member (RFC 7518 6.3.1)."""
    value = entry.get(name)
    if not isinstance(value, str) or not value or not _SEGMENT.match(value):
        raise ValueError(f"JWK member {name} is not base64url")
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def number(payload: Mapping[str, Any], name: str) -> float:
    """A time claim as a finite float. Python's JSON parser reads `Infinity`, `NaN`
    and integers too large for a float; each would compare as never expired (or
    raise), so each is refused. (Exact type checks: a bool is no time.)"""
    value = payload.get(name)
    if type(value) is float:
        if math.isfinite(value):
            return value
    elif type(value) is int:
        try:
            return float(value)
        except OverflowError:
            pass
    else:
        raise errors.TokenRefused(f"{name} missing")
    raise errors.TokenRefused(f"{name} not finite")
