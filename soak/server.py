"""One API server of a soak run: `python -m soak.server <port>`.

Every function on one port through `cosma.server.LocalServer`, with the runtime
built from the environment the orchestrator passes (`soak.config.environment`):
one instance of the system among four on the same database, keyring, warehouse
and export folder. Its outside systems are the peer's (`platform_base_urls`
and the issuer settings point there). The one setting that is not in the
environment is the membership cache's bound (`SOAK_PRINCIPAL_TTL_S`), which the
authenticator takes as an argument. Prints `ready` once it listens.
"""

from __future__ import annotations

import logging
import os
import sys

from cosma.server import LocalServer, make_local_server
from shared import logs
from shared.runtime import Runtime
from shared.settings import Settings


def runtime_from_env() -> Runtime:
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    runtime = Runtime(settings)
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
