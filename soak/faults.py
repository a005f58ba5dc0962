"""The faults of a run, on a schedule relative to the load's start.

    provider   the sandbox provider answers 429 with Retry-After, then 503, then
               holds requests past every timeout (each for 5% of the run, at least
               2.5 s), from 10% of the run
    postgres   Postgres stopped the hard way and started again (down 2-5 s), at 30%
    rotation   `cosma rotate-keys` (a new key version, every token re-encrypted, the
               grace waited out) then `cosma keys-check --retire`, at 42%
    server     one API instance SIGKILLed and started again on its port, at 55%
    sync       a sync invocation in its own process SIGKILLed while it holds
               leases and loads, at 75%

Each returns what it did (`soak.checks.Fault`'s fields): when it started and
ended, whether it did what it stands for, and a short account.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soak.run import Orchestrator

PROVIDER_MODES = ("rate_limit", "server_error", "timeout")
HOLD_S = 7.0  # past the provider timeouts of the soak's settings (5 s, 3 s)


def provider_phase_s(seconds: float) -> float:
    return max(2.5, 0.05 * seconds)


def schedule(seconds: float) -> list[tuple[float, str]]:
    return [
        (0.10 * seconds, "provider"),
        (0.30 * seconds, "postgres"),
        (0.42 * seconds, "rotation"),
        (0.55 * seconds, "server"),
        (0.75 * seconds, "sync"),
    ]


def provider_window(start: float, seconds: float) -> tuple[float, float]:
    begin = start + 0.10 * seconds
    return begin, begin + len(PROVIDER_MODES) * provider_phase_s(seconds)


def _peer(o: Orchestrator, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (the peer, on loopback)
        o.layout.peer_url + path, data=data, method="POST" if data else "GET"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        result: dict[str, Any] = json.loads(answer.read())
        return result


def provider_state(o: Orchestrator) -> dict[str, Any]:
    """What the provider holds now (counts only), or {} if the peer does not answer."""
    try:
        return _peer(o, "/_soak/state")
    except OSError:
        return {}


def provider(o: Orchestrator) -> dict[str, Any]:
    phase = provider_phase_s(o.knobs.seconds)
    before = _peer(o, "/_soak/state")["fault_answers"]
    start = time.time()
    for mode in PROVIDER_MODES:
        # Work for the provider: a few connections due now, so syncs call it.
        o.make_due(limit=10)
        _peer(o, "/_soak/fault", {"mode": mode, "hold_s": HOLD_S})
        time.sleep(phase)
    _peer(o, "/_soak/fault", {"mode": "none"})
    end = time.time()
    after = _peer(o, "/_soak/state")["fault_answers"]
    answered = {m: after[m] - before.get(m, 0) for m in PROVIDER_MODES}
    return {
        "name": "provider",
        "start": start,
        "end": end,
        "ok": all(n > 0 for n in answered.values()),
        "detail": ", ".join(f"{m} x{n}" for m, n in answered.items()) + f", {phase:.1f} s each",
    }


def postgres(o: Orchestrator) -> dict[str, Any]:
    from soak import postgres as pg

    outage = max(2.0, min(5.0, 0.03 * o.knobs.seconds))
    start = time.time()
    pg.restart(o.pgdata, outage)
    end = time.time()
    ok = o.database_answers()
    return {
        "name": "postgres",
        "start": start,
        "end": end,
        "ok": ok,
        "detail": f"stopped (immediate), down {outage:.1f} s, back after {end - start:.1f} s",
    }


def rotation(o: Orchestrator) -> dict[str, Any]:
    start = time.time()
    rotate = _cosma(o, "rotate-keys")
    check = _cosma(o, "keys-check", "--retire")
    end = time.time()
    retired = [line for line in check.stdout.splitlines() if line.endswith(": retired")]
    done = [line for line in rotate.stdout.splitlines() if line.startswith("done:")]
    ok = rotate.returncode == 0 and check.returncode == 0 and bool(retired)
    detail = f"{done[-1] if done else 'rotate-keys exited ' + str(rotate.returncode)}; " + (
        ", ".join(retired) if retired else f"keys-check: {check.stdout.strip()[-200:]}"
    )
    return {"name": "rotation", "start": start, "end": end, "ok": ok, "detail": detail}


def _cosma(o: Orchestrator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cosma.cli", *args],
        cwd=o.root,
        env={**o.env, "COSMA_HOME": str(o.layout.home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def server(o: Orchestrator) -> dict[str, Any]:
    index = 1
    start = time.time()
    o.servers[index].kill()
    time.sleep(1.0)
    o.servers[index].start()
    o.servers[index].wait_url(o.layout.server_url(index) + "/healthz")
    end = time.time()
    return {
        "name": "server",
        "start": start,
        "end": end,
        "ok": True,
        "server": index,
        "detail": f"instance {index} SIGKILLed, serving again after {end - start:.1f} s",
    }


def sync(o: Orchestrator) -> dict[str, Any]:
    from soak.cluster import Proc

    o.make_due(limit=None)
    start = time.time()
    worker = Proc(f"sync-killed-{int(start)}", ["soak.sync_worker", "soak-kill"], o.env, o.logs)
    worker.start()
    running_runs = 0
    deadline = time.time() + 30
    while time.time() < deadline and worker.running():
        running_runs = o.runs_in_progress("soak-kill:%")
        if running_runs:
            break
        time.sleep(0.02)
    time.sleep(0.2)  # into the run: refreshing, fetching, replacing slices
    held = o.leases_held("soak-kill:%")
    running = worker.running()
    worker.kill()
    end = time.time()
    return {
        "name": "sync",
        "start": start,
        "end": end,
        "ok": running and held > 0 and running_runs > 0,
        "detail": f"sync invocation SIGKILLed {end - start:.1f} s in, holding {held} leases,"
        f" in the middle of {running_runs} run(s)",
    }


FAULTS: dict[str, Callable[[Orchestrator], dict[str, Any]]] = {
    "provider": provider,
    "postgres": postgres,
    "rotation": rotation,
    "server": server,
    "sync": sync,
}
