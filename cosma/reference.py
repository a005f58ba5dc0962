"""The API reference page of the local server: Swagger UI over `/openapi.json`.

    GET /docs                         the page
    GET /docs/swagger-ui.css          Swagger UI's assets, from the `swagger-ui-py`
    GET /docs/swagger-ui-bundle.js    wheel the project's set-up installs (never a CDN)
    GET /docs/init.js                 starts Swagger UI on the served document

The page loads nothing from outside the server: its Content-Security-Policy
allows scripts, styles and requests to this origin only (Swagger UI sets
inline styles, hence 'unsafe-inline' for styles alone), and the online
validator badge is off. Local only: nothing here is deployed.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from werkzeug.wrappers import Response

from shared.http import Context, Router

PAGE_PATH = "/docs"
# Asset name -> content type; only these files are served.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; connect-src 'self'; font-src 'self' data:;"
    " frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cosma API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""


def static_dir() -> Path:
    """swagger-ui-py's asset folder, found without importing the package (its
    `__init__` loads template engines the page does not need)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: run `make run` (it installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@cache
def _asset(name: str) -> bytes:
    return (static_dir() / name).read_bytes()


def _respond(body: str | bytes, content_type: str) -> Response:
    return Response(body, headers={"Content-Type": content_type, "Content-Security-Policy": CSP})


def router() -> Router:
    router = Router("reference")

    @router.route("GET", PAGE_PATH)
    def page(ctx: Context) -> Response:
        """The API reference page."""
        return _respond(PAGE, "text/html; charset=utf-8")

    @router.route("GET", f"{PAGE_PATH}/init.js")
    def init(ctx: Context) -> Response:
        return _respond(INIT, "text/javascript; charset=utf-8")

    for name, content_type in ASSETS.items():

        def asset(ctx: Context, name: str = name, content_type: str = content_type) -> Response:
            return _respond(_asset(name), content_type)

        router.route("GET", f"{PAGE_PATH}/{name}")(asset)
    return router
