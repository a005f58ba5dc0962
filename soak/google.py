"""Cloud Scheduler's part: Google's OIDC certificate and the tokens the sync trigger takes.

The key and its self-signed certificate are made once per run in the state
folder; the peer serves the certificate as https://www.googleapis.com/oauth2/v1/certs
does (`{kid: PEM}`), and the orchestrator signs the ID tokens Cloud Scheduler
would attach to `POST /sync`.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

KID = "soak-scheduler-1"


def _folder(home: Path) -> Path:
    return home / "google"


def create(home: Path) -> None:
    folder = _folder(home)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cosma-soak-google-certs")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(folder / "key.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def certificate(home: Path) -> str:
    return (_folder(home) / "cert.pem").read_text()


def token(home: Path, audience: str, email: str) -> str:
    """An ID token shaped like Cloud Scheduler's, for `audience`."""
    key = serialization.load_pem_private_key((_folder(home) / "key.pem").read_bytes(), None)
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
