"""The secrets port: local key directory, mounted files, and the real Secret
Manager client over REST against a local server."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from shared import errors
from shared.cipher import TokenCipher
from shared.runtime import Runtime
from shared.secrets import (
    LocalSecrets,
    MountedSecrets,
    SecretManagerSecrets,
    secrets_from_settings,
)
from shared.settings import Settings
from tests.support.secret_manager_server import secret_manager

ROOT = Path(__file__).resolve().parents[2]
CONN, ORG = "6f1c2a3e-0000-4000-8000-00000000000a", "org_secrets"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- local


def test_local_creates_an_owner_only_key_directory_on_first_use(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "keys"
    local = LocalSecrets(folder)
    assert not folder.exists()  # nothing happens at construction
    ring = local.keyring()
    assert [v for v, _ in ring] == ["1"]
    assert mode(folder) == 0o700
    assert mode(folder / "1") == 0o600
    Fernet(ring[0][1])  # a valid key
    assert sorted(os.listdir(folder)) == ["1"]  # no temporary files left behind
    assert LocalSecrets(folder).keyring() == ring  # stable across instances


def test_local_first_key_is_agreed_by_concurrent_starters(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    rings: list[object] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        rings.append(LocalSecrets(folder).keyring())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rings) == 8 and all(r == rings[0] for r in rings)
    assert sorted(os.listdir(folder)) == ["1"]


def test_local_add_key_version_makes_the_newest_and_old_tokens_still_open(
    tmp_path: Path,
) -> None:
    local = LocalSecrets(tmp_path / "keys")
    old = TokenCipher(local.keyring())
    sealed = old.encrypt("tok-1", connection_id=CONN, org_id=ORG)
    assert local.add_key_version() == "2"
    assert local.add_key_version() == "3"
    ring = local.keyring()
    assert [v for v, _ in ring] == ["3", "2", "1"]
    assert mode(tmp_path / "keys" / "3") == 0o600
    new = TokenCipher(ring)
    assert new.newest_version == "3"
    assert new.decrypt(sealed.ciphertext, connection_id=CONN, org_id=ORG) == "tok-1"
    assert new.encrypt("t", connection_id=CONN, org_id=ORG).key_version == "3"


def test_local_retire_removes_only_old_versions(tmp_path: Path) -> None:
    local = LocalSecrets(tmp_path / "keys")
    local.keyring()
    local.add_key_version()
    with pytest.raises(errors.Conflict):
        local.retire_key_version("2")
    with pytest.raises(errors.NotFound):
        local.retire_key_version("7")
    local.retire_key_version("1")
    assert [v for v, _ in local.keyring()] == ["2"]


def test_local_refuses_a_key_file_others_can_read(tmp_path: Path) -> None:
    local = LocalSecrets(tmp_path / "keys")
    key = local.keyring()[0][1]
    os.chmod(tmp_path / "keys" / "1", 0o644)
    with pytest.raises(errors.Unavailable) as info:
        local.keyring()
    assert "0600" in str(info.value) and key.decode() not in str(info.value)


def test_local_tightens_a_loose_directory(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)  # noqa: S103 - the loose mode under test
    LocalSecrets(folder).keyring()
    assert mode(folder) == 0o700


def test_a_malformed_key_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    (folder / "1").write_bytes(b"definitely-not-a-fernet-key")
    os.chmod(folder / "1", 0o600)
    with pytest.raises(errors.Unavailable) as info:
        LocalSecrets(folder).keyring()
    assert "definitely" not in str(info.value)


def test_named_secrets_from_files_then_environment(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "meta-client-secret").write_text("meta-s3cret-value\n")
    env = {"SENTRY_DSN": "http://k@127.0.0.1:9/1"}
    for adapter in (
        LocalSecrets(tmp_path / "keys", secrets_dir, environ=env),
        MountedSecrets(tmp_path / "ring", secrets_dir, environ=env),
    ):
        assert adapter.get("meta-client-secret") == "meta-s3cret-value"
        assert adapter.get("sentry-dsn") == "http://k@127.0.0.1:9/1"
        with pytest.raises(errors.Unavailable) as info:
            adapter.get("tiktok-client-secret")
        assert "tiktok-client-secret" in str(info.value)
        with pytest.raises(errors.Unavailable):
            adapter.get("../secrets/meta-client-secret")


# ---------------------------------------------------------------- mounted


def mounted_ring(folder: Path, versions: list[str]) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    keys = {}
    for v in versions:
        keys[v] = Fernet.generate_key()
        (folder / v).write_bytes(keys[v] + b"\n")
    return keys


def test_mounted_keyring_reads_one_file_per_version_newest_first(tmp_path: Path) -> None:
    ring_dir = tmp_path / "keyring"
    keys = mounted_ring(ring_dir, ["1", "10", "2"])
    # Mount bookkeeping and stray files are not versions.
    (ring_dir / "..data").mkdir()
    (ring_dir / ".tmp").write_text("x")
    (ring_dir / "README").write_text("x")
    ring = MountedSecrets(ring_dir).keyring()
    assert ring == [("10", keys["10"]), ("2", keys["2"]), ("1", keys["1"])]


def test_mounted_keyring_missing_or_empty_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(errors.Unavailable):
        MountedSecrets(tmp_path / "nowhere").keyring()
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.Unavailable):
        MountedSecrets(tmp_path / "empty").keyring()


def test_mounted_path_never_imports_the_secret_manager_client(tmp_path: Path) -> None:
    ring_dir = tmp_path / "keyring"
    mounted_ring(ring_dir, ["1", "2"])
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "meta-client-secret").write_text("v")
    script = f"""
