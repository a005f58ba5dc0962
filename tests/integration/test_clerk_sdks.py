"""Differential: our session-token verifier against Clerk's own SDKs.

Every case of tests/support/clerk_cases.py that an SDK decides (per
shared/FACTS.md) is run through that SDK, networkless with the PEM key, and
its verdict must be ours:

- `clerk-backend-api` (Python, the `dev` extra): `authenticate_request`; it
  checks the signature, the times, `azp` and `aud`. A case it raises on (it
  does for an infinite `exp`) counts as refused: it signs nobody in.
- `@clerk/backend` (JS, tests/oracle/, installed by `make test`): run with the
  machine's Node.js through `authenticateRequest` and `toAuth()`; it also
  refuses non-session token types and categories and chooses the
  organization, so its user, organization and actor are compared too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clerk_backend_api.security import authenticate_request
from clerk_backend_api.security.types import AuthenticateRequestOptions

from shared import errors
from shared.identity import ClerkVerifier
from tests.support.clerk_cases import Case, cases
from tests.support.identity import TEST_AZP, TokenIssuer

ORACLE_DIR = Path(__file__).resolve().parents[1] / "oracle"
NOW = time.time()
CASES = cases(NOW)
JS_CASES = [c for c in CASES if c.oracle in ("js", "both")]
PY_CASES = [c for c in CASES if c.oracle in ("py", "both")]


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    user_id: str = ""
    org_id: str = ""
    impersonator: str = ""


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture(scope="module")
def tokens(issuer: TokenIssuer) -> dict[str, str]:
    return {case.name: case.token(issuer, NOW) for case in CASES}


def ours(case: Case, issuer: TokenIssuer, token: str) -> Verdict:
    verifier = ClerkVerifier(
        issuer=case.issuers,
        authorized_parties=[TEST_AZP],
        audiences=case.audiences,
        jwt_key=issuer.public_pem,
    )
    try:
        claims = verifier.verify(token)
    except errors.Unauthorized:
        return Verdict(False)
    return Verdict(True, claims.user_id, claims.org_id, claims.impersonator)


@pytest.fixture(scope="module")
def clerk_js(issuer: TokenIssuer, tokens: dict[str, str]) -> dict[str, Verdict]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the JS SDK cannot run here")
    if not (ORACLE_DIR / "node_modules" / "@clerk" / "backend").is_dir():
        pytest.fail("@clerk/backend is missing: `make test` installs it (npm ci in tests/oracle)")
    document = {
        "jwtKey": issuer.public_pem,
        "authorizedParties": [TEST_AZP],
        "cases": [{"name": c.name, "token": tokens[c.name], **_js_audience(c)} for c in JS_CASES],
    }
    done = subprocess.run(
        [node, str(ORACLE_DIR / "clerk_session.mjs")],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ORACLE_DIR,
        env={**os.environ, "CLERK_TELEMETRY_DISABLED": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    verdicts: dict[str, Verdict] = {}
    for entry in json.loads(done.stdout):
        actor: Any = entry["actor"]
        verdicts[entry["name"]] = Verdict(
            entry["signedIn"],
            entry["userId"] or "",
            entry["orgId"] or "",
            actor.get("sub", "") if isinstance(actor, dict) else "",
        )
    return verdicts


def _js_audience(case: Case) -> dict[str, Any]:
    return {"audience": list(case.audiences)} if case.audiences else {}


class _Request:
    def __init__(self, token: str) -> None:
        self.headers = {"Authorization": f"Bearer {token}"}


def clerk_python(case: Case, issuer: TokenIssuer, token: str) -> bool:
    options = AuthenticateRequestOptions(
        jwt_key=issuer.public_pem,
        authorized_parties=[TEST_AZP],
        audience=list(case.audiences) or None,
    )
    try:
        state = authenticate_request(_Request(token), options)
    except Exception:  # it raises on some tokens (int(inf)); it signs nobody in
        return False
    return bool(state.is_signed_in)


@pytest.mark.parametrize("case", JS_CASES, ids=[c.name for c in JS_CASES])
def test_clerk_js_sdk_decides_as_we_do(
    case: Case, issuer: TokenIssuer, tokens: dict[str, str], clerk_js: dict[str, Verdict]
) -> None:
    theirs = clerk_js[case.name]
    mine = ours(case, issuer, tokens[case.name])
    assert theirs.accepted is case.accept, theirs
    assert mine == theirs


@pytest.mark.parametrize("case", PY_CASES, ids=[c.name for c in PY_CASES])
def test_clerk_python_sdk_decides_as_we_do(
    case: Case, issuer: TokenIssuer, tokens: dict[str, str]
) -> None:
    token = tokens[case.name]
    assert clerk_python(case, issuer, token) is case.accept
    assert ours(case, issuer, token).accepted is case.accept
