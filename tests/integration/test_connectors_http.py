"""ApiClient against a real local HTTP server: error translation and token handling."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from werkzeug.wrappers import Request, Response

from shared.errors import (
    AccessTokenRejected,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from shared.platforms.reports import ApiClient
from tests.support.platform_servers import PlatformServer, _json
from tests.support.servers import serve

TOKEN = "tok-secret-123"


@dataclass
class EchoServer(PlatformServer):
    def handle(self, request: Request) -> Response:
        if request.path == "/bytes":
            return Response(b"\x00\x01raw", mimetype="application/octet-stream")
        if request.path == "/teapot":
            return _json({"error": {"message": f"echo {TOKEN}"}}, 418)
        if request.path == "/redirect":
            return Response(status=302, headers={"Location": "http://example.invalid/x"})
        return _json({"ok": True, "path": request.path})


@pytest.fixture
def echo() -> Iterator[tuple[EchoServer, str]]:
    server = EchoServer()
    with serve(server) as url:
        yield server, url


def test_token_travels_only_in_the_authorization_header(echo: tuple[EchoServer, str]) -> None:
    server, url = echo
    api = ApiClient(url + "/base", TOKEN, headers={"developer-token": "dev"})
    assert api.get("things", params={"a": "1"}) == {"ok": True, "path": "/base/things"}
    sent = server.requests[0]
    assert sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert sent["headers"]["Developer-Token"] == "dev"
    assert TOKEN not in sent["path"] + sent["query"]
    assert TOKEN not in repr(api)


def test_tiktok_style_access_token_header(echo: tuple[EchoServer, str]) -> None:
    server, url = echo
    ApiClient(url, TOKEN).get("x", auth="access-token")
    headers = server.requests[0]["headers"]
    assert headers["Access-Token"] == TOKEN
    assert "Authorization" not in headers


def test_no_token_or_platform_header_to_another_origin(echo: tuple[EchoServer, str]) -> None:
    server, url = echo
    other = url.replace("127.0.0.1", "localhost")
    api = ApiClient(other, TOKEN, headers={"DeveloperToken": "dev"})
    assert api.get_bytes(url + "/bytes") == b"\x00\x01raw"
    headers = server.requests[0]["headers"]
    assert "Authorization" not in headers and "Developertoken" not in headers


def test_redirects_are_not_followed_with_a_token(echo: tuple[EchoServer, str]) -> None:
    _, url = echo
    with pytest.raises(ProviderError):
        ApiClient(url, TOKEN).get("redirect")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AccessTokenRejected),
        (403, PermissionDenied),
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
        (400, ProviderError),
    ],
)
def test_status_translation(echo: tuple[EchoServer, str], status: int, error: type) -> None:
    server, url = echo
    server.fail(status)
    with pytest.raises(error) as caught:
        ApiClient(url, TOKEN, platform="meta").get("x")
    assert type(caught.value) is error
    assert "meta" in str(caught.value)


def test_429_carries_retry_after(echo: tuple[EchoServer, str]) -> None:
    server, url = echo
    server.fail(429, retry_after="17")
    with pytest.raises(RateLimited) as caught:
        ApiClient(url, TOKEN).get("x")
    assert caught.value.retry_after == 17.0
    server.fail(429)
    with pytest.raises(RateLimited) as caught:
        ApiClient(url, TOKEN).get("x")
    assert caught.value.retry_after == 60.0


def test_timeout_is_unavailable(echo: tuple[EchoServer, str]) -> None:
    server, url = echo
    server.fail("timeout", delay=1.0)
    with pytest.raises(ProviderUnavailable):
        ApiClient(url, TOKEN, timeout=0.2).get("x")


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderUnavailable):
        ApiClient(f"http://127.0.0.1:{port}", TOKEN, timeout=1).get("x")


def test_errors_never_carry_the_body_or_token(
    echo: tuple[EchoServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, url = echo
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderError) as caught:
        ApiClient(url, TOKEN).get("teapot")
    assert TOKEN not in str(caught.value) and "echo" not in str(caught.value)
    assert TOKEN not in caplog.text


def test_platform_error_hook_runs_first(echo: tuple[EchoServer, str]) -> None:
    server, url = echo
    server.fail(400)

    def hook(status: int, body: object, headers: object) -> ProviderError | None:
        assert status == 400 and isinstance(body, dict)
        return RateLimited("custom", retry_after=5)

    with pytest.raises(RateLimited) as caught:
        ApiClient(url, TOKEN).get("x", errors=hook)
    assert caught.value.retry_after == 5
