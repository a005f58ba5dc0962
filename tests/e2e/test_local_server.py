"""`cosma serve` and its companions as a newcomer meets them: real processes on
a state folder, stopped and killed at awkward moments.

- one server per state folder, our own message for a port in use;
- `cosma dev-token` and `cosma sync` find the running server (its issuer, its
  port) in the state folder, whatever PORT their shell has;
- sandbox grants survive a restart; `cosma sync` with the server down says so
  and changes nothing;
- the embedded Postgres survives a killed server, a damaged pgserver handle
  list and a stop interrupted by more signals, and is never left behind.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests

from cosma import instance, localdb
from tests.support.cosma_process import (
    Serve,
    cli,
    postgres_processes,
    stop_postgres,
    wait_for_no_postgres,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def home() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="cosma-serve-"))
    state = folder / "state"
    yield state
    stop_postgres(state / "pg")
    shutil.rmtree(folder, ignore_errors=True)


def _session(url: str, token: str) -> requests.Response:
    return requests.get(
        f"{url}/auth/session", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def _token(home: Path, *args: str, **env: str) -> str:
    result = cli(home, "dev-token", "--user", "u1", "--org", "o1", "--role", "admin", *args, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_second_server_on_the_same_state_is_refused(home: Path) -> None:
    first = Serve(home).wait_ready()
    try:
        second = Serve(home)
        assert second.wait(60) == 1
        out = second.output()
        assert f"another server (pid {first.proc.pid}, {first.url}) is already running" in out
        assert "COSMA_HOME=" in out
        # The first one is untouched, and still the one on record.
        assert requests.get(f"{first.url}/healthz", timeout=10).status_code == 200
        record = instance.running(home)
        assert record is not None and record.pid == first.proc.pid
    finally:
        assert first.stop() == 0


def test_a_port_in_use_gets_our_message_before_postgres_starts(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Serve(home, port=port)
        assert server.wait(60) == 1
    out = server.output()
    assert f"cosma: cannot listen on 127.0.0.1:{port}" in out
    assert "PORT=8292 make run" in out
    assert "is in use by another program" not in out  # werkzeug's own words
    assert not (home / "pg" / "PG_VERSION").exists()
    assert instance.running(home) is None


def test_dev_token_names_the_running_servers_issuer_not_its_shells_port(home: Path) -> None:
    server = Serve(home).wait_ready()
    try:
        # The shell that mints says PORT=8080; the server listens elsewhere.
        token = _token(home, PORT="8080")
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["iss"] == server.url != "http://127.0.0.1:8080"
        response = _session(server.url, token)
        assert response.status_code == 200, response.text
        assert response.json()["org_id"] == "o1"
        assert cli(home, "url").stdout.strip() == server.url
    finally:
        assert server.stop() == 0
    down = cli(home, "url")
    assert down.returncode == 1 and "no local server is running" in down.stderr


def test_dev_token_errors_read_as_sentences_and_change_nothing(home: Path) -> None:
    server = Serve(home).wait_ready()
    try:
        bad = cli(home, "dev-token", "--user", "u2", "--org", "o2", "--client", "not-a-uuid")
        assert bad.returncode == 2
        assert "'not-a-uuid' is not a client id: client ids are UUIDs" in bad.stderr
        assert "InvalidTextRepresentation" not in bad.stderr
        unknown = "3f2b1c9e-0000-4000-8000-000000000000"
        missing = cli(
            home, "dev-token", "--user", "u2", "--org", "o2", "--create-client", "Acme",
            "--client", unknown,
        )  # fmt: skip
        assert missing.returncode == 2
        assert f"organization o2 has no client {unknown}" in missing.stderr
        assert "ForeignKeyViolation" not in missing.stderr and "client Acme" not in missing.stderr
        audit = cli(home, "audit-verify", "--org", "nope")
        assert audit.returncode == 1
        assert "has no audit records, so nothing was checked" in audit.stderr
        # Neither refused command left its organization, member or client behind.
        url = localdb.with_database(f"postgresql://postgres:@/postgres?host={home / 'pg'}", "cosma")
        import psycopg

        with psycopg.connect(url) as conn:
            rows = conn.execute("select count(*) from members where org_id = 'o2'").fetchone()
            clients = conn.execute("select count(*) from clients where name = 'Acme'").fetchone()
        assert rows == (0,) and clients == (0,)
    finally:
        assert server.stop() == 0


def _connect_sandbox(url: str, token: str, client_id: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    start = requests.post(
        f"{url}/oauth/sandbox/start",
        json={"client_id": client_id, "all_accounts": True},
        headers=auth,
        timeout=30,
    )
    assert start.status_code == 200, start.text
    approve = requests.get(start.json()["authorization_url"], allow_redirects=False, timeout=30)
    assert approve.status_code == 302
    callback = requests.get(
        approve.headers["Location"], headers=auth, allow_redirects=False, timeout=60
    )
    assert callback.status_code in (302, 303), callback.text
    assert "error" not in callback.headers["Location"], callback.headers["Location"]


def test_sandbox_connections_stay_syncable_across_a_restart(home: Path) -> None:
    server = Serve(home).wait_ready()
    try:
        made = cli(
            home, "dev-token", "--user", "u1", "--org", "o1", "--role", "admin",
            "--create-client", "Acme",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        client_id = made.stderr.split("client Acme: ", 1)[1].split()[0]
        _connect_sandbox(server.url, made.stdout.strip(), client_id)
    finally:
        assert server.stop() == 0
    grants = json.loads((home / "sandbox" / "grants.json").read_text())
    assert len(grants["refresh"]) == 1 and len(grants["refresh"][0]) == 64  # a digest only

    # The server is down: the sync says so, and leaves the connection as it was.
    down = cli(home, "sync")
    assert down.returncode == 2
    assert "no local server is running" in down.stderr and "Nothing was synced" in down.stderr

    server = Serve(home).wait_ready()
    try:
        synced = cli(home, "sync")  # due since connecting: not backed off by the try above
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert ": ok," in synced.stdout and "reauth_required" not in synced.stdout
        again = cli(home, "sync", "--now")  # the rotated refresh token was kept too
        assert again.returncode == 0 and ": ok," in again.stdout, again.stdout
    finally:
        assert server.stop() == 0


def _postmaster(home: Path) -> int:
    found = postgres_processes(home / "pg")
    assert found, "no Postgres on the data directory"
    return found[0].pid


def test_a_killed_server_and_an_emptied_handle_list_do_not_break_the_next_start(
    home: Path,
) -> None:
    server = Serve(home).wait_ready()
    server.kill()
    orphan = _postmaster(home)  # Postgres outlives the killed server
    (home / "pg" / localdb.HANDLE_LIST).write_text("")  # the damage seen after such a stop
    server = Serve(home).wait_ready()
    assert _postmaster(home) == orphan  # adopted, not a second server
    token = _token(home)
    assert _session(server.url, token).status_code == 200
    assert server.stop() == 0
    assert wait_for_no_postgres(home / "pg"), "Postgres left running after the stop"
    assert "JSONDecodeError" not in server.output()
    assert json.loads((home / "pg" / localdb.HANDLE_LIST).read_text()) == []


def test_more_signals_during_the_stop_do_not_leave_postgres_behind(home: Path) -> None:
    server = Serve(home).wait_ready()
    server.signal(signal.SIGTERM)
    for _ in range(5):  # an impatient user: Ctrl-C, then kill, while it stops
        time.sleep(0.02)
        if server.proc.poll() is None:
            server.signal(signal.SIGINT)
            server.signal(signal.SIGTERM)
    assert server.wait(60) == 0, server.output()
    assert wait_for_no_postgres(home / "pg")
    assert json.loads((home / "pg" / localdb.HANDLE_LIST).read_text()) == []


def test_a_server_killed_while_stopping_is_cleaned_up_by_the_next_one(home: Path) -> None:
    server = Serve(home).wait_ready()
    server.signal(signal.SIGTERM)
    time.sleep(0.05)  # somewhere in the stop
    server.kill()
    again = Serve(home).wait_ready()
    token = _token(home)
    assert _session(again.url, token).status_code == 200
    assert again.stop() == 0
    assert wait_for_no_postgres(home / "pg")


def test_a_server_killed_while_starting_is_cleaned_up_by_the_next_one(home: Path) -> None:
    first = Serve(home)
    deadline = time.monotonic() + 60
    while not postgres_processes(home / "pg") and time.monotonic() < deadline:
        time.sleep(0.02)
    first.kill()  # Postgres is up, migrations may be under way
    server = Serve(home).wait_ready()
    assert _session(server.url, _token(home)).status_code == 200
    assert server.stop() == 0
    assert wait_for_no_postgres(home / "pg")


def test_a_failed_sync_says_what_failed_not_none_none(home: Path) -> None:
    server = Serve(home).wait_ready()
    try:
        made = cli(
            home, "dev-token", "--user", "u1", "--org", "o1", "--role", "admin",
            "--create-client", "Acme",
        )  # fmt: skip
        token, client_id = made.stdout.strip(), made.stderr.split("client Acme: ", 1)[1].split()[0]
        _connect_sandbox(server.url, token, client_id)
        # Without its dataset the worker cannot load anything (it may not create one).
        dropped = requests.delete(
            f"{server.url}/datasets/{client_id}/sandbox",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert dropped.status_code == 204, dropped.text
        result = cli(home, "sync")
        assert result.returncode == 1
        assert ": failed (dataset_missing), 0 rows, 0 account(s), no report read," in result.stdout
        assert "None" not in result.stdout
    finally:
        assert server.stop() == 0
