"""Session tokens as Clerk issues them, and the tokens Clerk issues that are not
sessions: each case of tests/support/clerk_cases.py through our verifier.

The same cases run through Clerk's own SDKs in
tests/integration/test_clerk_sdks.py; here only our decision is checked, with
the verifier configured as the case says (issuers, audiences, a clock ahead).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared import errors
from shared.authn import Authenticator
from shared.db import Database
from shared.identity import ClerkVerifier
from shared.principal import Principal
from shared.settings import Settings
from tests.support.clerk_cases import (
    API_AUDIENCE,
    PROXY_ISSUER,
    SATELLITE_ISSUER,
    USER,
    Case,
    cases,
)
from tests.support.identity import TEST_AZP, TEST_ISSUER, TokenIssuer

NOW = time.time()
CASES = cases(NOW)


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer()


def verifier_for(case: Case, issuer: TokenIssuer) -> ClerkVerifier:
    kwargs: dict[str, Any] = {}
    if case.audiences:
        kwargs["audiences"] = case.audiences
    return ClerkVerifier(
        issuer=case.issuers if len(case.issuers) > 1 else case.issuers[0],
        authorized_parties=[TEST_AZP],
        jwt_key=issuer.public_pem,
        clock=lambda: NOW + case.clock_ahead_s,
        **kwargs,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_our_verifier_decides_each_case(case: Case, issuer: TokenIssuer) -> None:
    verifier = verifier_for(case, issuer)
    token = case.token(issuer, NOW)
    if not case.accept:
        with pytest.raises(errors.Unauthorized) as info:
            verifier.verify(token)
        # One fixed message whatever the reason (the reason goes to the log only).
        assert info.value.detail == "The request could not be authenticated."
        return
    claims = verifier.verify(token)
    assert claims.user_id == USER
    assert claims.org_id == case.org_id
    # (getattr: so that on a verifier without impersonation only its own cases fail)
    assert getattr(claims, "impersonator", "") == case.impersonator


def test_an_infinite_expiry_is_refused_even_when_the_clock_is_ten_years_on(
    issuer: TokenIssuer,
) -> None:
    [case] = [c for c in CASES if c.name == "exp Infinity"]
    verifier = verifier_for(case, issuer)
    assert verifier.clock() > NOW + 3600 * 24 * 365 * 9
    with pytest.raises(errors.Unauthorized):
        verifier.verify(case.token(issuer, NOW))


def test_the_settings_configure_other_issuers_and_the_audiences(issuer: TokenIssuer) -> None:
    settings = Settings.from_env(
        {
            "CLERK_ISSUER": TEST_ISSUER,
            "CLERK_OTHER_ISSUERS": f"{PROXY_ISSUER}, {SATELLITE_ISSUER}",
            "CLERK_AUDIENCES": API_AUDIENCE,
            "CLERK_JWT_KEY": issuer.public_pem,
            "COSMA_ALLOWED_ORIGINS": TEST_AZP,
        }
    )
    assert settings.clerk_other_issuers == (PROXY_ISSUER, SATELLITE_ISSUER)
    verifier = Authenticator.from_settings(settings, Database("")).verifier
    assert verifier.issuers == {TEST_ISSUER, PROXY_ISSUER, SATELLITE_ISSUER}
    for iss in (TEST_ISSUER, PROXY_ISSUER, SATELLITE_ISSUER):
        token = issuer.mint(USER, "org_1", iss=iss, aud=API_AUDIENCE)
        assert verifier.verify(token).user_id == USER
    with pytest.raises(errors.Unauthorized):
        verifier.verify(issuer.mint(USER, "org_1", aud="https://elsewhere.test"))


def test_the_impersonator_reaches_the_principal_and_its_transaction_claims() -> None:
    principal = Principal(
        user_id="user_2", org_id="org_1", role="viewer", impersonator="user_support"
    )
    assert principal.claims()["act"] == {"sub": "user_support"}
    assert principal.public()["impersonator"] == "user_support"
    plain = Principal(user_id="user_2", org_id="org_1", role="viewer")
    assert "act" not in plain.claims() and "impersonator" not in plain.public()
