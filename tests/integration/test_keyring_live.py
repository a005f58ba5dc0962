"""A running instance's keyring (`shared.keyring.LiveCipher`, `Runtime.cipher`):
a key version added while it runs reaches it without a restart.

Real key directories (`LocalSecrets`), real Fernet; the refresh clock is
injected where a test is about the interval.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from cosma import localdb
from shared import errors
from shared.cipher import TokenCipher
from shared.keyring import LiveCipher
from shared.runtime import Runtime
from shared.secrets import LocalSecrets
from shared.settings import Settings

CONN, ORG = "6f1c2a3e-0000-4000-8000-00000000000b", "org_keyring"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keys(tmp_path: Path) -> LocalSecrets:
    return LocalSecrets(tmp_path / "keys")


def seal(cipher: LiveCipher | TokenCipher, plain: str = "rt") -> bytes:
    return cipher.encrypt(plain, connection_id=CONN, org_id=ORG).ciphertext


def test_a_new_version_seals_after_the_refresh_interval_without_a_restart(
    keys: LocalSecrets,
) -> None:
    clock = Clock()
    live = LiveCipher(keys.keyring, refresh_s=60, clock=clock)
    assert seal(live).startswith(b"1:")
    keys.add_key_version()
    clock.now += 59  # within the interval: the keyring held is still current
    assert seal(live).startswith(b"1:")
    clock.now += 1
    assert seal(live).startswith(b"2:")
    assert live.newest_version == "2" and live.loads == 2


def test_a_ciphertext_on_a_version_not_held_re_reads_the_keyring_at_once(
    keys: LocalSecrets,
) -> None:
    clock = Clock()
    live = LiveCipher(keys.keyring, refresh_s=3600, clock=clock)
    assert live.versions == ["1"]
    keys.add_key_version()
    # Another instance, which already reads version 2, seals a token with it.
    other = TokenCipher(keys.keyring())
    ciphertext = seal(other, "from-another-instance")
    assert live.decrypt(ciphertext, connection_id=CONN, org_id=ORG) == "from-another-instance"
    assert live.versions == ["2", "1"] and live.loads == 2


def test_an_unknown_version_re_reads_at_most_once_per_retry_interval(keys: LocalSecrets) -> None:
    clock = Clock()
    live = LiveCipher(keys.keyring, refresh_s=3600, retry_s=1.0, clock=clock)
    live.versions  # noqa: B018 (first read)
    gone = b"9:" + seal(TokenCipher(keys.keyring())).partition(b":")[2]
    for _ in range(20):
        with pytest.raises(errors.InvalidToken):
            live.decrypt(gone, connection_id=CONN, org_id=ORG)
    assert live.loads == 2  # the first miss re-read, the other 19 did not
    clock.now += 1.0
    with pytest.raises(errors.InvalidToken):
        live.decrypt(gone, connection_id=CONN, org_id=ORG)
    assert live.loads == 3


def test_sealing_refuses_a_keyring_it_cannot_re_read_but_opening_goes_on(
    keys: LocalSecrets,
) -> None:
    clock = Clock()
    live = LiveCipher(keys.keyring, refresh_s=60, clock=clock)
    ciphertext = seal(live, "kept")
    os.chmod(keys.dir / "1", 0o644)  # LocalSecrets refuses a key others can read
    clock.now += 60
    with pytest.raises(errors.Unavailable):
        seal(live)
    # Opening with the keyring held is safe, and goes on.
    assert live.decrypt(ciphertext, connection_id=CONN, org_id=ORG) == "kept"
    os.chmod(keys.dir / "1", 0o600)
    clock.now += 1
    assert seal(live).startswith(b"1:")


def test_the_first_seal_with_a_version_is_reported_once_and_a_failed_report_seals_nothing(
    keys: LocalSecrets,
) -> None:
    clock = Clock()
    reported: list[str] = []
    fail = [True]

    def on_primary(version: str) -> None:
        if fail[0]:
            raise errors.Unavailable("The database is unavailable.")
        reported.append(version)

    live = LiveCipher(keys.keyring, refresh_s=0, clock=clock, on_primary=on_primary)
    with pytest.raises(errors.Unavailable):
        seal(live)
    fail[0] = False
    seal(live)
    seal(live)
    keys.add_key_version()
    seal(live)
    assert reported == ["1", "2"]


# ---------------------------------------------------------------- through the runtime


@pytest.fixture
def db_settings(pg: localdb.LocalDatabase, settings: Settings, tmp_path: Path) -> Settings:
    return settings.with_changes(keyring_dir=tmp_path / "keys", keyring_refresh_s=0.0)


def test_the_runtime_cipher_seals_with_a_version_added_while_it_runs(
    db_settings: Settings,
) -> None:
    runtime = Runtime(db_settings)
    try:
        assert seal(runtime.cipher).startswith(b"1:")
        LocalSecrets(db_settings.keyring_dir or Path()).add_key_version()
        assert seal(runtime.cipher).startswith(b"2:")
    finally:
        runtime.close()


def test_the_runtime_cipher_opens_a_version_added_after_it_started(
    db_settings: Settings,
) -> None:
    runtime = Runtime(db_settings.with_changes(keyring_refresh_s=3600.0))
    try:
        runtime.cipher.versions  # noqa: B018 (the instance has read its keyring)
        keys = LocalSecrets(db_settings.keyring_dir or Path())
        keys.add_key_version()
        ciphertext = seal(TokenCipher(keys.keyring()), "sealed-elsewhere")
        opened = runtime.cipher.decrypt(ciphertext, connection_id=CONN, org_id=ORG)
        assert opened == "sealed-elsewhere"
    finally:
        runtime.close()


def test_the_runtime_records_when_a_version_first_sealed(
    db_settings: Settings, pg: localdb.LocalDatabase
) -> None:
    version = str(900_000 + os.getpid() % 99_999)
    keys = LocalSecrets(db_settings.keyring_dir or Path())
    keys.keyring()
    os.link(keys.dir / "1", keys.dir / version)  # a version number no other test uses
    runtime = Runtime(db_settings)
    try:
        seal(runtime.cipher)
        seal(runtime.cipher)
    finally:
        runtime.close()
    with psycopg.connect(pg.admin_url) as conn:
        rows = conn.execute(
            "select count(*), max(primary_since) <= now() from key_versions where version = %s",
            (version,),
        ).fetchone()
    assert rows == (1, True)


def test_the_app_role_may_record_a_version_but_not_backdate_or_read_it(
    pg: localdb.LocalDatabase,
) -> None:
    backdated = (
        "insert into key_versions (version, primary_since)"
        " values ('999999997', now() - interval '1 day')"
    )
    with psycopg.connect(pg.app_url, autocommit=True) as conn:
        conn.execute(
            "insert into key_versions (version) values ('999999998') on conflict do nothing"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(backdated)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from key_versions")
    with (
        psycopg.connect(pg.worker_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("update key_versions set primary_since = now() - interval '1 day'")
