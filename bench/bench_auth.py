"""Auth cost per request, against a real Postgres for membership resolution.

- mix: header -> Principal over 90% repeated and 10% fresh tokens, vs one raw
  RSA-2048 PKCS#1 v1.5 verify with cryptography (goal: at most 1.0x);
- fresh: a never-seen token through the Authenticator (membership cached, as it
  is for an active user) vs a plain `jwt.decode` with the key object (goal:
  at most 1.5x).

Baseline and subject are sampled alternately in rounds, medians reported.
"""

from __future__ import annotations

import base64
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cosma import localdb
from cosma.issuer import LocalIssuer
from shared.authn import Authenticator
from shared.db import Database
from shared.identity import ClerkVerifier

ISSUER = "https://clerk.bench.test"
AZP = "https://app.bench.test"
USERS = 100
ROUNDS = 7
PER_ROUND = 1_000
FRESH_SHARE = 0.1


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _seed(admin_url: str) -> list[tuple[str, str]]:
    import psycopg

    pairs = [(f"user_{i}", f"org_{i % 10}") for i in range(USERS)]
    with psycopg.connect(admin_url, autocommit=True) as conn, conn.transaction():
        for i in range(10):
            conn.execute("insert into organizations (id, name) values (%s, %s)", (f"org_{i}", "o"))
        for user, org in pairs:
            conn.execute(
                "insert into members (org_id, user_id, role) values (%s, %s, 'editor')",
                (org, user),
            )
    return pairs


def _per_call(fn: Callable[[int], object], n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - started) / n


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        db = localdb.prepare(admin_url=None, datadir=Path(tmp) / "pg", dbname="bench_auth")
        try:
            return _measure(db)
        finally:
            db.stop()


def _measure(db: localdb.LocalDatabase) -> list[str]:
    rng = random.Random(7)
    pairs = _seed(db.admin_url)
    issuer = LocalIssuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    public = issuer.key.public_key()
    now = time.time()

    def mint(user: str, org: str) -> str:
        return issuer.mint(user_id=user, org_id=org, role="editor", issuer=ISSUER, azp=AZP, now=now)

    repeated = [mint(u, o) for u, o in pairs]
    fresh_needed = int(ROUNDS * PER_ROUND * FRESH_SHARE) + ROUNDS * PER_ROUND // 4
    fresh = [mint(*pairs[i % USERS]) for i in range(fresh_needed)]

    database = Database(db.app_url, max_size=2)
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    # Networkless, as with CLERK_JWT_KEY.
    verifier = ClerkVerifier(issuer=ISSUER, authorized_parties=[AZP], jwt_key=pem)
    auth = Authenticator(verifier, database)
    try:
        for token in repeated:  # warm: every user seen once, memberships cached
            auth.authenticate(f"Bearer {token}")

        # The raw baseline: the RSA verify underneath any RS256 check.
        head, payload, sig = repeated[0].split(".")
        signing_input, signature = f"{head}.{payload}".encode(), _b64d(sig)

        def raw(_: int) -> None:
            public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())

        fresh_iter = iter(fresh)
        mix_headers = []
        for _ in range(ROUNDS * PER_ROUND):
            if rng.random() < FRESH_SHARE:
                mix_headers.append(f"Bearer {next(fresh_iter)}")
            else:
                mix_headers.append(f"Bearer {rng.choice(repeated)}")

        raw_s, mix_s = [], []
        for r in range(ROUNDS):
            chunk = mix_headers[r * PER_ROUND : (r + 1) * PER_ROUND]
            raw_s.append(_per_call(raw, PER_ROUND))
            mix_s.append(_per_call(lambda i, c=chunk: auth.authenticate(c[i]), PER_ROUND))

        # Fresh tokens only: the Authenticator vs a plain pyjwt decode of the same tokens.
        rest = list(fresh_iter)
        per = len(rest) // (2 * ROUNDS)
        plain_s, fresh_s = [], []
        for r in range(ROUNDS):
            a = rest[2 * r * per : (2 * r + 1) * per]
            b = rest[(2 * r + 1) * per : (2 * r + 2) * per]
            plain_s.append(
                _per_call(lambda i, c=a: jwt.decode(c[i], public, algorithms=["RS256"]), per)
            )
            fresh_s.append(_per_call(lambda i, c=b: auth.authenticate(f"Bearer {c[i]}"), per))
    finally:
        database.close()

    raw_m, mix_m = statistics.median(raw_s), statistics.median(mix_s)
    plain_m, fresh_m = statistics.median(plain_s), statistics.median(fresh_s)
    return [
        f"auth raw RSA-2048 verify (cryptography): {raw_m * 1e6:.1f} us (baseline)",
        f"auth mix 90% repeated tokens: {mix_m * 1e6:.1f} us/request "
        f"({mix_m / raw_m:.2f}x vs raw RSA verify; goal <= 1.0x)",
        f"auth plain pyjwt decode: {plain_m * 1e6:.1f} us (baseline)",
        f"auth fresh token: {fresh_m * 1e6:.1f} us/request "
        f"({fresh_m / plain_m:.2f}x vs plain pyjwt decode; goal <= 1.5x)",
    ]
