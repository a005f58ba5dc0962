"""Key rotation with a server running, as an operator does it beside `make run`.

A real server process (tests/support/server_process.py) serves every function
and the sandbox platform (its OAuth provider and report API) on one database;
the rotation, the retirement and the syncs run as the `cosma` command in
processes of their own, as they do in operation. Nothing is restarted.

A trigger that this test adds to its own database logs every token write
(which version the row names and which version its ciphertext names), so the
test can prove that no token is ever written under a retired version.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests

from cosma import localdb, sandbox_oauth
from shared.cipher import TokenCipher
from shared.secrets import LocalSecrets
from shared.settings import Settings
from tests.support.identity import TokenIssuer
from tests.support.seed import Org, Seeder
from tests.support.sync_env import sync_database

ROOT = Path(__file__).resolve().parents[2]
REFRESH_S = 1
GRACE_S = 8

_WRITE_LOG = """
create table test_token_writes (
  connection_id uuid not null,
  key_version   text,
  sealed_with   text,
  at            timestamptz not null default clock_timestamp()
);
create function test_log_token_write() returns trigger
language plpgsql security definer as $$
begin
  if new.token_ciphertext is not null then
    insert into test_token_writes (connection_id, key_version, sealed_with)
    values (new.id, new.key_version,
            split_part(encode(substring(new.token_ciphertext from 1 for 16), 'escape'), ':', 1));
  end if;
  return new;
