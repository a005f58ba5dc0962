"""The local identity provider for `make run`: Clerk's part, played on loopback.

A 2048-bit RSA key is generated on first use under `<state>/issuer/key.pem`
(mode 0600, directory 0700) and reused on restart. `cosma serve` publishes
its public half at `/.well-known/jwks.json`, which local settings name as
`CLERK_JWKS_URL`, so the server verifies local tokens through exactly the code
path it uses for Clerk's JWKS. `cosma dev-token` mints Clerk-shaped v2 session
tokens with that key. Nothing here is deployed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Response

from shared.http import Context, Router, json_response

JWKS_PATH = "/.well-known/jwks.json"


class LocalIssuer:
    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # A stable key id derived from the public key: restarts keep verifying old tokens.
        digest = hashlib.sha256(der).digest()[:12]
        self.kid = "ins_local_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    @classmethod
    def load_or_create(cls, home: Path) -> LocalIssuer:
        folder = home / "issuer"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / "key.pem"
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                # O_EXCL: two first runs at once must not write two different keys.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return cls(loaded)

    def jwks(self) -> dict[str, Any]:
        entry: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self.key.public_key(), as_dict=True
        )
        entry.update(kid=self.kid, use="sig", alg="RS256")
        return {"keys": [entry]}

    def mint(
        self,
        *,
        user_id: str,
        org_id: str,
        role: str,
        issuer: str,
        azp: str,
        ttl: int = 3600,
        now: float | None = None,
    ) -> str:
        """A v2 session token with Clerk's default claims."""
        t = int(time.time() if now is None else now)
        claims = {
            "azp": azp,
            "exp": t + ttl,
            "fva": [0, -1],
            "iat": t,
            "iss": issuer,
            "nbf": t - 5,
            "sid": f"sess_local_{uuid.uuid4().hex[:16]}",
            "sts": "active",
            "sub": user_id,
            "v": 2,
            "o": {"id": org_id, "rol": role, "slg": org_id.lower(), "per": ""},
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def router(self) -> Router:
        router = Router("issuer", peer=True)
        jwks = self.jwks()

        @router.route("GET", JWKS_PATH)
        def serve_jwks(ctx: Context) -> Response:
            return json_response(jwks)

        return router
