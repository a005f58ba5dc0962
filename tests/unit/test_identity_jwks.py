"""JWKS mode against a real local JWKS HTTP server: caching, throttled refetch, outage."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from werkzeug.wrappers import Request, Response

from shared import errors
from shared.identity import ClerkVerifier, parse_jwks
from tests.support.identity import TEST_AZP, TEST_ISSUER, TokenIssuer, rsa_key
from tests.support.servers import Recorder, serve

NOW = 1_750_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def jwks(issuer: TokenIssuer) -> Iterator[tuple[str, Recorder]]:
    app = issuer.jwks_app()
    with serve(app) as base:
        yield f"{base}/.well-known/jwks.json", app


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(url: str, clock: Clock) -> ClerkVerifier:
    return ClerkVerifier(
        issuer=TEST_ISSUER, authorized_parties=[TEST_AZP], jwks_url=url, clock=clock
    )


def test_keys_fetched_once_and_cached(
    issuer: TokenIssuer, jwks: tuple[str, Recorder], clock: Clock
) -> None:
    url, app = jwks
    verifier = make(url, clock)
    for _ in range(5):
        assert verifier.verify(issuer.mint("user_1", "org_1", now=NOW)).user_id == "user_1"
    assert len(app.requests) == 1


def test_unknown_kid_refetches_once_then_401_and_is_throttled(
    issuer: TokenIssuer, jwks: tuple[str, Recorder], clock: Clock
) -> None:
    url, app = jwks
    verifier = make(url, clock)
    verifier.verify(issuer.mint("user_1", "org_1", now=NOW))
    assert len(app.requests) == 1
    stranger = issuer.sign(issuer.claims("user_1", "org_1", now=NOW), kid="kid_unknown")
    with pytest.raises(errors.Unauthorized):
        verifier.verify(stranger)
    assert len(app.requests) == 1  # the first fetch was just now: throttled
    clock.now += 61
    with pytest.raises(errors.Unauthorized):
        verifier.verify(stranger)
    assert len(app.requests) == 2  # one refetch
    for _ in range(50):
        with pytest.raises(errors.Unauthorized):
            verifier.verify(issuer.sign(issuer.claims("u", "o", now=NOW), kid=f"kid_{_}"))
    assert len(app.requests) == 2  # a flood of unknown kids cannot hammer the endpoint
    clock.now += 30
    with pytest.raises(errors.Unauthorized):
        verifier.verify(stranger)
    assert len(app.requests) == 2


def test_key_rotation_picked_up_by_one_refetch(
    issuer: TokenIssuer, jwks: tuple[str, Recorder], clock: Clock
) -> None:
    url, app = jwks
    verifier = make(url, clock)
    old = issuer.mint("user_1", "org_1", now=NOW)
    verifier.verify(old)
    issuer.rotate()
    clock.now += 120
    new = issuer.mint("user_1", "org_1", now=clock.now)
    assert verifier.verify(new).user_id == "user_1"
    assert len(app.requests) == 2
    # The old key is still published, so a token it signed still verifies.
    clock.now = NOW + 10
    assert verifier.verify(old).user_id == "user_1"


def test_token_without_kid_refused(jwks: tuple[str, Recorder], issuer: TokenIssuer) -> None:
    verifier = make(jwks[0], Clock())
    with pytest.raises(errors.Unauthorized):
        verifier.verify(issuer.sign(issuer.claims("user_1", "org_1", now=NOW), kid=""))


def test_wrong_key_with_a_known_kid_refused(
    issuer: TokenIssuer, jwks: tuple[str, Recorder], clock: Clock
) -> None:
    verifier = make(jwks[0], clock)
    token = issuer.sign(issuer.claims("user_1", "org_1", now=NOW), key=rsa_key())
    with pytest.raises(errors.Unauthorized):
        verifier.verify(token)


def test_jwks_server_down_is_503_never_accept(issuer: TokenIssuer, clock: Clock) -> None:
    with serve(issuer.jwks_app()) as base:
        url = f"{base}/.well-known/jwks.json"
    # The server is gone: nothing listens on that port any more.
    verifier = make(url, clock)
    token = issuer.mint("user_1", "org_1", now=NOW)
    with pytest.raises(errors.Unavailable):
        verifier.verify(token)
    with pytest.raises(errors.Unavailable):  # within the retry interval: still 503
        verifier.verify(token)
    assert verifier.fetches == 1


def test_jwks_error_status_and_garbage_are_503(issuer: TokenIssuer, clock: Clock) -> None:
    answers = iter([Response("boom", status=500), Response("not json", mimetype="text/plain")])
    app = Recorder(lambda request: next(answers))
    with serve(app) as base:
        verifier = make(f"{base}/jwks", clock)
        token = issuer.mint("user_1", "org_1", now=NOW)
        with pytest.raises(errors.Unavailable):
            verifier.verify(token)
        clock.now += 6
        with pytest.raises(errors.Unavailable):
            verifier.verify(token)
    assert len(app.requests) == 2


def test_jwks_recovers_after_an_outage(issuer: TokenIssuer, clock: Clock) -> None:
    state = {"up": False}

    def handler(request: Request) -> Response:
        if not state["up"]:
            return Response("down", status=503)
        return Response(json.dumps(issuer.jwks()), mimetype="application/json")

    with serve(Recorder(handler)) as base:
        verifier = make(f"{base}/jwks", clock)
        token = issuer.mint("user_1", "org_1", now=NOW)
        with pytest.raises(errors.Unavailable):
            verifier.verify(token)
        state["up"] = True
        clock.now += 6  # the retry interval after a failure is short
        assert verifier.verify(token).user_id == "user_1"


def test_parse_jwks_keeps_only_rsa_signing_keys(issuer: TokenIssuer) -> None:
    good = issuer.jwk()
    document = {
        "keys": [
            good,
            {**good, "kid": "enc", "use": "enc"},
            {**good, "kid": "hs", "alg": "HS256"},
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {**good, "kid": None},
            "junk",
        ]
    }
    assert set(parse_jwks(document)) == {issuer.kid}
    assert parse_jwks({"keys": "x"}) == {}
    assert parse_jwks([]) == {}
