"""A test stand-in for Clerk: real RSA keys, Clerk-shaped session tokens, a JWKS.

`TokenIssuer.header(principal)` (or `header(org, user)`) gives the Authorization
header of a valid v2 session token for a seeded member; `mint(...)` builds any
token, including broken ones, for the attack tests. `jwks_app()` is a WSGI app
that serves the JWKS, for `tests.support.servers.serve`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from shared.principal import Principal
from tests.support.log_scan import remember
from tests.support.seed import Org

TEST_ISSUER = "https://clerk.cosma.test"
TEST_AZP = "https://app.cosma.test"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


class TokenIssuer:
    def __init__(
        self,
        issuer: str = TEST_ISSUER,
        azp: str = TEST_AZP,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.azp = azp
        self.key = key or rsa_key()
        self.kid = kid or f"ins_{uuid.uuid4().hex[:12]}"
        self.public_pem = public_pem(self.key)
        self.extra_keys: list[tuple[str, rsa.RSAPrivateKey]] = []

    # ------------------------------------------------------------ tokens

    def claims(
        self,
        user_id: str,
        org_id: str | None = None,
        role: str = "admin",
        *,
        version: int = 2,
        now: float | None = None,
        ttl: float = 300,
    ) -> dict[str, Any]:
        """Clerk's default session claims, v2 (`o`) or v1 (`org_*`)."""
        t = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "azp": self.azp,
            "exp": t + int(ttl),
            "fva": [1, -1],
            "iat": t,
            "iss": self.issuer,
            "nbf": t - 5,
            "sid": f"sess_{uuid.uuid4().hex[:20]}",
            "sub": user_id,
        }
        if version == 2:
            claims["v"] = 2
            if org_id:
                claims["o"] = {"id": org_id, "rol": role, "slg": org_id.lower(), "per": "read"}
        elif org_id:
            claims.update(
                org_id=org_id,
                org_role=f"org:{role}",
                org_slug=org_id.lower(),
                org_permissions=["org:sys_memberships:read"],
            )
        return claims

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        algorithm: str = "RS256",
    ) -> str:
        headers = {"kid": self.kid if kid is None else kid, "typ": "JWT"}
        return remember(jwt.encode(claims, key or self.key, algorithm=algorithm, headers=headers))

    def mint(
        self,
        user_id: str,
        org_id: str | None = None,
        role: str = "admin",
        *,
        version: int = 2,
        now: float | None = None,
        ttl: float = 300,
        drop: tuple[str, ...] = (),
        **overrides: Any,
    ) -> str:
        claims = self.claims(user_id, org_id, role, version=version, now=now, ttl=ttl)
        claims.update(overrides)
        for name in drop:
            claims.pop(name, None)
        return self.sign(claims)

    def token(self, who: Principal | Org, user: str | None = None, **kw: Any) -> str:
        if isinstance(who, Principal):
            return self.mint(who.user_id, who.org_id, who.role, **kw)
        if user is None:
            raise TypeError("header(org, user) needs the user")
        return self.mint(user, who.id, who.members.get(user, "viewer"), **kw)

    def header(self, who: Principal | Org, user: str | None = None, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(who, user, **kw)}"}

    # ------------------------------------------------------------ JWKS

    def jwk(self, kid: str | None = None, key: rsa.RSAPrivateKey | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            (key or self.key).public_key(), as_dict=True
        )
        entry.update(kid=kid or self.kid, use="sig", alg="RS256")
        return entry

    def jwks(self) -> dict[str, Any]:
        keys = [self.jwk()] + [self.jwk(kid, key) for kid, key in self.extra_keys]
        return {"keys": keys}

    def rotate(self) -> None:
        """Publish a second key and sign with it from now on (Clerk key rotation)."""
        self.extra_keys.append((self.kid, self.key))
        self.key = rsa_key()
        self.kid = f"ins_{uuid.uuid4().hex[:12]}"
        self.public_pem = public_pem(self.key)

    def jwks_app(self) -> Any:
        from tests.support.servers import Recorder

        def handler(request: Request) -> Response:
            import json

            if request.path != "/.well-known/jwks.json":
                return Response("not found", status=404)
            return Response(json.dumps(self.jwks()), mimetype="application/json")

        return Recorder(handler)