import sys
from pathlib import Path
from shared.settings import Settings
from shared.runtime import Runtime
rt = Runtime(Settings(env="prod", keyring_dir=Path({str(ring_dir)!r}),
                      secrets_dir=Path({str(secrets_dir)!r}), gcp_project="p"))
assert type(rt.secrets).__name__ == "MountedSecrets"
assert rt.secrets.get("meta-client-secret") == "v"
sealed = rt.cipher.encrypt("t", connection_id="c", org_id="o")
assert rt.cipher.decrypt(sealed.ciphertext, connection_id="c", org_id="o") == "t"
# ("google" and "google.cloud" are empty namespace packages a .pth file creates.)
loaded = sorted(m for m in sys.modules if m.startswith(("google.", "grpc", "proto"))
                and m != "google.cloud")
print(loaded)
assert not loaded, loaded
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------- Secret Manager


def test_secret_manager_get_reads_latest_over_rest() -> None:
    with secret_manager() as (fake, recorder, url):
        fake.add("meta-client-secret", b"old-value")
        fake.add("meta-client-secret", b"new-value\n")
        sm = SecretManagerSecrets(fake.project, endpoint=url)
        assert sm.get("meta-client-secret") == "new-value"
    paths = [r["path"] for r in recorder.requests]
    assert paths == ["/v1/projects/cosma-test/secrets/meta-client-secret/versions/latest:access"]
    # Anonymous credentials against a local endpoint: no bearer token was sent.
    assert "Authorization" not in recorder.requests[0]["headers"]


def test_secret_manager_keyring_is_every_enabled_version_newest_first() -> None:
    with secret_manager() as (fake, recorder, url):
        keys = [Fernet.generate_key() for _ in range(4)]
        for key in keys:
            fake.add("token-keyring", key)
        fake.set_state("token-keyring", "2", "DISABLED")
        ring = SecretManagerSecrets(fake.project, endpoint=url).keyring()
        assert ring == [("4", keys[3]), ("3", keys[2]), ("1", keys[0])]
        list_call = recorder.requests[0]
        assert list_call["path"] == "/v1/projects/cosma-test/secrets/token-keyring/versions"
        assert list_call["args"]["filter"] == ["state:ENABLED"]
        accessed = sorted(r["path"] for r in recorder.requests[1:])
        assert accessed == [
            f"/v1/projects/cosma-test/secrets/token-keyring/versions/{v}:access"
            for v in ("1", "3", "4")
        ]
        cipher = TokenCipher(ring)
        sealed = TokenCipher([("1", keys[0])]).encrypt("t", connection_id=CONN, org_id=ORG)
        assert cipher.decrypt(sealed.ciphertext, connection_id=CONN, org_id=ORG) == "t"


