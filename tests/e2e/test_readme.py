"""The README's walk-through, verbatim, as a newcomer runs it.

`make run` (with `PORT=8292`, and with the default port) in a folder of its
own, then every `sh` block of "Try it" run by bash in a second shell that
knows nothing of the port, then the commands of the server's start-up banner.
The folder links the repository's Makefile, pyproject and lock and its
`.venv/`, so `make run` is the real target and finds its set-up done; its
`.cosma/` is fresh.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cosma import instance
from tests.support.cosma_process import stop_postgres

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
pytestmark = pytest.mark.slow


def walkthrough_blocks(text: str) -> list[str]:
    """The `sh` blocks of the "Try it" section, in order."""
    section = text.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _shell_env(**extra: str) -> dict[str, str]:
    """A second terminal: no PORT, no database or state settings of the suite."""
    drop = ("PORT", "DATABASE_URL", "WORKER_DATABASE_URL", "COSMA_HOME", "MAKEFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


@pytest.fixture
def checkout() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="cosma-readme-"))
    for name in (".venv", "Makefile", "pyproject.toml", "requirements.lock", "README.md"):
        (folder / name).symlink_to(ROOT / name)
    yield folder
    stop_postgres(folder / ".cosma" / "pg")
    shutil.rmtree(folder, ignore_errors=True)


def _make_run(checkout: Path, port: int | None) -> subprocess.Popen[str]:
    env = _shell_env(COSMA_LOG_LEVEL="WARNING")
    if port is not None:
        env["PORT"] = str(port)
    return subprocess.Popen(
        ["make", "run"],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # make and the server: one group to signal
    )


def _wait_ready(checkout: Path, proc: subprocess.Popen[str]) -> instance.ServerRecord:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        record = instance.running(checkout / ".cosma")
        if record is not None:
            return record
        if proc.poll() is not None:
            raise AssertionError(f"make run exited {proc.returncode}: {proc.communicate()[0]}")
        time.sleep(0.1)
    raise AssertionError("make run did not start")


def _bash(script: str, checkout: Path) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=checkout,
        env=_shell_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    shown = f"{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, shown
    return result.stdout


def _walk(checkout: Path, port: int | None) -> None:
    expected = port or 8080
    if not _port_free(expected):
        if os.environ.get("CI"):
            pytest.fail(f"port {expected} is taken on the CI machine")
        pytest.skip(f"SKIPPED LOUDLY: port {expected} is in use here; the README needs it free")
    server = _make_run(checkout, port)
    try:
        record = _wait_ready(checkout, server)
        assert record.url == f"http://127.0.0.1:{expected}"
        first, sandbox, erase, directory = walkthrough_blocks(README.read_text())

        out = _bash(first, checkout)
        assert '{"status":"ok"}' in out
        assert "HTTP/1.1 404" in out and "application/problem+json" in out
        assert '"user_id":"u1"' in out and '"role":"admin"' in out

        # The sandbox block, then the erase block in the same shell (it uses $CLIENT).
        out = _bash(sandbox + "\n" + erase, checkout)
        lines = out.splitlines()
        assert re.fullmatch(r"302 http://localhost:3000/\S*", lines[0]), lines[0]
        assert re.search(r"connection \S+: ok, \d+ rows, 3 account\(s\), window ", out), out
        assert "made 1 connection(s) due now" in out
        assert '"rows":[["sbx-1001","USD",' in out  # the query, by account
        assert '"platform":"sandbox","status":"active"' in out  # the connection list
        # The export's answer, then its first link followed.
        assert re.search(r'"name":"cosma_local_\w+_sandbox-000000000000\.parquet"', lines[-5])
        assert re.search(r'"sha256":"[0-9a-f]{64}"', lines[-5]) and '"url":"http' in lines[-5]
        assert lines[-4] == "200", lines[-4]
        # disconnect, drop the dataset, erase the client
        assert lines[-3:] == ["200", "204", "200"], lines[-3:]

        # Organizations, members and clients: signed Clerk events, clients by API.
        out = _bash(directory, checkout)
        lines = out.splitlines()
        assert lines[0] == "409", lines  # a second "acme"
        assert lines[1] == "204", lines  # the editor is assigned Acme
        assert '"name":"Acme"' in lines[2] and "Globex" not in lines[2], lines[2]
        assert lines[3] == "404", lines  # ... and does not see Globex
        assert '"user_id":"u2","role":"editor","client_ids":["' in lines[4], lines[4]
        assert lines[5:] == [
            "403",  # a viewer's POST /clients
            "404",  # another organization's admin
            "organizationMembership.deleted: applied",
            "403",  # the removed editor
        ], lines

        # The banner's commands work as printed, from a shell without PORT.
        banner = _banner_commands(checkout)
        out = _bash("\n".join(banner), checkout)
        assert '{"status":"ok"}' in out and '"user_id":"u1"' in out
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C in the terminal of `make run`
        output = server.communicate(timeout=120)[0]
    assert "cosma: stopped" in output, output
    assert instance.running(checkout / ".cosma") is None


def _banner_commands(checkout: Path) -> list[str]:
    """The command lines the running server printed in its banner."""
    record = instance.running(checkout / ".cosma")
    assert record is not None
    from cosma.cli import banner

    return [
        line.strip()
        for line in banner(record.url).splitlines()
        if line.startswith(("  curl", "  TOKEN="))
    ]


def test_the_walkthrough_on_port_8292(checkout: Path) -> None:
    _walk(checkout, 8292)


def test_the_walkthrough_on_the_default_port(checkout: Path) -> None:
    _walk(checkout, None)