end
$$;
create trigger test_log_token_write after insert or update of token_ciphertext on connections
  for each row execute function test_log_token_write();
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Live:
    url: str
    db: localdb.LocalDatabase
    keys: LocalSecrets
    env: dict[str, str]  # the `cosma` command's environment (worker role)
    seeder: Seeder
    tokens: TokenIssuer
    served: list[int] = field(default_factory=list)  # /healthz answers while the test runs

    def cosma(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cosma.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db.admin_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def connect(self) -> tuple[Org, dict[str, str], str]:
        """Connect the sandbox platform for a new client, through the server, as a
        browser does; returns the organization, the admin's header, the connection id."""
        org = self.seeder.org(clients=1, roles=("admin",))
        auth = self.tokens.header(org.principal(org.user("admin")))
        started = requests.post(
            f"{self.url}/oauth/sandbox/start",
            json={"client_id": org.clients[0], "all_accounts": True},
            headers=auth,
            timeout=30,
        )
        assert started.status_code == 200, started.text
        consent = requests.get(
            started.json()["authorization_url"], allow_redirects=False, timeout=30
        )
        assert consent.status_code == 302
        done = requests.get(
            consent.headers["Location"], headers=auth, allow_redirects=False, timeout=30
        )
        assert done.status_code == 302, done.text
        assert parse_qs(urlsplit(done.headers["Location"]).query)["status"] == ["connected"]
        [(connection_id,)] = self.sql(
            "select id::text from connections where org_id = %s", (org.id,)
        )
        return org, auth, connection_id

    def sync_all(self, expected: set[str]) -> None:
        """`cosma sync --now`: every active connection syncs, and each ends ok."""
        result = self.cosma("sync", "--now")
        assert result.returncode == 0, result.stdout + result.stderr
        outcomes = {
            line.split()[1].rstrip(":"): line.split()[2].rstrip(",")
            for line in result.stdout.splitlines()
            if line.startswith("connection ")
        }
        assert outcomes == dict.fromkeys(expected, "ok"), result.stdout

    def disconnect(self, auth: dict[str, str], connection_id: str) -> None:
        gone = requests.delete(f"{self.url}/connections/{connection_id}", headers=auth, timeout=30)
        assert gone.status_code == 200, gone.text
        assert gone.json()["revocation"]["revoked"] is True, gone.text

    def writes(self) -> list[tuple[str, str, str, Any]]:
        return [
            (str(c), v, s, at)
            for c, v, s, at in self.sql(
                "select connection_id, key_version, sealed_with, at from test_token_writes"
                " order by at"
            )
        ]

    def db_now(self) -> Any:
        return self.sql("select clock_timestamp()")[0][0]


@pytest.fixture
def live(pg: localdb.LocalDatabase, tokens: TokenIssuer, tmp_path: Path) -> Iterator[Live]:
    db = sync_database(pg)
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute(_WRITE_LOG)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    keys = LocalSecrets(tmp_path / "keys")
    keys.keyring()  # the first key, as `cosma serve` makes it on first run
    sandbox_oauth.ensure_client_secret(Settings(secrets_dir=tmp_path / "secrets"))
    common = {
        **os.environ,
        "COSMA_ENV": "test",
        "WORKER_DATABASE_URL": db.worker_url,
        "COSMA_PUBLIC_URL": url,
        "COSMA_APP_URL": "https://app.cosma.test",
        "COSMA_ALLOWED_ORIGINS": tokens.azp,
        "CLERK_ISSUER": tokens.issuer,
        "CLERK_JWT_KEY": tokens.public_pem,
        "COSMA_KEYRING_DIR": str(keys.dir),
        "COSMA_SECRETS_DIR": str(tmp_path / "secrets"),
        "COSMA_WAREHOUSE_DIR": str(tmp_path / "warehouse"),
        "COSMA_HOME": str(tmp_path / "home"),
        "COSMA_KEYRING_REFRESH_S": str(REFRESH_S),
        "COSMA_KEY_RETIRE_GRACE_S": str(GRACE_S),
        "COSMA_SYNC_FIRST_DAYS": "2",
        "COSMA_RATE_LIMIT_IP": "",
        "COSMA_RATE_LIMIT_USER": "",
        "COSMA_LOG_LEVEL": "WARNING",
    }
    server_env = {**common, "DATABASE_URL": db.app_url, "PORT": str(port)}
    cli_env = dict(common)
    cli_env.pop("DATABASE_URL", None)
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.server_process"],
        cwd=ROOT,
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    stop = threading.Event()
    result = Live(url, db, keys, cli_env, Seeder(db.admin_url), tokens)

    def watch() -> None:
        # The server keeps serving: a health check every 0.2 s for the whole test.
        while not stop.wait(0.2):
            try:
                result.served.append(requests.get(f"{url}/healthz", timeout=10).status_code)
            except requests.RequestException:
                result.served.append(0)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == f"port={port}", f"server did not start: {line!r}"
        watcher.start()
        yield result
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join(timeout=15)
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_the_issue_as_reported_rotate_retire_then_connect_sync_disconnect(live: Live) -> None:
    """With a server running that has sealed a token already: rotate-keys,
    keys-check --retire, then connect another client, sync it and disconnect it.
    The server must seal with the new version."""
    _, auth_first, first = live.connect()
    rotate = live.cosma("rotate-keys")
    assert rotate.returncode == 0, rotate.stdout + rotate.stderr
    retire = live.cosma("keys-check", "--retire")
    assert retire.returncode == 0, retire.stdout + retire.stderr
    assert "version 1: retired" in retire.stdout
    _, auth, connection_id = live.connect()
    [(version,)] = live.sql("select key_version from connections where id = %s", (connection_id,))
    assert version == "2"
    check = live.cosma("keys-check")
    assert "(unknown)" not in check.stdout and check.returncode == 0, check.stdout
    live.sync_all({first, connection_id})
    live.disconnect(auth, connection_id)
    live.disconnect(auth_first, first)


def test_rotate_retire_and_re_encrypt_while_the_server_serves(live: Live) -> None:
    # Before: a connection made and synced with version 1.
    _, auth_a, a = live.connect()
    live.sync_all({a})

    # Tokens for the rotation to work through (connections needing a reconnect: the
    # sync leaves them alone, the rotation does not).
    bulk = live.seeder.org(clients=1, roles=("admin",))
    old = TokenCipher(live.keys.keyring())
    ids = [
        str(r[0])
        for r in live.sql(
            "insert into connections (org_id, client_id, platform, created_by, status)"
            " select %s, %s, 'sandbox', 'test', 'reauth_required' from generate_series(1, 3000)"
            " returning id",
            (bulk.id, bulk.clients[0]),
        )
    ]
    with psycopg.connect(live.db.admin_url, autocommit=True) as conn, conn.transaction():
        for conn_id in ids:
            sealed = old.encrypt(f"rt-{conn_id}", connection_id=conn_id, org_id=bulk.id)
            conn.execute(
                "update connections set token_ciphertext = %s, key_version = %s where id = %s",
                (sealed.ciphertext, sealed.key_version, conn_id),
            )

    # During: the rotation runs in its own process (new key, passes, the grace, a
    # last pass) while a client connects through the server and everything syncs.
    rotation = subprocess.Popen(
        [sys.executable, "-m", "cosma.cli", "rotate-keys", "--batch-size", "25"],
        cwd=ROOT,
        env=live.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert rotation.stdout is not None
    first = rotation.stdout.readline()
    assert first.strip() == "added key version 2", first
    _, auth_b, b = live.connect()
    assert rotation.poll() is None, "the rotation ended before the connection was made"
    live.sync_all({a, b})
    early = live.cosma("keys-check", "--retire")
    assert early.returncode == 1, early.stdout
    assert "version 1: not yet retirable" in early.stdout or "on an old version" in early.stdout
    assert [v for v, _ in live.keys.keyring()] == ["2", "1"]
    rest, _ = rotation.communicate(timeout=120)
    assert rotation.returncode == 0, first + rest
    assert "waiting " in rest and ", 0 still on an old version" in rest, rest

    # The rotation's "done" is final: retiring version 1 is allowed at once.
    retire = live.cosma("keys-check", "--retire")
    assert retire.returncode == 0, retire.stdout + retire.stderr
    assert "version 1: retired" in retire.stdout
    retired_at = live.db_now()
    assert [v for v, _ in live.keys.keyring()] == ["2"]

    # After: a new connection, every connection syncs, every one disconnects.
    _, auth_c, c = live.connect()
    live.sync_all({a, b, c})
    for auth, connection_id in ((auth_a, a), (auth_b, b), (auth_c, c)):
        live.disconnect(auth, connection_id)

    census = live.cosma("keys-check")
    assert census.returncode == 0 and "2 (newest): 3000" in census.stdout, census.stdout
    writes = live.writes()
    # Every write names the version its ciphertext was sealed with ...
    assert all(version == sealed for _, version, sealed, _ in writes)
    # ... version 1 sealed tokens before, version 2 during and after ...
    assert {v for _, v, _, _ in writes} == {"1", "2"}
    assert {v for conn_id, v, _, _ in writes if conn_id == c} == {"2"}
    # ... and nothing was written under version 1 once it was retired.
    assert [w for w in writes if w[1] == "1" and w[3] >= retired_at] == []
    # The server answered every health check throughout.
    assert live.served and set(live.served) == {200}, live.served
