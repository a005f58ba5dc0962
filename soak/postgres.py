"""The run's embedded Postgres (`cosma.localdb`), and the restart fault.

`restart` stops the server the hard way (`pg_ctl stop -m immediate`: no
checkpoint, every backend dropped, crash recovery at the next start, as after
a crash or a failover), keeps it down for a while, and starts it again on the
same socket directory with the same options pgserver used.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cosma import localdb


def _system_user() -> str | None:
    # pgserver runs postgres as its own system user when started by root.
    return "pgserver" if os.geteuid() == 0 else None


def _socket_dir(datadir: Path) -> str:
    """From postmaster.pid (its fifth line), read while the server runs."""
    lines = (datadir / "postmaster.pid").read_text().splitlines()
    return lines[4].strip()


def prepare(datadir: Path) -> localdb.LocalDatabase:
    return localdb.prepare(admin_url=None, datadir=datadir, fresh=True)


def restart(datadir: Path, outage_s: float) -> None:
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    socket_dir = _socket_dir(datadir)
    user = _system_user()
    pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=datadir, user=user, timeout=60)
    time.sleep(outage_s)
    pg_ctl(
        ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(datadir / "log"), "start"],
        pgdata=datadir,
        user=user,
        timeout=60,
    )


def stop(datadir: Path, db: localdb.LocalDatabase) -> None:
    """Stop the server, restarted or not (pgserver's own handle knows only the first
    postmaster), then release pgserver's handle."""
    import contextlib
    import subprocess

    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    if (datadir / "postmaster.pid").exists():
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=datadir, user=_system_user(), timeout=60)
    db.stop()
