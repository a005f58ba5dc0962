"""Sentry receives our errors, and nothing secret with them.

A real sentry-sdk sends real envelopes to a local endpoint (the DSN points at
loopback); the test reads the decompressed bytes that would have left the
machine and searches them for every secret the failing request carried.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from cosma.server import LocalServer
from shared import observability
from shared.http import Context, Router
from shared.runtime import Runtime
from shared.settings import Settings
from tests.support.sentry_server import SentryServer, sentry_server

ROOT = Path(__file__).resolve().parents[2]

BEARER = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyX3NlbnRyeSJ9.c2lnbmF0dXJlLXNlbnRyeS10ZXN0"
EMAIL = "dana.sentry@agency.example"
REFRESH = "1//0refresh-Zq8xTkP4mW9vL2sN7aB3cD5eF"
CODE = "4/0AcodeYh7Kp2Lm9Qr5St8Uv1Wx4"
COOKIE = "session=cookie-Hq3Jr8Ks2Lt7Mu1Nv5"
CLIENT_SECRET = "GOCSPX-clientsecret-9aZ8bY7cX6"
IP = "198.51.100.23"
SECRETS = [BEARER, EMAIL, REFRESH, CODE, COOKIE, CLIENT_SECRET, IP, "cookie-Hq3Jr8Ks2Lt7Mu1Nv5"]


def exploding_router() -> Router:
    router = Router("boom")

    @router.route("POST", "/boom")
    def boom(ctx: Context) -> Response:
        import sentry_sdk

        api_token = ctx.request.headers["Authorization"]  # a local Sentry would keep
        body = json.loads(ctx.request.get_data())
        refresh_token, email = body["refresh_token"], body["email"]
        client_secret = CLIENT_SECRET
        sentry_sdk.set_user({"id": "user_sentry", "email": email, "ip_address": IP})
        logging.getLogger("cosma.provider").warning(
            "refresh for %s failed: refresh_token=%s", email, refresh_token
        )
        sentry_sdk.add_breadcrumb(
            category="httplib",
            data={
                "url": f"https://oauth.provider.test/token?code={CODE}&client_secret={client_secret}",
                "http.query": f"code={CODE}",
                "authorization": api_token,
            },
        )
        raise RuntimeError(f"provider refused {refresh_token} for {email} with {api_token}")

    return router


@pytest.fixture
def sentry() -> Iterator[SentryServer]:
    with sentry_server() as server:
        yield server
    observability.shutdown()


def leaked(envelopes: list[bytes]) -> list[str]:
    blob = b"\n".join(envelopes)
    return [s for s in SECRETS if s.encode() in blob]


def post_boom(client: Client) -> None:
    response = client.post(
        "/boom",
        headers={
            "Authorization": f"Bearer {BEARER}",
            "Cookie": COOKIE,
            "X-Forwarded-For": f"{IP}, 10.0.0.1",
        },
        json={"refresh_token": REFRESH, "email": EMAIL, "code": CODE},
    )
    assert response.status_code == 500
    assert response.content_type == "application/problem+json"


def test_an_unexpected_error_reaches_sentry_scrubbed(settings: Settings, sentry) -> None:
    runtime = Runtime(settings.with_changes(sentry_dsn=sentry.dsn(), release="cosma@test"))
    client = Client(LocalServer(runtime, extra=[exploding_router()]))
    post_boom(client)
    import sentry_sdk

    sentry_sdk.flush(timeout=5)
    envelopes = sentry.wait(1)
    events = sentry.events()
    # It did arrive, as the error it was, with our context...
    assert len(events) == 1, events
    event = events[0]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["environment"] == "test" and event["release"] == "cosma@test"
    assert event["tags"]["function"] == "local" and len(event["tags"]["request_id"]) >= 8
    assert event["user"] == {"id": "user_sentry"}
    # ...and no token, email, code, cookie, client secret or IP went with it.
    assert leaked(envelopes) == []
    for frame in event["exception"]["values"][-1]["stacktrace"]["frames"]:
        assert "vars" not in frame
    runtime.close()


def test_the_functions_framework_path_is_scrubbed_too(
    settings: Settings, sentry, tmp_path: Path
) -> None:
    """In the cloud the request arrives through Flask, whose Sentry integration adds
    the request's headers, cookies and body: the scrubber must remove them."""
    import functions_framework
    from flask import request as flask_request

    runtime = Runtime(settings.with_changes(sentry_dsn=sentry.dsn()))
    router = exploding_router()
    source = tmp_path / "main.py"
    source.write_text(
        textwrap.dedent(
            """
            HANDLE = None

            def boom(request):
                return HANDLE(request)
            """
        )
    )
    app = functions_framework.create_app(target="boom", source=str(source), signature_type="http")
    module = sys.modules.get("main")
    assert module is not None
    module.HANDLE = lambda _req: router.handle(flask_request, runtime)  # type: ignore[attr-defined]
    client = app.test_client()
    # The first request initialises Sentry (lazily); the second is fully instrumented.
    client.post("/boom", json={"warm": "up"})
    response = client.post(
        "/boom",
        headers={"Authorization": f"Bearer {BEARER}", "Cookie": COOKIE, "X-Forwarded-For": IP},
        json={"refresh_token": REFRESH, "email": EMAIL, "code": CODE},
    )
    assert response.status_code == 500
    import sentry_sdk

    sentry_sdk.flush(timeout=5)
    envelopes = sentry.wait(2)
    last = sentry.events()[-1]
    assert last["exception"]["values"][-1]["type"] == "RuntimeError"
    assert "request" in last and last["request"].get("method") == "POST"  # Flask added it
    assert "data" not in last["request"] and "cookies" not in last["request"]
    headers = {k.lower() for k in last["request"].get("headers", {})}
    assert not headers & {"authorization", "cookie", "x-forwarded-for"}
    assert leaked(envelopes) == []
    runtime.close()


