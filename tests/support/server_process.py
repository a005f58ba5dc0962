"""One real server process: `python -m tests.support.server_process`.

Builds the local composition (`cosma.sandbox_platform.local_runtime`: the
deployed platforms plus the sandbox, as `cosma serve` does) from
`Settings.from_env()` (the environment the parent passes), serves every
function through `LocalServer` on a free loopback port
(or on `PORT`, when the parent must know it beforehand, e.g. for
`COSMA_PUBLIC_URL`), and prints `port=<n>` on stdout once it is listening.
Several of these on one database are several instances of the system, as in
the cloud.
"""

from __future__ import annotations

import logging
import os
import sys

from cosma import sandbox_platform
from cosma.server import LocalServer, make_local_server
from shared.settings import Settings


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    runtime = sandbox_platform.local_runtime(Settings.from_env())
    port = int(os.environ.get("PORT", "0"))
    server = make_local_server("127.0.0.1", port, LocalServer(runtime))
    print(f"port={server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
