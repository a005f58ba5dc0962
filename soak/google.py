"""Cloud Scheduler's part: Google's OIDC signing key and the tokens the sync trigger takes.

The key is made once per run in the state folder; the peer serves it as
https://www.googleapis.com/oauth2/v3/certs does (a JWK set, the format the
servers read by default, as deployed), and the orchestrator signs the ID
tokens Cloud Scheduler would attach to `POST /sync`.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KID = "soak-scheduler-1"


def _folder(home: Path) -> Path:
    return home / "google"


def create(home: Path) -> None:
    folder = _folder(home)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(folder / "key.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def _private_key(home: Path) -> Any:
    return serialization.load_pem_private_key((_folder(home) / "key.pem").read_bytes(), None)


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def jwks(home: Path) -> dict[str, Any]:
    """The public key as Google publishes its keys at v3."""
    numbers = _private_key(home).public_key().public_numbers()
    key = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": KID}
    return {"keys": [{**key, "n": _b64(numbers.n), "e": _b64(numbers.e)}]}


def token(home: Path, audience: str, email: str) -> str:
    """An ID token shaped like Cloud Scheduler's, for `audience`."""
    key = _private_key(home)
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": "112233445566778899000",
        "sub": "112233445566778899000",
        "email": email,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})  # type: ignore[arg-type]
