"""Token attacks against `ClerkVerifier` with a PEM key (Clerk's networkless mode).

Real RSA keys and real pyjwt signing; the clock is injected, so expiry is exact.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any

import jwt
import pytest

from shared import errors
from shared.identity import ClerkVerifier, SessionClaims, load_public_key
from tests.support.identity import TEST_AZP, TEST_ISSUER, TokenIssuer, rsa_key

NOW = 1_750_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(issuer: TokenIssuer, clock: Clock) -> ClerkVerifier:
    return ClerkVerifier(
        issuer=TEST_ISSUER, authorized_parties=[TEST_AZP], jwt_key=issuer.public_pem, clock=clock
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"


def refused(verifier: ClerkVerifier, token: str) -> None:
    with pytest.raises(errors.Unauthorized) as info:
        verifier.verify(token)
    assert info.value.detail == "The request could not be authenticated."


def test_valid_v2_token(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    claims = verifier.verify(issuer.mint("user_1", "org_1", "admin", now=NOW))
    assert isinstance(claims, SessionClaims)
    assert (claims.user_id, claims.org_id, claims.org_role, claims.version) == (
        "user_1",
        "org_1",
        "admin",
        2,
    )
    assert claims.org_slug == "org_1"
    assert claims.org_permissions == ("read",)
    assert claims.expires_at == NOW + 300


def test_valid_v1_token(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    claims = verifier.verify(issuer.mint("user_1", "org_9", "editor", version=1, now=NOW))
    assert (claims.org_id, claims.org_role, claims.org_slug) == ("org_9", "editor", "org_9")
    assert claims.org_permissions == ("org:sys_memberships:read",)
    assert claims.version == 1


def test_token_without_organization(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    assert verifier.verify(issuer.mint("user_1", None, now=NOW)).org_id == ""


def test_alg_none_refused(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    payload = issuer.claims("user_1", "org_1", now=NOW)
    refused(verifier, unsigned({"alg": "none", "typ": "JWT"}, payload) + ".")
    refused(verifier, unsigned({"alg": "None", "kid": issuer.kid}, payload) + ".")


def test_hs256_keyed_with_the_public_key_refused(
    verifier: ClerkVerifier, issuer: TokenIssuer
) -> None:
    payload = issuer.claims("user_1", "org_1", now=NOW)
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}, payload)
    mac = hmac.new(issuer.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    refused(verifier, f"{signing_input}.{b64(mac)}")


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256"])
def test_other_rsa_algorithms_refused(
    verifier: ClerkVerifier, issuer: TokenIssuer, alg: str
) -> None:
    refused(verifier, issuer.sign(issuer.claims("user_1", "org_1", now=NOW), algorithm=alg))


def test_wrong_key_refused(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    refused(verifier, issuer.sign(issuer.claims("user_1", "org_1", now=NOW), key=rsa_key()))


def test_tampered_payload_refused(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    token = issuer.mint("user_1", "org_1", "viewer", now=NOW)
    head, _, sig = token.split(".")
    forged = issuer.claims("user_1", "org_1", "admin", now=NOW)
    forged["o"]["id"] = "org_other"
    refused(verifier, f"{head}.{b64(json.dumps(forged).encode())}.{sig}")
    # A flipped signature byte as well.
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[0] ^= 1
    refused(verifier, f"{token.rsplit('.', 1)[0]}.{b64(bytes(raw))}")


def test_expiry_with_five_seconds_leeway(
    verifier: ClerkVerifier, issuer: TokenIssuer, clock: Clock
) -> None:
    token = issuer.mint("user_1", "org_1", now=NOW, ttl=60)
    clock.now = NOW + 60 + 4
    assert verifier.verify(token).user_id == "user_1"
    clock.now = NOW + 60 + 5
    refused(verifier, token)
    clock.now = NOW + 3600
    refused(verifier, token)


def test_nbf_in_the_future_refused(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    refused(verifier, issuer.mint("user_1", "org_1", now=NOW, nbf=int(NOW) + 30))
    assert verifier.verify(issuer.mint("user_1", "org_1", now=NOW, nbf=int(NOW) + 4))


def test_iat_in_the_future_refused(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    refused(verifier, issuer.mint("user_1", "org_1", now=NOW, iat=int(NOW) + 30))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat", "iss", "sub", "sid", "azp"])
def test_missing_required_claim_refused(
    verifier: ClerkVerifier, issuer: TokenIssuer, claim: str
) -> None:
    refused(verifier, issuer.mint("user_1", "org_1", now=NOW, drop=(claim,)))


def test_non_numeric_times_refused(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    refused(verifier, issuer.mint("user_1", "org_1", now=NOW, exp="9999999999"))
    refused(verifier, issuer.mint("user_1", "org_1", now=NOW, exp=True))


def test_wrong_issuer_refused(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    refused(
        verifier, issuer.mint("user_1", "org_1", now=NOW, iss="https://evil.clerk.accounts.dev")
    )
    refused(verifier, issuer.mint("user_1", "org_1", now=NOW, iss=TEST_ISSUER + "/"))


def test_wrong_azp_refused(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    refused(verifier, issuer.mint("user_1", "org_1", now=NOW, azp="https://evil.example"))
    refused(verifier, issuer.mint("user_1", "org_1", now=NOW, azp=["https://app.cosma.test"]))


def test_session_pending_refused(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    refused(verifier, issuer.mint("user_1", "org_1", now=NOW, sts="pending"))
    assert verifier.verify(issuer.mint("user_1", "org_1", now=NOW, sts="active"))


def test_malformed_tokens_refused(verifier: ClerkVerifier) -> None:
    for token in ["", "abc", "a.b", "a.b.c", "x" * 10_000, "é.é.é"]:
        refused(verifier, token)


def test_the_compact_serialization_is_read_exactly(
    verifier: ClerkVerifier, issuer: TokenIssuer
) -> None:
    good = issuer.mint("user_1", "org_1", "admin", now=NOW)
    verifier.verify(good)
    head, body, signature = good.split(".")
    for token in [
        f"{good}\n",  # a trailing newline: `$` in a pattern would have let it through
        f"{good}.",  # four segments
        f"{head}.{body}.{signature}.{signature}",
        f"{head}=.{body}.{signature}",  # padding is not base64url (RFC 7515 2)
        f"{head}.{body}.{signature}==",
        f"{head}.{body}.{signature[:-1]}+",  # the standard alphabet, not the URL one
        f"{head}..{signature}",
        f" {good}",
    ]:
        refused(verifier, token)


def test_the_signature_covers_the_segments_as_sent(
    verifier: ClerkVerifier, issuer: TokenIssuer
) -> None:
    # The same header JSON, encoded with a space: equal once parsed, but not what
    # was signed (RFC 7515 5.2 signs the encoded segments).
    good = issuer.mint("user_1", "org_1", "admin", now=NOW)
    head, body, signature = good.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    respaced = b64(json.dumps(header, separators=(", ", ": ")).encode())
    assert respaced != head
    refused(verifier, f"{respaced}.{body}.{signature}")


def test_malformed_organization_refused(verifier: ClerkVerifier, issuer: TokenIssuer) -> None:
    refused(verifier, issuer.mint("user_1", None, now=NOW, o={"id": "org' or 1=1"}))
    refused(verifier, issuer.mint("user_1", None, now=NOW, o={"id": 7}))


def test_reason_logged_without_the_token(
    verifier: ClerkVerifier, issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = issuer.mint("user_1", "org_1", now=NOW, azp="https://evil.example")
    with caplog.at_level(logging.INFO, logger="cosma.identity"):
        refused(verifier, token)
    assert "authorized party" in caplog.text
    assert token not in caplog.text
    assert token.split(".")[1] not in caplog.text


def test_pem_key_forms(issuer: TokenIssuer) -> None:
    token = issuer.mint("user_1", "org_1")
    pem = issuer.public_pem
    body = "".join(pem.splitlines()[1:-1])
    one_line = f"-----BEGIN PUBLIC KEY----- {body} -----END PUBLIC KEY-----"
    escaped = pem.replace("\n", "\\n")
    for form in (pem, escaped, one_line, body):
        key = load_public_key(form)
        assert jwt.decode(token, key, algorithms=["RS256"])["sub"] == "user_1"
    with pytest.raises(errors.Unavailable):
        load_public_key("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----")


def test_unconfigured_issuer_is_unavailable(issuer: TokenIssuer) -> None:
    verifier = ClerkVerifier(issuer="", authorized_parties=[TEST_AZP], jwt_key=issuer.public_pem)
    with pytest.raises(errors.Unavailable):
        verifier.verify(issuer.mint("user_1", "org_1"))
