"""The API reference page (`/docs`) in a real browser: Debian's chromium, headless,
driven by Playwright (which downloads no browser of its own here).

The page must load from the local server alone, list every route of the
OpenAPI document, and log no console error (a script the CSP blocks, a failed
asset or a page error all count).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from cosma import reference
from cosma.server import PREFIXES, LocalServer, function_router
from shared.runtime import Runtime
from tests.support.servers import serve

# What the machine notes say Chromium needs here (root, closed network).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run installs Debian's package")
    pytest.skip("SKIPPED LOUDLY: no chromium on PATH (`apt-get install chromium`)")


def routes() -> set[tuple[str, str]]:
    return {(r.method, r.pattern) for name in PREFIXES for r in function_router(name).routes}


def test_the_page_and_its_assets_come_from_the_server(client: Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    html = page.get_data(as_text=True)
    assert "https://" not in html and "http://" not in html  # no CDN
    for name in [*reference.ASSETS, "init.js"]:
        asset = client.get(f"/docs/{name}")
        assert asset.status_code == 200, name
        assert f"/docs/{name}" in html
        assert len(asset.get_data()) > (100 if name == "init.js" else 10_000)
    assert client.get("/docs/index.html").status_code == 404  # only the listed files


@pytest.fixture(scope="module")
def live(runtime: Runtime) -> Iterator[str]:
    with serve(LocalServer(runtime)) as url:
        yield url


def test_a_headless_browser_renders_every_route_without_a_console_error(live: str) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    problems: list[str] = []
    foreign: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def on_console(message: Any) -> None:
                if message.type == "error":
                    problems.append(f"console: {message.text}")

            page.on("console", on_console)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
            page.on(
                "request",
                lambda req: None if req.url.startswith(live) else foreign.append(req.url),
            )
            response = page.goto(f"{live}/docs", wait_until="networkidle")
            assert response is not None and response.status == 200
            page.wait_for_selector(".opblock", timeout=20_000)
            listed = page.eval_on_selector_all(
                ".opblock",
                """blocks => blocks.map(b => [
                    b.querySelector('.opblock-summary-method').textContent.trim(),
                    b.querySelector('.opblock-summary-path').getAttribute('data-path'),
                ])""",
            )
            title = page.title()
        finally:
            browser.close()
    assert title == "Cosma API reference"
    assert {(method.upper(), path) for method, path in listed} == routes()
    assert len(listed) == len(routes())
    assert not foreign, foreign
    assert not problems, problems
