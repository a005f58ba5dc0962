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

from cosma import sandbox_platform
from shared.http import Context, Router, json_response
from shared.runtime import Runtime

# Which function serves which path prefix (mirrors the load balancer's URL map).
PREFIXES: dict[str, tuple[str, ...]] = {
    "auth": ("/auth", "/.well-known/security.txt"),
    "oauth": ("/oauth", "/connections"),
    "datasets": ("/datasets", "/clients", "/members", "/audit"),
    "query": ("/query",),
    "sync": ("/sync",),
    "directory": ("/webhooks/clerk", "/directory"),
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
        document = openapi.document(routers, server_url=ctx.settings.public_url)
        return json_response(with_platforms(document, ctx.runtime.platforms.names))

    # The API reference page over that document (Swagger UI, assets installed locally).
    from cosma import reference

    router.add(reference.router())
    return router


def with_platforms(node: Any, names: Iterable[str]) -> Any:
    """The document with every platform enum listing the platforms this server
    serves: the deployed ones (what the models declare) plus the sandbox."""
    from shared.platform_names import CLOUD_PLATFORMS

    served = list(names)
    if isinstance(node, dict):
        if node.get("enum") == list(CLOUD_PLATFORMS):
            return {**node, "enum": served}
        return {k: with_platforms(v, served) for k, v in node.items()}
    if isinstance(node, list):
        return [with_platforms(v, served) for v in node]
    return node


def sandbox_routers() -> list[Router]:
    """The sandbox platform's OAuth provider (so the connect flow runs without
    internet) and its report API, which the sandbox connector syncs from."""
    from cosma import sandbox_oauth, sandbox_reports

    return [sandbox_oauth.provider.router(), sandbox_reports.reports.router()]


class LocalServer:
    def __init__(self, runtime: Runtime, extra: Iterable[Router] = ()) -> None:
        self.runtime = runtime
        self.table: list[tuple[str, Router]] = []
        for name, prefixes in PREFIXES.items():
            router = function_router(name)
            self.table.extend((prefix, router) for prefix in prefixes)
        self.fallback = local_router()
        # The sandbox is served where the runtime registers it (`sandbox_platform`).
        if sandbox_platform.NAME in runtime.platforms:
            for router in sandbox_routers():
                self.fallback.add(router)
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
