"""The token cipher: OAuth tokens sealed at rest with Fernet keys from the keyring.

Semantics are MultiFernet's: the newest key encrypts, every key in the keyring
decrypts. Each sealed token starts with its key version, so decrypting picks
the one right key instead of trying each, a retired version fails cleanly, and
`Sealed.key_version` (stored in `connections.key_version`) tells the rotation
which rows still need work.

    ciphertext = <version> ":" <Fernet token>
    plaintext  = 0x01 | len16 purpose | len16 org id | len16 connection id | token

The plaintext envelope binds the token to its connection, organization and
purpose; decrypt rebuilds the expected envelope from the caller's row and
compares, so a ciphertext copied to another row, another organization or
another purpose is refused. Fernet's HMAC covers the whole envelope, a
changed version prefix selects a key whose HMAC fails, and only the canonical
base64 of a token is accepted (Fernet alone accepts altered padding bits).

Every failure raises the same `InvalidToken` with the same fixed message and
no chained cause: no ciphertext, plaintext, key or reason ever reaches an
error, a log line or Sentry.
"""

from __future__ import annotations

import base64
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, MultiFernet
from cryptography.fernet import InvalidToken as _FernetInvalid

from shared import errors
from shared.errors import InvalidToken

__all__ = ["DEFAULT_PURPOSE", "InvalidToken", "Sealed", "TokenCipher", "key_version_of"]

DEFAULT_PURPOSE = "refresh_token"
_ENVELOPE_V1 = b"\x01"
_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MAX_FIELD = 0xFFFF


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed token: store both fields on the row. The bytes stay out of repr()."""

    ciphertext: bytes = field(repr=False)
    key_version: str


def _field(value: str) -> bytes:
    if type(value) is not str or not value:
        raise ValueError
    raw = value.encode("utf-8")
    if len(raw) > _MAX_FIELD:
        raise ValueError
    return len(raw).to_bytes(2, "big") + raw


def _envelope(connection_id: str, org_id: str, purpose: str) -> bytes:
    return _ENVELOPE_V1 + _field(purpose) + _field(org_id) + _field(connection_id)


def key_version_of(ciphertext: bytes) -> str:
    """The key version a ciphertext names ("" when it names none): read from the
    prefix only, nothing is opened, so it says nothing about whether it is valid."""
    version, sep, _ = bytes(ciphertext).partition(b":")
    text = version.decode("ascii", "replace") if sep else ""
    return text if _VERSION.match(text) else ""


class TokenCipher:
    """Seal and open tokens with a keyring of `(version, Fernet key)`, newest first."""

    def __init__(
        self, keyring: Sequence[tuple[str, bytes]], clock: Callable[[], float] = time.time
    ) -> None:
        if not keyring:
            raise errors.Unavailable("The token keyring is empty.")
        fernets: dict[bytes, Fernet] = {}
        for version, key in keyring:
            if not _VERSION.match(version) or version.encode() in fernets:
                raise errors.Unavailable("The token keyring has an invalid key version.")
            try:
                fernets[version.encode()] = Fernet(key)
            except (ValueError, TypeError):
                raise errors.Unavailable(
                    f"Key version {version} of the keyring is not a valid key."
                ) from None
        self._fernets = fernets
        self._newest = keyring[0][0]
        self._prefix = self._newest.encode() + b":"
        # The newest key encrypts: MultiFernet's first key.
        self._multi = MultiFernet([fernets[v.encode()] for v, _ in keyring])
        self._clock = clock

    @property
    def newest_version(self) -> str:
        return self._newest

    @property
    def versions(self) -> list[str]:
        """Every version this cipher can open, newest first."""
        return [v.decode() for v in self._fernets]

    def encrypt(
        self,
        token: str,
        *,
        connection_id: str,
        org_id: str,
        purpose: str = DEFAULT_PURPOSE,
    ) -> Sealed:
        failed = False
        try:
            plaintext = _envelope(connection_id, org_id, purpose) + token.encode("utf-8")
        except (ValueError, TypeError, AttributeError):
            failed = True
        if failed:
            raise InvalidToken()
        return self._seal(plaintext)

    def decrypt(
        self,
        ciphertext: bytes,
        *,
        connection_id: str,
        org_id: str,
        purpose: str = DEFAULT_PURPOSE,
    ) -> str:
        token = self._open(ciphertext, connection_id, org_id, purpose)
        failed = False
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            failed = True
        if failed:
            raise InvalidToken()
        return text

    def rotate(
        self,
        ciphertext: bytes,
        *,
        connection_id: str,
        org_id: str,
        purpose: str = DEFAULT_PURPOSE,
    ) -> Sealed:
        """Open with whichever key sealed it (checking the binding), seal with the newest."""
        header = self._header(connection_id, org_id, purpose)
        return self._seal(self._open_raw(ciphertext, header))

    # ------------------------------------------------------------ internals

    def _seal(self, plaintext: bytes) -> Sealed:
        token = self._multi.encrypt_at_time(plaintext, int(self._clock()))
        return Sealed(self._prefix + token, self._newest)

    def _header(self, connection_id: str, org_id: str, purpose: str) -> bytes:
        failed = False
        try:
            header = _envelope(connection_id, org_id, purpose)
        except (ValueError, TypeError, AttributeError):
            failed = True
        if failed:
            raise InvalidToken()
        return header

    def _open(self, ciphertext: bytes, connection_id: str, org_id: str, purpose: str) -> bytes:
        """The token bytes after the envelope."""
        header = self._header(connection_id, org_id, purpose)
        return self._open_raw(ciphertext, header)[len(header) :]

    def _open_raw(self, ciphertext: bytes, header: bytes) -> bytes:
        """The whole plaintext, its envelope checked, or InvalidToken with no cause attached."""
        plaintext = b""
        try:
            version, sep, token = bytes(ciphertext).partition(b":")
            fernet = self._fernets.get(version) if sep else None
            # Fernet's base64 decoding ignores slack bits and stray characters;
            # only the canonical encoding is accepted, so every changed byte is refused.
            if (
                fernet is not None
                and base64.urlsafe_b64encode(base64.urlsafe_b64decode(token)) == token
            ):
                plaintext = fernet.decrypt(token)
        except (_FernetInvalid, TypeError, ValueError):
            plaintext = b""
        # Raised outside the except block, so no library exception rides along as context.
        if not plaintext or not hmac.compare_digest(plaintext[: len(header)], header):
            raise InvalidToken()
        return plaintext
