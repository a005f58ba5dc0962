"""Real HTTP servers on loopback, in a thread, for the peers we cannot reach here
(Clerk JWKS, OAuth providers, ad-platform APIs, BigQuery, Secret Manager, Sentry)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.wrappers import Request, Response

from cosma.server import make_local_server


class Recorder:
    """A WSGI app that records requests and answers through a handler."""

    def __init__(self, handler: Callable[[Request], Response]) -> None:
        self.handler = handler
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self.lock:
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "args": request.args.to_dict(flat=False),
                    "headers": dict(request.headers),
                    "body": body,
                }
            )
        response = self.handler(request)
        return response(environ, start_response)


@contextmanager
def serve(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a WSGI app on a free loopback port; yields its base URL."""
    server = make_local_server(host, 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