def test_the_dsn_can_come_from_the_secrets_port(settings: Settings, sentry, tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "sentry-dsn").write_text(sentry.dsn() + "\n")
    runtime = Runtime(
        settings.with_changes(
            sentry_dsn="", sentry_dsn_secret="sentry-dsn", secrets_dir=secrets_dir
        )
    )
    client = Client(LocalServer(runtime, extra=[exploding_router()]))
    post_boom(client)
    import sentry_sdk

    sentry_sdk.flush(timeout=5)
    sentry.wait(1)
    assert sentry.events()[0]["exception"]["values"][-1]["type"] == "RuntimeError"
    runtime.close()


def test_a_missing_dsn_secret_leaves_sentry_off_and_requests_working(
    settings: Settings, tmp_path: Path
) -> None:
    runtime = Runtime(
        settings.with_changes(sentry_dsn_secret="sentry-dsn", secrets_dir=tmp_path / "none")
    )
    client = Client(LocalServer(runtime))
    assert client.get("/healthz").status_code == 200
    assert runtime.sentry_enabled is False
    runtime.close()


def test_without_a_dsn_sentry_is_never_imported(settings: Settings) -> None:
    # A fresh interpreter: the test process itself has imported sentry_sdk by now.
    script = textwrap.dedent(
        f"""
        import sys
        from werkzeug.test import Client
        from cosma.server import LocalServer
        from shared.runtime import Runtime
        from shared.settings import Settings
        settings = Settings(env="test", database_url={settings.database_url!r},
                            rate_limit_ip="", rate_limit_user="")
        runtime = Runtime(settings)
        client = Client(LocalServer(runtime))
        assert client.get("/healthz").status_code == 200
        assert client.get("/auth/session").status_code == 401
        print("sentry_sdk" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr


def test_the_scrubber_on_a_full_event() -> None:
    """Every place sentry-sdk can put request data, users, locals and breadcrumbs."""
    event = {
        "message": f"failed for {EMAIL}",
        "request": {
            "url": f"https://api.cosma.test/oauth/callback?code={CODE}&state=s1",
            "method": "GET",
            "query_string": f"code={CODE}",
            "headers": {
                "Authorization": f"Bearer {BEARER}",
                "Cookie": COOKIE,
                "X-Forwarded-For": IP,
                "User-Agent": "test",
            },
            "cookies": {"session": COOKIE},
            "data": {"refresh_token": REFRESH, "email": EMAIL},
            "env": {"REMOTE_ADDR": IP},
        },
        "user": {"id": "user_1", "email": EMAIL, "ip_address": IP, "username": "dana"},
        "exception": {
            "values": [
                {
                    "type": "RuntimeError",
                    "value": f"refused {REFRESH}",
                    "stacktrace": {"frames": [{"function": "f", "vars": {"token": BEARER}}]},
                }
            ]
        },
        "breadcrumbs": {
            "values": [
                {"message": f"Authorization: Bearer {BEARER}", "data": {"client_secret": "x"}},
                {"data": {"url": f"https://p.test/t?code={CODE}"}},
            ]
        },
        "extra": {"note": f"client_secret={CLIENT_SECRET}", "nested": [{"access_token": "a"}]},
    }
    scrubbed = observability.scrub_event(json.loads(json.dumps(event)))
    text = json.dumps(scrubbed)
    assert [s for s in SECRETS if s in text] == []
    assert scrubbed["request"]["headers"] == {"User-Agent": "test"}
    assert scrubbed["request"]["url"] == "https://api.cosma.test/oauth/callback"
    assert scrubbed["user"] == {"id": "user_1"}
    assert "vars" not in json.dumps(scrubbed["exception"]) or "[Filtered]" in text
    assert scrubbed["exception"]["values"][0]["type"] == "RuntimeError"  # still useful
    crumb = observability.scrub_breadcrumb({"data": {"url": f"https://p.test/t?code={CODE}"}})
    assert crumb["data"]["url"] == "https://p.test/t"
