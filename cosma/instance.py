"""The running local server's record in the state folder (`.cosma/`).

One `cosma serve` at a time may use a state folder: it holds an exclusive
`flock` on `<state>/server.lock` for as long as it runs (the kernel drops it
when the process dies, however it dies) and writes `<state>/server.json`
with its address and the identity of its local issuer. The other commands
(`cosma dev-token`, `cosma sync`, `cosma url`) read that record instead of
their own environment, so a server started with `PORT=8292` is found from a
shell that never set `PORT`.

A record whose lock nobody holds is left over from a killed server and is
treated as absent.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

LOCK_NAME = "server.lock"
RECORD_NAME = "server.json"


@dataclass(frozen=True)
class ServerRecord:
    pid: int
    url: str  # the base URL it serves on, e.g. http://127.0.0.1:8080
    issuer: str  # the `iss` its local issuer's tokens must carry
    azp: str  # the origin its tokens are minted for (its first allowed origin)


class Claim:
    """This process's hold on a state folder, from `claim` until `release`."""

    def __init__(self, home: Path, handle: IO[str]) -> None:
        self.home = home
        self._handle = handle

    def publish(self, record: ServerRecord) -> None:
        _write_atomic(self.home / RECORD_NAME, json.dumps(asdict(record), indent=2) + "\n")

    def release(self) -> None:
        (self.home / RECORD_NAME).unlink(missing_ok=True)
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def claim(home: Path) -> Claim | None:
    """Hold `home` for this process; None when another server holds it."""
    home.mkdir(parents=True, exist_ok=True)
    handle = (home / LOCK_NAME).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    # A record left by a killed server names a dead process: not ours to keep.
    (home / RECORD_NAME).unlink(missing_ok=True)
    return Claim(home, handle)


def running(home: Path) -> ServerRecord | None:
    """The record of the server holding `home`, or None when none is running."""
    path = home / LOCK_NAME
    if not path.exists():
        return None
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(home)  # held: a server is running
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _read(home: Path) -> ServerRecord | None:
    try:
        data = json.loads((home / RECORD_NAME).read_text())
        return ServerRecord(
            pid=int(data["pid"]), url=data["url"], issuer=data["issuer"], azp=data["azp"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # starting up, or not ours: the lock alone says it runs


def _write_atomic(path: Path, text: str) -> None:
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
