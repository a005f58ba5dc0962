"""A small closed-loop HTTP load generator, run as its own process.

    python -m bench.loadgen '<json request>' --port P --seconds S --threads T

Each thread keeps one `http.client` connection (keep-alive when the server
allows it; gunicorn's sync workers close after every response and the
connection simply reopens) and sends the same request back to back until the
deadline. Prints one JSON object: completed 2xx responses, other statuses,
transport errors, the measured wall time, and the 2xx latencies' p50 and p99
in milliseconds. Standard library only, so the generator costs the same
against every server it drives.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from typing import Any


def _worker(
    port: int,
    spec: dict[str, Any],
    deadline: float,
    counts: dict[str, int],
    all_latencies: list[float],
    lock: threading.Lock,
) -> None:
    body = spec.get("body")
    data = body.encode() if isinstance(body, str) else None
    headers = dict(spec.get("headers") or {})
    ok = other = failed = 0
    latencies: list[float] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while time.perf_counter() < deadline:
        try:
            sent = time.perf_counter()
            conn.request(spec["method"], spec["path"], body=data, headers=headers)
            response = conn.getresponse()
            response.read()
            if 200 <= response.status < 300:
                ok += 1
                latencies.append(time.perf_counter() - sent)
            else:
                other += 1
        except (OSError, http.client.HTTPException):
            failed += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    with lock:
        counts["ok"] += ok
        counts["other"] += other
        counts["failed"] += failed
        all_latencies.extend(latencies)


def _percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("request")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    spec = json.loads(args.request)
    counts = {"ok": 0, "other": 0, "failed": 0}
    latencies: list[float] = []
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + args.seconds
    threads = [
        threading.Thread(target=_worker, args=(args.port, spec, deadline, counts, latencies, lock))
        for _ in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts_out: dict[str, float] = {
        **counts,
        "seconds": time.perf_counter() - started,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }
    print(json.dumps(counts_out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
