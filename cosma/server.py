"""All functions on one local port, each under its own path prefix.

In the cloud each function is its own service behind the load balancer's URL
map; here one WSGI app sends each path to the same function's router, with
the same runtime code paths, so `make run` is the real system on loopback.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from shared.http import Context, Router, json_response
from shared.runtime import Runtime

# Which function serves which path prefix (mirrors the load balancer's URL map).
PREFIXES: dict[str, tuple[str, ...]] = {
    "auth": ("/auth", "/.well-known/security.txt"),
    "oauth": ("/oauth", "/connections"),
    "datasets": ("/datasets", "/clients", "/audit"),
    "query": ("/query",),
    "sync": ("/sync",),
}


ROOT = Path(__file__).resolve().parent.parent


def load_function(name: str, root: Path = ROOT) -> ModuleType:
    """Import `functions/<name>/main.py` by path, as Cloud Functions loads `main.py`."""
    module_name = f"cosma_function_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(
        module_name, root / "functions" / name / "main.py"
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"no function {name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def function_router(name: str) -> Router:
    router: Router = load_function(name).router
    return router


def local_router() -> Router:
    """Routes that exist only on the local server (health, and local peers added later)."""
    router = Router("local")

    @router.route("GET", "/healthz")
    def healthz(ctx: Context) -> Response:
        return json_response({"status": "ok"})

    @router.route("GET", "/openapi.json")
    def openapi_json(ctx: Context) -> Response:
        """The OpenAPI 3.1 document of every function's routes."""
        from shared.http import openapi

        routers = [function_router(name) for name in PREFIXES]
        return json_response(openapi.document(routers, server_url=ctx.settings.public_url))

    # The API reference page over that document (Swagger UI, assets installed locally).
    from cosma import reference

    router.add(reference.router())
    # The sandbox platform's OAuth provider, so the connect flow runs without internet.
    from cosma import sandbox_oauth

    router.add(sandbox_oauth.provider.router())
    # ... and its report API, which the sandbox connector syncs from.
    from cosma import sandbox_reports

    router.add(sandbox_reports.reports.router())
    return router


class LocalServer:
    def __init__(self, runtime: Runtime, extra: Iterable[Router] = ()) -> None:
        self.runtime = runtime
        self.table: list[tuple[str, Router]] = []
        for name, prefixes in PREFIXES.items():
            router = function_router(name)
            self.table.extend((prefix, router) for prefix in prefixes)
        self.fallback = local_router()
        for router in extra:
            self.fallback.add(router)

    def router_for(self, path: str) -> Router:
        for prefix, router in self.table:
            if path == prefix or path.startswith(prefix + "/"):
                return router
        return self.fallback

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.router_for(request.path).handle(request, self.runtime)
        return response(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    """Names no framework or version in the `Server` header (werkzeug's says
    `Werkzeug/<version> Python/<version>`): a scanner learns nothing to match."""

    def version_string(self) -> str:
        return "cosma"


def make_local_server(host: str, port: int, app: Any, fd: int | None = None) -> BaseWSGIServer:
    """The threaded local HTTP server every local entry point uses; `fd` is a socket
    already listening (so the caller, not werkzeug, answers a port in use)."""
    return make_server(host, port, app, threaded=True, request_handler=_QuietHandler, fd=fd)
