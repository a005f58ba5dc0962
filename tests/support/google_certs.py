"""A stand-in for Google's OIDC certificate endpoint and the tokens Cloud Scheduler sends.

`GoogleCerts` holds an RSA key and a self-signed X.509 certificate; `app` serves
`{kid: PEM certificate}` exactly as https://www.googleapis.com/oauth2/v1/certs
does, and the same key as a JWK set (`{"keys": [...]}`) at `/oauth2/v3/certs`;
`token(...)` signs an RS256 ID token with that `kid`, shaped like the
ones Cloud Scheduler attaches (`iss`, `aud`, `email`, `email_verified`, `sub`,
`azp`, `iat`, `exp`). Every claim can be overridden or removed (None) for
attack tests; `forger` is a second key that the endpoint does not publish.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from werkzeug.wrappers import Request, Response

SCHEDULER_EMAIL = "scheduler@cosma-test.iam.gserviceaccount.com"


def _key_and_cert() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cosma-test-google-certs")])
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
    return key, cert.public_bytes(serialization.Encoding.PEM)


class GoogleCerts:
    def __init__(self, kid: str = "cosma-test-kid-1") -> None:
        self.kid = kid
        self.key, self.cert_pem = _key_and_cert()
        self.forger, _ = _key_and_cert()
        self.fetches = 0
        self.fail = False

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.fetches += 1
        if self.fail or request.path not in ("/oauth2/v1/certs", "/oauth2/v3/certs"):
            response = Response("unavailable", status=503)
        elif request.path == "/oauth2/v1/certs":
            body = json.dumps({self.kid: self.cert_pem.decode()})
            response = Response(body, mimetype="application/json")
        else:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
            response = Response(json.dumps({"keys": [jwk]}), mimetype="application/json")
        return response(environ, start_response)

    def token(
        self,
        audience: str,
        *,
        email: str = SCHEDULER_EMAIL,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        lifetime: int = 3600,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": "https://accounts.google.com",
            "aud": audience,
            "azp": "112233445566778899000",
            "sub": "112233445566778899000",
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + lifetime,
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(
            payload,
            key or self.key,
            algorithm="RS256",
            headers={"kid": kid or self.kid},
        )
