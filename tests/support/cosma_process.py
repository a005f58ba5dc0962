"""`cosma serve` and the other `cosma` commands as real processes on a state folder.

The tests of the local tooling run the command a user runs, in its own
process, so that signals, the state folder's lock and the embedded Postgres's
life cycle are the real ones. Each state folder is made with `mkdtemp`, not
pytest's numbered folders (pytest prunes those while other sessions run,
which would pull a data directory from under a running Postgres).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from cosma import instance

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
    env.update(COSMA_HOME=str(home), COSMA_LOG_LEVEL="WARNING", **extra)
    env.pop("WORKER_DATABASE_URL", None)
    return env


class Serve:
    """One `cosma serve --port PORT` on `home` (port 0: a free one)."""

    def __init__(self, home: Path, port: int = 0, **env: str) -> None:
        self.home = home
        self.log = home.parent / f"serve-{time.monotonic_ns()}.log"
        self._log_handle = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cosma.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=environment(home, **env),
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.url = ""

    def wait_ready(self) -> Serve:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            record = instance.running(self.home)
            if record is not None and record.pid == self.proc.pid:
                self.url = record.url
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"cosma serve exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"cosma serve did not start:\n{self.output()}")

    def output(self) -> str:
        if not self._log_handle.closed:
            self._log_handle.flush()
        return self.log.read_text()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as `kill` sends; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as after a crash or an OOM kill."""
        self.proc.kill()
        self.wait(30)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log_handle.close()


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cosma.cli", *args],
        cwd=ROOT,
        env=environment(home, **env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def postgres_processes(datadir: Path) -> list[psutil.Process]:
    """Postmasters (and their children) running on `datadir`."""
    target = str(datadir.resolve())
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "postgres" and target in cmdline:
            found.append(proc)
    return found


def wait_for_no_postgres(datadir: Path, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not postgres_processes(datadir):
            return True
        time.sleep(0.1)
    return False


def stop_postgres(datadir: Path) -> None:
    """Clean-up for a test that failed with Postgres left running."""
    for proc in postgres_processes(datadir):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    wait_for_no_postgres(datadir, 10)
