"""One API server of a soak run: `python -m soak.server <port>`.

Every function on one port through `cosma.server.LocalServer`, with the runtime
built from the environment the orchestrator passes (`soak.config.environment`):
one instance of the system among four on the same database, keyring, warehouse
and export folder, composed as `cosma serve` composes it (the sandbox
registered). Its outside systems are the peer's (the sandbox's base URL and
the issuer settings point there). The one setting that is not in the
environment is the membership cache's bound (`SOAK_PRINCIPAL_TTL_S`), which the
authenticator takes as an argument. Prints `ready` once it listens.
"""

from __future__ import annotations

import logging
import os
import sys

from cosma.server import LocalServer, make_local_server
from shared.runtime import Runtime
from soak.config import local_runtime


def runtime_from_env() -> Runtime:
    runtime = local_runtime()
    runtime.authenticator.principal_ttl = float(os.environ.get("SOAK_PRINCIPAL_TTL_S", "30"))
    return runtime


def main(argv: list[str]) -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    runtime = runtime_from_env()
    server = make_local_server("127.0.0.1", int(argv[0]), LocalServer(runtime))
    print("ready", flush=True)
    try:
        server.serve_forever()
    finally:
        runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
