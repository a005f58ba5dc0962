"""The peer process: every outside system of a soak run, in one place.

    python -m soak.peer <layout.json>

Four API servers cannot each host their own sandbox provider (its grants would
differ per process), so one process serves, for all of them:

- the sandbox platform's OAuth provider and report API (`cosma.sandbox_oauth`,
  `cosma.sandbox_reports`: the same code `cosma serve` mounts);
- the local issuer's JWKS (Clerk's part; the client processes mint with its key);
- Google's OIDC signing key (a JWK set, as at v3), for the sync trigger's Cloud Scheduler tokens;
- `POST /_soak/fault {"mode": ...}`: the provider's faults, switched by the
  orchestrator. While one is on, the token, revocation and report endpoints
  answer 429 with Retry-After (`rate_limit`), 503 (`server_error`), or hold the
  request for `hold_s` and then answer 504 (`timeout`: past every client's
  timeout). None of them is processed: a held request never reaches the
  provider, as when a gateway in front of it gives up. The browser-facing
  authorize endpoint is left alone.

It prints `ready` on stdout once it listens.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

FAULTED = ("/sandbox/oauth/token", "/sandbox/oauth/revoke", "/sandbox/api/")
MODES = ("none", "rate_limit", "server_error", "timeout")


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.mode = "none"
        self.hold_s = 7.0
        self.answered: dict[str, int] = {m: 0 for m in MODES}

    def set(self, mode: str, hold_s: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        with self._lock:
            self.mode = mode
            if hold_s is not None:
                self.hold_s = hold_s

    def answer(self, path: str) -> Response | None:
        """The fault's answer for `path`, or None to serve it."""
        if not path.startswith(FAULTED):
            return None
        with self._lock:
            mode, hold_s = self.mode, self.hold_s
            self.answered[mode] += 1
        if mode == "rate_limit":
            return Response(
                json.dumps({"error": "rate_limited"}),
                status=429,
                headers={"Retry-After": "2"},
                mimetype="application/json",
            )
        if mode == "server_error":
            return Response("unavailable", status=503)
        if mode == "timeout":
            time.sleep(hold_s)
            return Response("gateway timeout", status=504)
        return None


class Peer:
    def __init__(self, home: Path) -> None:
        from cosma import sandbox_oauth, sandbox_reports
        from cosma.issuer import LocalIssuer
        from shared.http import Router
        from soak import google
        from soak.config import local_runtime

        self.runtime = local_runtime()
        self.faults = Faults()
        self.google_keys = google.jwks(home)
        sandbox_oauth.provider.keep_grants_in(home / "sandbox")
        self.router = Router("peer", peer=True)
        self.router.add(sandbox_oauth.provider.router())
        self.router.add(sandbox_reports.reports.router())
        self.router.add(LocalIssuer.load_or_create(home).router())
        self.provider = sandbox_oauth.provider

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._respond(request)
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:

        if request.path == "/_soak/fault" and request.method == "POST":
            body = json.loads(request.get_data() or b"{}")
            self.faults.set(str(body.get("mode", "none")), body.get("hold_s"))
            return Response(json.dumps({"mode": self.faults.mode}), mimetype="application/json")
        if request.path == "/_soak/state" and request.method == "GET":
            return Response(json.dumps(self.state()), mimetype="application/json")
        if request.path == "/oauth2/v3/certs":
            return Response(json.dumps(self.google_keys), mimetype="application/json")
        faulted = self.faults.answer(request.path)
        if faulted is not None:
            return faulted
        return self.router.handle(request, self.runtime)

    def state(self) -> dict[str, Any]:
        """What the provider holds (counts only) and what the faults answered."""
        return {
            "live_refresh_grants": self.provider.live_refresh_grants(),
            "fault_answers": dict(self.faults.answered),
        }


def main(argv: list[str]) -> int:
    from cosma.server import make_local_server
    from soak.config import Layout

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    layout = Layout.load(Path(argv[0]))
    peer = Peer(layout.home)
    server = make_local_server("127.0.0.1", layout.peer_port, peer)
    print("ready", flush=True)
    try:
        server.serve_forever()
    finally:
        peer.runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
