"""POST /sync runs only for Cloud Scheduler's Google-signed OIDC token.

Tokens are signed by a local stand-in for Google's certificate endpoint
(tests/support/google_certs.py). Every refused token answers the same 401
problem, takes no lease and writes no sync_runs row.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import jwt
import pytest
from werkzeug.test import Client

from cosma import localdb, sandbox_platform
from cosma.server import LocalServer
from shared import errors
from shared.settings import Settings
from shared.sync import trigger
from tests.support.google_certs import SCHEDULER_EMAIL, GoogleCerts
from tests.support.seed import Seeder
from tests.support.servers import serve
from tests.support.sync_env import Bench, sync_database

AUDIENCE = "https://europe-west1-cosma-test.cloudfunctions.net/sync"


@pytest.fixture(scope="module")
def certs() -> Iterator[tuple[GoogleCerts, str]]:
    google = GoogleCerts()
    with serve(google.app) as url:
        yield google, url


@pytest.fixture(scope="module")
def bench(
    pg: localdb.LocalDatabase,
    settings: Settings,
    certs: tuple[GoogleCerts, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Bench]:
    db = sync_database(pg)
    _, url = certs
    local = settings.with_changes(
        database_url=db.app_url,
        worker_database_url=db.worker_url,
        warehouse_dir=tmp_path_factory.mktemp("sync_trigger_wh"),
        sync_audience=AUDIENCE,
        scheduler_sa_email=SCHEDULER_EMAIL,
        google_certs_url=f"{url}/oauth2/v1/certs",
    )
    runtime = sandbox_platform.local_runtime(local)
    yield Bench(db, runtime, Seeder(db.admin_url))
    runtime.close()


@pytest.fixture
def client(bench: Bench) -> Client:
    return Client(LocalServer(bench.runtime))


@pytest.fixture
def due(bench: Bench) -> str:
    """A due connection: anything that runs a sync would lease it and record a run."""
    bench.retire_all()
    org = bench.org()
    return bench.connection(org, org.clients[0], "rt-trigger", dataset=False)


def _post(
    client: Client, token: str | None, scheme: str = "Bearer"
) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    response = client.post("/sync", headers=headers)
    return response.status_code, response.get_json(force=True)


def _assert_nothing_ran(bench: Bench, connection_id: str) -> None:
    row = bench.connection_row(connection_id)
    assert row["lease_owner"] is None and row["lease_until"] is None
    assert bench.runs(connection_id) == []


def _forged_hs256(google: GoogleCerts) -> str:
    # The classic confusion attack: HMAC keyed with the public certificate.
    now = int(time.time())
    payload = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": SCHEDULER_EMAIL,
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(payload, "not-the-key-" * 4, algorithm="HS256", headers={"kid": google.kid})


REFUSED = {
    "forged signature": lambda g: g.token(AUDIENCE, key=g.forger),
    "wrong audience": lambda g: g.token("https://example.test/sync"),
    "audience prefix": lambda g: g.token(AUDIENCE + "/extra"),
    "no audience": lambda g: g.token(AUDIENCE, aud=None),
    "wrong issuer": lambda g: g.token(AUDIENCE, iss="https://evil.example"),
    "no issuer": lambda g: g.token(AUDIENCE, iss=None),
    "wrong email": lambda g: g.token(AUDIENCE, email="someone@cosma-test.iam.gserviceaccount.com"),
    "no email": lambda g: g.token(AUDIENCE, email=None),
    "email not verified": lambda g: g.token(AUDIENCE, email_verified=False),
    "email_verified as text": lambda g: g.token(AUDIENCE, email_verified="true"),
    "expired": lambda g: g.token(
        AUDIENCE, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600
    ),
    "unknown kid": lambda g: g.token(AUDIENCE, kid="other-kid"),
    "hs256 confusion": _forged_hs256,
    "garbage": lambda g: "not.a.jwt",
    "truncated signature": lambda g: g.token(AUDIENCE)[:-10],
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_tokens_run_nothing(
    case: str, client: Client, bench: Bench, due: str, certs: tuple[GoogleCerts, str]
) -> None:
    google, _ = certs
    status, body = _post(client, REFUSED[case](google))
    assert status == 401
    assert body["detail"] == "The request could not be authenticated."
    _assert_nothing_ran(bench, due)


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer  "])
def test_missing_or_other_scheme_runs_nothing(
    header: str | None, client: Client, bench: Bench, due: str
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client.post("/sync", headers=headers)
    assert response.status_code == 401
    _assert_nothing_ran(bench, due)


def test_unconfigured_audience_refuses_even_a_valid_token(
    bench: Bench, due: str, certs: tuple[GoogleCerts, str]
) -> None:
    google, _ = certs
    runtime = sandbox_platform.local_runtime(bench.settings.with_changes(sync_audience=""))
    try:
        response = Client(LocalServer(runtime)).post(
            "/sync", headers={"Authorization": f"Bearer {google.token(AUDIENCE)}"}
        )
    finally:
        runtime.close()
    assert response.status_code == 401
    _assert_nothing_ran(bench, due)


def test_certificates_unavailable_is_503_and_runs_nothing(
    client: Client, bench: Bench, due: str, certs: tuple[GoogleCerts, str]
) -> None:
    google, _ = certs
    google.fail = True
    try:
        status, _body = _post(client, google.token(AUDIENCE))
    finally:
        google.fail = False
    assert status == 503
    _assert_nothing_ran(bench, due)


@pytest.mark.parametrize("issuer", ["https://accounts.google.com", "accounts.google.com"])
def test_scheduler_token_runs_a_sync(
    issuer: str, client: Client, bench: Bench, due: str, certs: tuple[GoogleCerts, str]
) -> None:
    google, _ = certs
    status, body = _post(client, google.token(AUDIENCE, iss=issuer))
    assert status == 200
    # The seeded connection has no dataset: the run fails, recorded and never silent.
    assert body["synced"] == 1
    assert body["connections"][0]["connection_id"] == due  # type: ignore[index]
    assert body["connections"][0]["error_class"] == "dataset_missing"  # type: ignore[index]
    runs = bench.runs(due)
    assert [r["outcome"] for r in runs] == ["failed"]
    row = bench.connection_row(due)
    assert row["lease_owner"] is None
    assert "provision" in row["health"]


def test_audit_record_per_run_as_system_sync(
    client: Client, bench: Bench, due: str, certs: tuple[GoogleCerts, str]
) -> None:
    google, _ = certs
    assert _post(client, google.token(AUDIENCE))[0] == 200
    rows = bench.sql(
        "select actor, action, resource, outcome from audit_log where resource = %s",
        (f"/connections/{due}",),
    )
    assert rows == [("system:sync", "sync.run", f"/connections/{due}", "failed")]


def test_nothing_due_answers_idle(
    client: Client, bench: Bench, certs: tuple[GoogleCerts, str]
) -> None:
    google, _ = certs
    bench.retire_all()
    status, body = _post(client, google.token(AUDIENCE))
    assert status == 200
    assert body["synced"] == 0 and body["stopped"] == "idle"


def test_trigger_import_loads_no_google_auth() -> None:
    # The trigger module imports nothing heavy at import time (cold starts).
    import subprocess
    import sys

    code = "import sys, shared.sync.trigger; print('google.oauth2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# Google publishes its keys as X.509 certificates (v1) and as a JWK set (v3);
# google-auth reads the second with pyjwt, so both paths are held to the same checks.
CERT_FORMATS = {"x509-v1": "/oauth2/v1/certs", "jwk-v3": "/oauth2/v3/certs"}


def _trigger_settings(settings: Settings, certs_url: str) -> Settings:
    return settings.with_changes(
        sync_audience=AUDIENCE, scheduler_sa_email=SCHEDULER_EMAIL, google_certs_url=certs_url
    )


@pytest.mark.parametrize("path", list(CERT_FORMATS.values()), ids=list(CERT_FORMATS))
def test_verify_accepts_the_scheduler_in_either_certificate_format(
    path: str, settings: Settings, certs: tuple[GoogleCerts, str]
) -> None:
    google, url = certs
    verified = trigger.verify(
        f"Bearer {google.token(AUDIENCE)}", _trigger_settings(settings, url + path)
    )
    assert verified == SCHEDULER_EMAIL


@pytest.mark.parametrize("path", list(CERT_FORMATS.values()), ids=list(CERT_FORMATS))
@pytest.mark.parametrize(
    "case", ["forged signature", "unknown kid", "hs256 confusion", "expired", "garbage"]
)
def test_verify_refuses_in_either_certificate_format(
    case: str, path: str, settings: Settings, certs: tuple[GoogleCerts, str]
) -> None:
    google, url = certs
    with pytest.raises(errors.Unauthorized):
        trigger.verify(f"Bearer {REFUSED[case](google)}", _trigger_settings(settings, url + path))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "certs_url",
    [f"http://127.0.0.1:{_closed_port()}/oauth2/v1/certs", "file:///etc/hostname"],
    ids=["connection refused", "not http"],
)
def test_certificates_out_of_reach_are_unavailable(
    certs_url: str, settings: Settings, certs: tuple[GoogleCerts, str]
) -> None:
    google, _ = certs
    with pytest.raises(errors.Unavailable):
        trigger.verify(f"Bearer {google.token(AUDIENCE)}", _trigger_settings(settings, certs_url))


# google-auth's `id_token.verify_token` (with the issuer and email checks both
# apply after it) is the judge of our reading of Google's tokens: the same
# decision for every case, ours over either certificate format.
def _now() -> int:
    return int(time.time())


JUDGED = {
    "valid": lambda g: g.token(AUDIENCE),
    "audience in a list": lambda g: g.token(AUDIENCE, aud=["https://other.test", AUDIENCE]),
    "audience list without it": lambda g: g.token(AUDIENCE, aud=["https://other.test"]),
    "issued a minute ahead": lambda g: g.token(AUDIENCE, iat=_now() + 60),
    "expired a second ago": lambda g: g.token(AUDIENCE, iat=_now() - 600, exp=_now() - 1),
    "no iat": lambda g: g.token(AUDIENCE, iat=None),
    "no exp": lambda g: g.token(AUDIENCE, exp=None),
    "exp as text": lambda g: g.token(AUDIENCE, exp=str(_now() + 600)),
    "rs384": lambda g: jwt.encode(
        {
            "iss": "https://accounts.google.com",
            "aud": AUDIENCE,
            "email": SCHEDULER_EMAIL,
            "email_verified": True,
            "iat": _now(),
            "exp": _now() + 600,
        },
        g.key,
        algorithm="RS384",
        headers={"kid": g.kid},
    ),
    **REFUSED,
}


def _judge(token: str, certs_url: str) -> bool:
    import google.auth.transport.requests
    from google.oauth2 import id_token

    try:
        claims = id_token.verify_token(
            token, google.auth.transport.requests.Request(), audience=AUDIENCE, certs_url=certs_url
        )
    except Exception:  # any refusal: ValueError, GoogleAuthError, TypeError
        return False
    return (
        claims.get("iss") in trigger.GOOGLE_ISSUERS
        and claims.get("email") == SCHEDULER_EMAIL
        and claims.get("email_verified") is True
    )


@pytest.mark.parametrize("path", list(CERT_FORMATS.values()), ids=list(CERT_FORMATS))
@pytest.mark.parametrize("case", sorted(JUDGED))
def test_google_auth_decides_every_token_as_we_do(
    case: str, path: str, settings: Settings, certs: tuple[GoogleCerts, str]
) -> None:
    google, url = certs
    token = JUDGED[case](google)
    try:
        trigger.verify(f"Bearer {token}", _trigger_settings(settings, url + path))
        ours = True
    except errors.Unauthorized:
        ours = False
    assert ours == _judge(token, url + CERT_FORMATS["x509-v1"])
    assert ours == (case == "valid")


def test_a_token_naming_no_key_is_refused_where_google_auth_tries_every_key(
    settings: Settings, certs: tuple[GoogleCerts, str]
) -> None:
    # Stricter on purpose: Google's ID tokens always carry `kid`.
    google, url = certs
    token = jwt.encode(
        jwt.decode(google.token(AUDIENCE), options={"verify_signature": False}),
        google.key,
        algorithm="RS256",
    )
    assert _judge(token, url + CERT_FORMATS["x509-v1"])
    for path in CERT_FORMATS.values():
        with pytest.raises(errors.Unauthorized):
            trigger.verify(f"Bearer {token}", _trigger_settings(settings, url + path))


@pytest.mark.parametrize("body", [b"not json", b"[]", b'"keys"'], ids=["text", "list", "string"])
def test_an_unreadable_certificate_document_is_unavailable(
    body: bytes, settings: Settings, certs: tuple[GoogleCerts, str]
) -> None:
    google, _ = certs

    def app(environ: dict[str, object], start_response: object) -> object:
        from werkzeug.wrappers import Response

        return Response(body, mimetype="application/json")(environ, start_response)  # type: ignore[arg-type]

    with serve(app) as url, pytest.raises(errors.Unavailable):
        trigger.verify(f"Bearer {google.token(AUDIENCE)}", _trigger_settings(settings, url))
