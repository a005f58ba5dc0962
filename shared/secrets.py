"""The secrets port: named secret values and the token keyring.

    Secrets                 the port: `get(name) -> str`, `keyring() -> Keyring`
    ├── LocalSecrets        a key directory under `.cosma/`, created on first use
    ├── MountedSecrets      cloud request path: Secret Manager versions mounted as files
    └── SecretManagerSecrets  the Secret Manager API (jobs and tools, not requests)

A `Keyring` is a list of `(version, key)` pairs, newest first; each key is a
Fernet key (url-safe base64 of 32 bytes) and each version id is the Secret
Manager version number (`"1"`, `"2"`, ...). Locally and when mounted, a keyring
is a directory with one file per version, the file name being the version.

Invariants:
- A secret's value never appears in an error or a log line; a missing secret
  raises `errors.Unavailable` naming the secret only.
- Local key files are readable by their owner only (directory 0700, files
  0600); a key file that others can read is refused.
- `MountedSecrets` never imports `google.cloud`: on the request path the
  keyring comes from files, so cold starts stay light. Only
  `SecretManagerSecrets` imports the client, lazily, on first call.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from shared import errors

if TYPE_CHECKING:
    from shared.settings import Settings

Keyring: TypeAlias = list[tuple[str, bytes]]

# Secret Manager version ids are positive integers; we keep that everywhere so
# the same keyring sorts the same way in every adapter.
_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
DEFAULT_KEYRING_NAME = "token-keyring"

__all__ = [
    "DEFAULT_KEYRING_NAME",
    "Keyring",
    "LocalSecrets",
    "MountedSecrets",
    "SecretManagerSecrets",
    "Secrets",
    "secrets_from_settings",
]


class Secrets(ABC):
    """Where secret values and the token keyring come from."""

    @abstractmethod
    def get(self, name: str) -> str:
        """The current value of a named secret (e.g. "meta-client-secret")."""

    @abstractmethod
    def keyring(self) -> Keyring:
        """Every usable key version, newest first (never empty)."""


# ---------------------------------------------------------------- helpers


def _check_name(name: str) -> None:
    if not _SECRET_NAME.match(name):
        raise errors.Unavailable("A secret was requested by an invalid name.")


def _missing(name: str) -> errors.Unavailable:
    return errors.Unavailable(f"The secret {name!r} is not available.")


def _check_key(version: str, key: bytes) -> bytes:
    """A Fernet key is url-safe base64 of exactly 32 bytes; refuse anything else."""
    key = key.strip()
    try:
        raw = base64.urlsafe_b64decode(key)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise errors.Unavailable(f"Key version {version} of the keyring is not a valid key.")
    return key


def _sorted_keyring(entries: list[tuple[str, bytes]]) -> Keyring:
    return sorted(entries, key=lambda entry: int(entry[0]), reverse=True)


def _read_keyring_dir(folder: Path, *, owner_only: bool) -> Keyring:
    """Read one file per version; hidden files (mount bookkeeping, temp files) are skipped."""
    entries: list[tuple[str, bytes]] = []
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise errors.Unavailable("The token keyring is not available.") from exc
    for name in names:
        if name.startswith(".") or not _VERSION.match(name):
            continue
        path = folder / name
        try:
            if owner_only and stat.S_IMODE(path.stat().st_mode) & 0o077:
                raise errors.Unavailable(f"Key file {path} is readable by others; it must be 0600.")
            entries.append((name, _check_key(name, path.read_bytes())))
        except OSError as exc:
            raise errors.Unavailable("The token keyring is not available.") from exc
    if not entries:
        raise errors.Unavailable("The token keyring is empty.")
    return _sorted_keyring(entries)


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


class _NamedFromFiles:
    """Named secrets from a directory (one file per secret) or the environment.

    Cloud Functions mounts a secret either as a file or as an environment
    variable; the platform sets those at the instance's edge, which is why this
    adapter, alone below the edge, may read them (`META_CLIENT_SECRET` for
    "meta-client-secret").
    """

    def __init__(self, secrets_dir: Path | None, environ: Mapping[str, str] | None) -> None:
        self._secrets_dir = Path(secrets_dir) if secrets_dir is not None else None
        self._environ = environ

    def get(self, name: str) -> str:
        _check_name(name)
        if self._secrets_dir is not None:
            path = self._secrets_dir / name
            try:
                value = path.read_text().strip()
            except FileNotFoundError:
                value = ""
            except OSError as exc:
                raise _missing(name) from exc
            if value:
                return value
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(_env_name(name), "").strip()
        if value:
            return value
        raise _missing(name)


# ---------------------------------------------------------------- adapters


class LocalSecrets(Secrets):
    """Local mode: a key directory created on first use (0700, keys 0600).

    Key versions are files named "1", "2", ...; `add_key_version()` writes the
    next one for a rotation. Files are written to a hidden temporary name and
    hard-linked into place, so a reader never sees half a key and two processes
    starting at once agree on one first key.
    """

    def __init__(
        self,
        dir: Path,
        secrets_dir: Path | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.dir = Path(dir)
        self._named = _NamedFromFiles(secrets_dir, environ)

    def get(self, name: str) -> str:
        return self._named.get(name)

    def keyring(self) -> Keyring:
        self._ensure()
        return _read_keyring_dir(self.dir, owner_only=True)

    def add_key_version(self) -> str:
        """Create the next key version and return its id; it becomes the newest."""
        self._ensure()
        while True:
            versions = [int(v) for v, _ in _read_keyring_dir(self.dir, owner_only=True)]
            version = str(max(versions) + 1)
            if self._create(version):
                return version

    def retire_key_version(self, version: str) -> None:
        """Delete an old key version. Call only once no token uses it (`cosma keys-check`)."""
        ring = self.keyring()
        if not _VERSION.match(version) or version not in {v for v, _ in ring}:
            raise errors.NotFound(f"Key version {version} is not in the keyring.")
        if ring[0][0] == version:
            raise errors.Conflict("The newest key version cannot be retired.")
        (self.dir / version).unlink()

    def _ensure(self) -> None:
        if not self.dir.is_dir():
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)  # mkdir's mode is masked by the umask
        if not any(_VERSION.match(n) for n in os.listdir(self.dir)):
            self._create("1")

    def _create(self, version: str) -> bool:
        """Write a fresh key as `version`; False if that version already exists."""
        from cryptography.fernet import Fernet

        fd, tmp = tempfile.mkstemp(prefix=".key-", dir=self.dir)  # created 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, self.dir / version)
            except FileExistsError:
                return False
            return True
        finally:
            os.unlink(tmp)


class MountedSecrets(Secrets):
    """Cloud request path: the keyring secret's versions mounted as files.

    `keyring_dir` holds one file per version (file name = version, e.g. the
    Cloud Functions secret volume `versions: [{path: "2", version: "2"}, ...]`);
    other secrets are files in `secrets_dir` or environment variables. Reads
    files only: nothing here imports the Secret Manager client.
    """

    def __init__(
        self,
        keyring_dir: Path,
        secrets_dir: Path | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.keyring_dir = Path(keyring_dir)
        self._named = _NamedFromFiles(secrets_dir, environ)

    def get(self, name: str) -> str:
        return self._named.get(name)

    def keyring(self) -> Keyring:
        return _read_keyring_dir(self.keyring_dir, owner_only=False)


class SecretManagerSecrets(Secrets):
    """Secret Manager over its REST transport, the client imported on first call.

    `endpoint` (e.g. "http://127.0.0.1:PORT") points the client at another
    server and uses anonymous credentials; without it the client uses the
    instance's service account. The keyring is every ENABLED version of the
    keyring secret; other secrets are read at version "latest".
    """

    def __init__(
        self,
        project: str,
        client: Any = None,
        endpoint: str | None = None,
        *,
        keyring_secret: str = DEFAULT_KEYRING_NAME,
    ) -> None:
        if not project:
            raise errors.Unavailable("Secret Manager needs a project (GCP_PROJECT).")
        self.project = project
        self.endpoint = endpoint
        self.keyring_secret = keyring_secret
        self._client = client

    def _get_client(self) -> Any:
        if self._client is None:
            from google.cloud import secretmanager

            options: dict[str, Any] = {"transport": "rest"}
            if self.endpoint:
                from google.auth.credentials import AnonymousCredentials

                options["client_options"] = {"api_endpoint": self.endpoint}
                options["credentials"] = AnonymousCredentials()  # type: ignore[no-untyped-call]
            self._client = secretmanager.SecretManagerServiceClient(**options)
        return self._client

    def _secret_path(self, name: str) -> str:
        return f"projects/{self.project}/secrets/{name}"

    def _access(self, name: str, version: str) -> bytes:
        from google.api_core import exceptions as gexc

        client = self._get_client()
        try:
            response = client.access_secret_version(
                request={"name": f"{self._secret_path(name)}/versions/{version}"}
            )
        except gexc.NotFound as exc:
            raise _missing(name) from exc
        except gexc.GoogleAPICallError as exc:
            raise errors.Unavailable(f"Secret Manager did not return {name!r}.") from exc
        data: bytes = response.payload.data
        # The API returns a CRC32C of the payload; a mismatch means corruption in transit.
        if response.payload.data_crc32c:
            import google_crc32c

            if google_crc32c.value(data) != int(response.payload.data_crc32c):
                raise errors.Unavailable(f"Secret Manager returned a corrupt {name!r}.")
        return data

    def get(self, name: str) -> str:
        _check_name(name)
        value = self._access(name, "latest").decode("utf-8", "replace").strip()
        if not value:
            raise _missing(name)
        return value

    def keyring(self) -> Keyring:
        from google.api_core import exceptions as gexc

        client = self._get_client()
        try:
            versions = [
                v.name.rsplit("/", 1)[-1]
                for v in client.list_secret_versions(
                    request={
                        "parent": self._secret_path(self.keyring_secret),
                        "filter": "state:ENABLED",
                    }
                )
                if v.state.name == "ENABLED"
            ]
        except gexc.NotFound as exc:
            raise _missing(self.keyring_secret) from exc
        except gexc.GoogleAPICallError as exc:
            raise errors.Unavailable("Secret Manager did not return the token keyring.") from exc
        entries = [
            (version, _check_key(version, self._access(self.keyring_secret, version)))
            for version in versions
            if _VERSION.match(version)
        ]
        if not entries:
            raise errors.Unavailable("The token keyring is empty.")
        return _sorted_keyring(entries)


def secrets_from_settings(settings: Settings) -> Secrets:
    """Local keys for local and test, mounted files when configured, else the API."""
    if settings.env in ("local", "test"):
        return LocalSecrets(settings.keyring_dir or Path(".cosma") / "keys", settings.secrets_dir)
    if settings.keyring_dir is not None:
        return MountedSecrets(settings.keyring_dir, settings.secrets_dir)
    return SecretManagerSecrets(
        settings.gcp_project,
        endpoint=settings.secret_manager_endpoint or None,
        keyring_secret=settings.keyring_secret_name or DEFAULT_KEYRING_NAME,
    )
