"""One sync invocation in a process of its own: `python -m soak.sync_worker <owner prefix>`.

What `POST /sync` runs (`shared.sync.runner.run`) on the worker role, from the
environment the orchestrator passes, with lease owners named `<prefix>:...` so
the orchestrator sees when it holds connections, and can SIGKILL it there.
"""

from __future__ import annotations

import sys

from shared.sync import runner
from soak.config import local_runtime


def main(argv: list[str]) -> int:
    runtime = local_runtime()
    try:
        report = runner.run(runtime, owner=runner.new_owner(argv[0]))
    finally:
        runtime.close()
    print(f"synced {len(report.results)} connection(s), {report.rows} rows", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