def test_secret_manager_missing_secret_names_it_and_nothing_else() -> None:
    with secret_manager() as (fake, _, url):
        fake.add("other", b"other-value")
        sm = SecretManagerSecrets(fake.project, endpoint=url)
        with pytest.raises(errors.Unavailable) as info:
            sm.get("linkedin-client-secret")
        assert "linkedin-client-secret" in str(info.value)
        with pytest.raises(errors.Unavailable) as info:
            sm.keyring()
        assert "token-keyring" in str(info.value)


def test_secret_manager_denied_or_corrupt_is_unavailable_without_the_value() -> None:
    with secret_manager() as (fake, _, url):
        fake.add("meta-client-secret", b"value-that-must-not-leak")
        sm = SecretManagerSecrets(fake.project, endpoint=url)
        fake.corrupt_crc = True
        with pytest.raises(errors.Unavailable) as info:
            sm.get("meta-client-secret")
        assert "must-not-leak" not in str(info.value)
        fake.corrupt_crc = False
        fake.deny = True
        with pytest.raises(errors.Unavailable) as info:
            sm.get("meta-client-secret")
        assert "must-not-leak" not in str(info.value)
        fake.deny = False
        assert sm.get("meta-client-secret") == "value-that-must-not-leak"


def test_secret_manager_client_is_imported_lazily() -> None:
    script = """
import sys
from shared.secrets import SecretManagerSecrets, secrets_from_settings
from shared.settings import Settings
s = secrets_from_settings(Settings(env="prod", gcp_project="p"))
assert isinstance(s, SecretManagerSecrets)
assert not [m for m in sys.modules if m.startswith(("google.cloud.", "google.api_core"))]
s.get  # resolving the method imports nothing either
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ---------------------------------------------------------------- wiring


def test_factory_picks_the_adapter_from_settings(tmp_path: Path) -> None:
    assert isinstance(
        secrets_from_settings(Settings(env="local", keyring_dir=tmp_path)), LocalSecrets
    )
    assert isinstance(
        secrets_from_settings(Settings(env="test", keyring_dir=tmp_path)), LocalSecrets
    )
    assert isinstance(
        secrets_from_settings(Settings(env="prod", keyring_dir=tmp_path)), MountedSecrets
    )
    sm = secrets_from_settings(Settings(env="prod", gcp_project="p", keyring_secret_name="ring-b"))
    assert isinstance(sm, SecretManagerSecrets) and sm.keyring_secret == "ring-b"
    with pytest.raises(errors.Unavailable):
        secrets_from_settings(Settings(env="prod"))


def test_runtime_builds_secrets_and_cipher_from_settings(tmp_path: Path) -> None:
    with secret_manager() as (fake, _, url):
        key = Fernet.generate_key()
        fake.add("token-keyring", key)
        rt = Runtime(
            Settings(env="staging", gcp_project=fake.project, secret_manager_endpoint=url),
            clock=lambda: 1_700_000_000,
        )
        assert isinstance(rt.secrets, SecretManagerSecrets)
        assert rt.cipher.newest_version == "1"
        sealed = rt.cipher.encrypt("tok", connection_id=CONN, org_id=ORG)
        assert (
            TokenCipher([("1", key)]).decrypt(sealed.ciphertext, connection_id=CONN, org_id=ORG)
            == "tok"
        )
    local = Runtime(Settings(env="local", keyring_dir=tmp_path / "k"))
    assert local.cipher.newest_version == "1" and mode(tmp_path / "k") == 0o700
