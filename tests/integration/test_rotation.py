"""Key rotation against a real Postgres, as the worker role.

The module gets its own migrated database on the session's server, so the
whole-table passes and counts here see only this module's rows.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from cosma import localdb
from shared import migrate, rotation
from shared.cipher import TokenCipher
from shared.db import Database
from shared.secrets import LocalSecrets
from tests.support.seed import Seeder

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RotationDb:
    admin_url: str
    worker_url: str
    worker: Database
    seeder: Seeder


@pytest.fixture(scope="module")
def rdb(pg: localdb.LocalDatabase) -> Iterator[RotationDb]:
    dbname = f"cosma_rotation_{os.getpid()}"
    server_admin = localdb.with_database(pg.admin_url, "postgres")
    localdb.create_database(server_admin, dbname, fresh=True)
    admin_url = localdb.with_database(pg.admin_url, dbname)
    migrate.apply(admin_url)  # roles exist already; their passwords stay as they are
    worker_url = localdb.with_database(pg.worker_url, dbname)
    worker = Database(worker_url, name="rotation-test")
    yield RotationDb(admin_url, worker_url, worker, Seeder(admin_url))
    worker.close()
    with psycopg.connect(server_admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{dbname}" with (force)')


@pytest.fixture
def clean(rdb: RotationDb) -> RotationDb:
    """Each test starts with no stored token and no key version on record (rows of
    earlier tests are cleared)."""
    with psycopg.connect(rdb.admin_url, autocommit=True) as conn:
        conn.execute("delete from connections")
        conn.execute("delete from key_versions")
    return rdb


@pytest.fixture
def keys(tmp_path: Path) -> LocalSecrets:
    return LocalSecrets(tmp_path / "keys")


def cli_env(
    rdb: RotationDb, keys: LocalSecrets, tmp_path: Path, *, grace: float = 0, refresh: float = 0
) -> dict[str, str]:
    """The rotation commands' environment: the worker role, this test's keys. A zero
    grace and refresh unless a test is about them: nothing else runs beside these."""
    env = {
        **os.environ,
        "COSMA_ENV": "test",
        "WORKER_DATABASE_URL": rdb.worker_url,
        "COSMA_KEYRING_DIR": str(keys.dir),
        "COSMA_HOME": str(tmp_path / "home"),
        "COSMA_KEY_RETIRE_GRACE_S": str(grace),
        "COSMA_KEYRING_REFRESH_S": str(refresh),
    }
    env.pop("DATABASE_URL", None)
    return env


def token_for(i: int) -> str:
    return f"1//rt-{i:05d}-{uuid.uuid4().hex}"


def store(rdb: RotationDb, cipher: TokenCipher, n: int) -> dict[str, tuple[str, str]]:
    """n connections with sealed tokens; returns id -> (org id, plaintext token)."""
    org = rdb.seeder.org(clients=1, roles=("admin",))
    rows: dict[str, tuple[str, str]] = {}
    with psycopg.connect(rdb.admin_url, autocommit=True) as conn, conn.transaction():
        ids = [
            str(r[0])
            for r in conn.execute(
                "insert into connections (org_id, client_id, platform, created_by)"
                " select %s, %s, 'sandbox', 'test' from generate_series(1, %s) returning id",
                (org.id, org.clients[0], n),
            ).fetchall()
        ]
    with rdb.worker.transaction() as conn:
        for i, conn_id in enumerate(ids):
            token = token_for(i)
            sealed = cipher.encrypt(token, connection_id=conn_id, org_id=org.id)
            conn.execute(
                "update connections set token_ciphertext = %s, key_version = %s where id = %s",
                (sealed.ciphertext, sealed.key_version, conn_id),
            )
            rows[conn_id] = (org.id, token)
    return rows


def stored(rdb: RotationDb) -> dict[str, tuple[str, bytes]]:
    with psycopg.connect(rdb.admin_url) as conn:
        return {
            str(i): (v, bytes(c))
            for i, v, c in conn.execute(
                "select id, key_version, token_ciphertext from connections"
                " where token_ciphertext is not null"
            ).fetchall()
        }


def assert_all_open(rdb: RotationDb, cipher: TokenCipher, rows: dict[str, tuple[str, str]]) -> None:
    now = stored(rdb)
    for conn_id, (org_id, token) in rows.items():
        _, ciphertext = now[conn_id]
        assert cipher.decrypt(ciphertext, connection_id=conn_id, org_id=org_id) == token


# ---------------------------------------------------------------- the rotation


def test_rotation_re_encrypts_every_token_in_batches(
    clean: RotationDb, keys: LocalSecrets, caplog: pytest.LogCaptureFixture
) -> None:
    old = TokenCipher(keys.keyring())
    rows = store(clean, old, 23)
    before = stored(clean)
    keys.add_key_version()
    new = TokenCipher(keys.keyring())
    # A token made with the old key opens with the new keyring before any rotation.
    assert_all_open(clean, new, rows)
    assert rotation.census(clean.worker) == {"1": 23}

    seen: list[int] = []
    caplog.set_level(logging.DEBUG)
    result = rotation.rotate(
        clean.worker, new, batch_size=5, on_batch=lambda p: seen.append(p.rotated)
    )
    assert (result.total, result.rotated, result.remaining, result.failed) == (23, 23, 0, [])
    assert seen == [5, 10, 15, 20, 23]
    assert rotation.census(clean.worker) == {"2": 23}
    after = stored(clean)
    assert all(v == "2" and c.startswith(b"2:") for v, c in after.values())
    assert all(after[i][1] != before[i][1] for i in rows)
    # Tokens made with the old key decrypt after rotation, and need the old key no more.
    only_new = TokenCipher([keys.keyring()[0]])
    assert_all_open(clean, only_new, rows)
    # Nothing sensitive reached the logs.
    text = "\n".join(r.getMessage() + str(getattr(r, "fields", "")) for r in caplog.records)
    for conn_id, (_, token) in rows.items():
        assert token not in text
        assert after[conn_id][1].decode()[2:30] not in text
        assert before[conn_id][1].decode()[2:30] not in text

    # A second run has nothing to do.
    again = rotation.rotate(clean.worker, new, batch_size=5)
    assert (again.total, again.rotated, again.batches) == (0, 0, 0)


def test_an_interrupted_rotation_resumes_and_finishes(
    clean: RotationDb, keys: LocalSecrets
) -> None:
    rows = store(clean, TokenCipher(keys.keyring()), 30)
    keys.add_key_version()
    new = TokenCipher(keys.keyring())

    def stop_after_two(p: rotation.Progress) -> None:
        if p.batches == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotation.rotate(clean.worker, new, batch_size=7, on_batch=stop_after_two)
    assert rotation.census(clean.worker) == {"1": 16, "2": 14}
    assert_all_open(clean, new, rows)

    result = rotation.rotate(clean.worker, new, batch_size=7)
    assert (result.total, result.rotated, result.remaining) == (16, 16, 0)
    assert rotation.census(clean.worker) == {"2": 30}
    assert_all_open(clean, TokenCipher([keys.keyring()[0]]), rows)


def test_a_killed_rotation_command_resumes_and_finishes(
    clean: RotationDb, keys: LocalSecrets, tmp_path: Path
) -> None:
    rows = store(clean, TokenCipher(keys.keyring()), 1500)
    keys.add_key_version()
    env = cli_env(clean, keys, tmp_path)
    cmd = [sys.executable, "-m", "cosma.cli", "rotate-keys", "--no-new-key", "--batch-size", "5"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("rotated 5/1500"), first
    proc.send_signal(signal.SIGKILL)  # no clean-up, no final batch: a crash
    proc.wait(timeout=30)
    counts = rotation.census(clean.worker)
    assert 0 < counts.get("2", 0) < 1500, counts
    assert sum(counts.values()) == 1500
    new = TokenCipher(keys.keyring())
    assert_all_open(clean, new, rows)

    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"done: {counts.get('1', 0)} re-encrypted" in done.stdout
    assert ", 0 still on an old version" in done.stdout
    assert rotation.census(clean.worker) == {"2": 1500}
    assert_all_open(clean, TokenCipher([keys.keyring()[0]]), rows)
    for _, token in list(rows.values())[:50]:
        assert token not in done.stdout + done.stderr


def test_rows_locked_by_a_refresh_are_skipped_then_finished(
    clean: RotationDb, keys: LocalSecrets
) -> None:
    rows = store(clean, TokenCipher(keys.keyring()), 12)
    keys.add_key_version()
    new = TokenCipher(keys.keyring())
    locked = sorted(rows)[3:6]
    with psycopg.connect(clean.worker_url) as holder:
        # A token refresh holds its row lock across the provider call.
        holder.execute("select 1 from connections where id = any(%s::uuid[]) for update", (locked,))
        result = rotation.rotate(clean.worker, new, batch_size=4)
        assert (result.rotated, result.remaining) == (9, 3)
        holder.rollback()
    assert {i for i, (v, _) in stored(clean).items() if v == "1"} == set(locked)
    result = rotation.rotate(clean.worker, new, batch_size=4)
    assert (result.rotated, result.remaining) == (3, 0)
    assert_all_open(clean, new, rows)


def test_an_unreadable_token_is_reported_by_id_and_left_alone(
    clean: RotationDb, keys: LocalSecrets
) -> None:
    rows = store(clean, TokenCipher(keys.keyring()), 6)
    a, b = sorted(rows)[:2]
    with psycopg.connect(clean.admin_url, autocommit=True) as conn:
        # b's ciphertext copied onto a's row: bound to b, so refused on a.
        conn.execute(
            "update connections set token_ciphertext ="
            " (select token_ciphertext from connections where id = %s) where id = %s",
            (b, a),
        )
    bad = stored(clean)[a][1]
    keys.add_key_version()
    new = TokenCipher(keys.keyring())
    result = rotation.rotate(clean.worker, new, batch_size=2)
    assert (result.rotated, result.remaining, result.failed) == (5, 1, [a])
    assert stored(clean)[a] == ("1", bad)
    assert rotation.census(clean.worker) == {"1": 1, "2": 5}


def test_rotation_needs_only_the_worker_grants(clean: RotationDb, keys: LocalSecrets) -> None:
    rows = store(clean, TokenCipher(keys.keyring()), 3)
    keys.add_key_version()
    with psycopg.connect(clean.worker_url) as conn:
        user = conn.execute("select current_user").fetchone()
        assert user is not None and user[0] == "cosma_worker"
    result = rotation.rotate(clean.worker, TokenCipher(keys.keyring()))
    assert result.rotated == 3
    assert_all_open(clean, TokenCipher(keys.keyring()), rows)


# ---------------------------------------------------------------- the commands


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cosma.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_rotate_keys_then_keys_check_then_retire(
    clean: RotationDb, keys: LocalSecrets, tmp_path: Path
) -> None:
    rows = store(clean, TokenCipher(keys.keyring()), 7)
    env = cli_env(clean, keys, tmp_path)
    check = run_cli(["keys-check"], env)
    assert check.returncode == 0, check.stderr
    assert "1 (newest): 7" in check.stdout

    # A key version added by hand (not yet rotated to) makes the check fail.
    keys.add_key_version()
    check = run_cli(["keys-check"], env)
    assert check.returncode == 1
    assert "2 (newest): 0" in check.stdout and "  1: 7" in check.stdout

    rotate = run_cli(["rotate-keys", "--batch-size", "3"], env)
    assert rotate.returncode == 0, rotate.stderr
    assert "added key version 3" in rotate.stdout
    assert "rotated 3/7" in rotate.stdout and "rotated 7/7 (100.0%)" in rotate.stdout
    check = run_cli(["keys-check", "--retire"], env)
    assert check.returncode == 0, check.stderr
    assert "3 (newest): 7" in check.stdout
    assert "version 1: retired" in check.stdout and "version 2: retired" in check.stdout
    assert [v for v, _ in keys.keyring()] == ["3"]
    assert_all_open(clean, TokenCipher(keys.keyring()), rows)


# ---------------------------------------------------------------- while instances run


def test_rotate_keys_waits_out_the_grace_and_re_encrypts_what_a_lagging_instance_sealed(
    clean: RotationDb, keys: LocalSecrets, tmp_path: Path
) -> None:
    old = TokenCipher(keys.keyring())
    rows = store(clean, old, 40)
    env = cli_env(clean, keys, tmp_path, grace=3, refresh=1)
    cmd = [sys.executable, "-m", "cosma.cli", "rotate-keys", "--batch-size", "7"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("waiting "):
            break
    assert seen and seen[-1].startswith("waiting "), seen
    assert "last pass to version 2" in seen[-1]
    # An instance that has not re-read its keyring yet seals a token with version 1.
    rows.update(store(clean, old, 1))
    assert rotation.census(clean.worker) == {"1": 1, "2": 40}
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "done: 41 re-encrypted" in out and ", 0 still on an old version" in out
    assert rotation.census(clean.worker) == {"2": 41}
    assert_all_open(clean, TokenCipher([keys.keyring()[0]]), rows)


def test_rotation_progress_is_shown_at_most_once_a_second_on_a_long_pass(
    clean: RotationDb, keys: LocalSecrets, tmp_path: Path
) -> None:
    store(clean, TokenCipher(keys.keyring()), 2000)
    done = run_cli(["rotate-keys", "--batch-size", "1"], cli_env(clean, keys, tmp_path))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("rotated ")]
    # 2000 batches: the first, about one a second, and the last.
    assert lines[0].startswith("rotated 1/2000") and lines[-1].startswith("rotated 2000/2000")
    assert 2 <= len(lines) <= 60, lines


def test_keys_check_refuses_to_retire_within_the_grace_and_says_until_when(
    clean: RotationDb, keys: LocalSecrets, tmp_path: Path
) -> None:
    rows = store(clean, TokenCipher(keys.keyring()), 5)
    env = cli_env(clean, keys, tmp_path, grace=3600, refresh=60)
    rotate = run_cli(["rotate-keys", "--no-wait"], env)
    assert rotate.returncode == 0, rotate.stderr
    assert "may still seal with an older version" in rotate.stdout
    assert rotation.census(clean.worker) == {"2": 5}

    check = run_cli(["keys-check", "--retire"], env)
    assert check.returncode == 1, check.stdout
    assert "version 1: not yet retirable: an instance may still seal with version 1" in check.stdout
    assert " UTC (in 3" in check.stdout and "COSMA_KEY_RETIRE_GRACE_S" in check.stdout
    assert [v for v, _ in keys.keyring()] == ["2", "1"]

    # The same check with the grace over: retired.
    check = run_cli(["keys-check", "--retire"], cli_env(clean, keys, tmp_path))
    assert check.returncode == 0, check.stdout
    assert "version 1: retired" in check.stdout
    assert [v for v, _ in keys.keyring()] == ["2"]
    assert_all_open(clean, TokenCipher(keys.keyring()), rows)


def test_retiring_is_refused_while_a_token_is_on_the_version_or_nothing_newer_sealed(
    clean: RotationDb, keys: LocalSecrets
) -> None:
    from shared import retirement

    store(clean, TokenCipher(keys.keyring()), 2)
    version = str(800_000 + os.getpid() % 99_999)  # a version no other test records
    keys.keyring()
    os.link(keys.dir / "1", keys.dir / version)
    versions = [v for v, _ in keys.keyring()]
    assert versions == [version, "1"]

    newest = retirement.decide(clean.worker, versions, version, grace=0, refresh=0)
    assert not newest.allowed and "is the newest" in newest.reason
    unknown = retirement.decide(clean.worker, versions, "7", grace=0, refresh=0)
    assert not unknown.allowed and "not in the keyring" in unknown.reason
    # Nothing has sealed with the new version yet: an instance may still seal with 1.
    early = retirement.decide(clean.worker, versions, "1", grace=0, refresh=0)
    assert not early.allowed and "has sealed a token yet" in early.reason
    retirement.record_primary(clean.worker, version)
    held = retirement.decide(clean.worker, versions, "1", grace=0, refresh=0)
    assert not held.allowed and held.reason.startswith("2 token(s) are still sealed with version 1")
    # The grace is never shorter than the refresh interval it covers.
    waiting = retirement.decide(clean.worker, versions, "1", grace=0, refresh=300)
    assert not waiting.allowed and waiting.allowed_at is not None
    assert "grace of 300 s" in waiting.reason


def test_with_secret_manager_the_commands_say_what_to_do_and_when(
    clean: RotationDb, tmp_path: Path
) -> None:
    """The cloud's keyring: Secret Manager versions, read through its API by the
    commands; the grace is recorded in the same database table as locally."""
    from cryptography.fernet import Fernet

    from tests.support.secret_manager_server import secret_manager

    with secret_manager() as (fake, _, url):
        first = Fernet.generate_key()
        fake.add("cosma-fernet-keyring", first)
        rows = store(clean, TokenCipher([("1", first)]), 4)
        second = Fernet.generate_key()
        fake.add("cosma-fernet-keyring", second)
        env = {
            **os.environ,
            "COSMA_ENV": "prod",
            "GCP_PROJECT": fake.project,
            "SECRET_MANAGER_ENDPOINT": url,
            "COSMA_KEYRING_SECRET": "cosma-fernet-keyring",
            "WORKER_DATABASE_URL": clean.worker_url,
            "COSMA_HOME": str(tmp_path / "home"),
            "COSMA_KEY_RETIRE_GRACE_S": "2",
            "COSMA_KEYRING_REFRESH_S": "1",
        }
        env.pop("DATABASE_URL", None)
        env.pop("COSMA_KEYRING_DIR", None)
        added = run_cli(["rotate-keys"], env)
        assert added.returncode == 2 and "keyring_versions" in added.stderr
        early = run_cli(["keys-check", "--retire"], env)
        assert early.returncode == 1 and "4 token(s) on an old version" in early.stdout
        rotate = run_cli(["rotate-keys", "--no-new-key"], env)
        assert rotate.returncode == 0, rotate.stdout + rotate.stderr
        assert "waiting " in rotate.stdout and ", 0 still on an old version" in rotate.stdout
        check = run_cli(["keys-check", "--retire"], env)
        assert check.returncode == 0, check.stdout
        assert (
            "version 1 can be retired: drop it from keyring_versions, apply, then disable it:"
            " `gcloud secrets versions disable 1 --secret=cosma-fernet-keyring`" in check.stdout
        )
        assert_all_open(clean, TokenCipher([("2", second)]), rows)
