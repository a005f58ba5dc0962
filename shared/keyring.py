"""The keyring as a running instance holds it: re-read while the instance runs.

A key version added while instances run (a rotation) must reach them without a
restart, and a version retired after a rotation must never be sealed with
again. `LiveCipher` has `TokenCipher`'s interface and keeps one current:

- Sealing uses a keyring read at most `refresh_s` ago. When it is older, the
  keyring is read again first; if that read fails, sealing fails
  (`errors.Unavailable`) rather than sealing with a keyring that may name a
  retired version as the newest. This bound is what the retirement grace
  (`shared.retirement`) relies on.
- Opening uses the keyring held, re-read when it is due (a failed re-read keeps
  the one held: opening with it is safe) and at once when the ciphertext names
  a version not held, at most once per `retry_s`, so a row on a version that is
  gone for good cannot turn every read into a keyring read.
- Before the first seal with a newest version this instance has not reported,
  `on_primary(version)` runs (the runtime records it in the database, where every
  instance and the rotation command read the same "primary since"). If it
  fails, nothing is sealed.

The bounded interval costs one clock read per call; a keyring read (a directory
listing and a few small files, or Secret Manager calls) happens at most once per
`refresh_s` per instance.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from shared import errors
from shared.cipher import DEFAULT_PURPOSE, Sealed, TokenCipher, key_version_of
from shared.secrets import Keyring

__all__ = ["DEFAULT_REFRESH_S", "LiveCipher"]

log = logging.getLogger("cosma.keyring")

DEFAULT_REFRESH_S = 60.0


class LiveCipher:
    def __init__(
        self,
        load: Callable[[], Keyring],
        *,
        refresh_s: float = DEFAULT_REFRESH_S,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_primary: Callable[[str], None] | None = None,
    ) -> None:
        if refresh_s < 0 or retry_s < 0:
            raise ValueError("refresh_s and retry_s must not be negative")
        self._load = load
        self.refresh_s = refresh_s
        self.retry_s = retry_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_primary = on_primary
        self._lock = threading.Lock()
        self._cipher: TokenCipher | None = None
        self._loaded_at = 0.0  # when the held keyring was read (clock)
        self._tried_at: float | None = None  # the last read attempt, failed or not
        self._failed = False  # whether that attempt failed
        self._missed_at: float | None = None  # the last re-read for a version not held
        self._reported: set[str] = set()
        self.loads = 0  # keyring reads that succeeded: observable for tests and operators

    # ------------------------------------------------------------ TokenCipher's interface

    @property
    def newest_version(self) -> str:
        return self._for_sealing().newest_version

    @property
    def versions(self) -> list[str]:
        return self._for_opening(b"").versions

    def encrypt(
        self,
        token: str,
        *,
        connection_id: str,
        org_id: str,
        purpose: str = DEFAULT_PURPOSE,
    ) -> Sealed:
        cipher = self._for_sealing()
        self._report(cipher.newest_version)
        return cipher.encrypt(token, connection_id=connection_id, org_id=org_id, purpose=purpose)

    def decrypt(
        self,
        ciphertext: bytes,
        *,
        connection_id: str,
        org_id: str,
        purpose: str = DEFAULT_PURPOSE,
    ) -> str:
        cipher = self._for_opening(ciphertext)
        return cipher.decrypt(
            ciphertext, connection_id=connection_id, org_id=org_id, purpose=purpose
        )

    def rotate(
        self,
        ciphertext: bytes,
        *,
        connection_id: str,
        org_id: str,
        purpose: str = DEFAULT_PURPOSE,
    ) -> Sealed:
        self._for_opening(ciphertext)
        cipher = self._for_sealing()
        self._report(cipher.newest_version)
        return cipher.rotate(
            ciphertext, connection_id=connection_id, org_id=org_id, purpose=purpose
        )

    def snapshot(self) -> TokenCipher:
        """A fixed cipher from a keyring read now (the rotation works pass by pass on one)."""
        with self._lock:
            self._reload(self._clock())
            cipher = self._cipher
        if cipher is None:  # _reload either set it or raised
            raise errors.Unavailable("The token keyring is not available.")
        return cipher

    # ------------------------------------------------------------ internals

    def _for_sealing(self) -> TokenCipher:
        cipher = self._cipher
        if cipher is not None and self._clock() - self._loaded_at < self.refresh_s:
            return cipher
        with self._lock:
            now = self._clock()
            if self._cipher is None or now - self._loaded_at >= self.refresh_s:
                self._reload_or_raise(now)
            cipher = self._cipher
        if cipher is None:  # _reload_or_raise either set it or raised
            raise errors.Unavailable("The token keyring is not available.")
        return cipher

    def _for_opening(self, ciphertext: bytes) -> TokenCipher:
        version = key_version_of(ciphertext)
        cipher = self._cipher
        if (
            cipher is not None
            and self._clock() - self._loaded_at < self.refresh_s
            and (not version or version in cipher.versions)
        ):
            return cipher
        with self._lock:
            now = self._clock()
            if self._cipher is None:
                self._reload_or_raise(now)
            else:
                stale = now - self._loaded_at >= self.refresh_s and self._may_try(now)
                unknown = (
                    bool(version)
                    and version not in self._cipher.versions
                    and (self._missed_at is None or now - self._missed_at >= self.retry_s)
                )
                if unknown:
                    self._missed_at = now
                if stale or unknown:
                    try:
                        self._reload(now)
                    except errors.Unavailable:
                        # Opening with the keyring held is safe; only sealing needs a fresh one.
                        log.warning("token keyring re-read failed; opening with the one held")
            cipher = self._cipher
        if cipher is None:
            raise errors.Unavailable("The token keyring is not available.")
        return cipher

    def _may_try(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= self.retry_s

    def _reload_or_raise(self, now: float) -> None:
        """Read the keyring now, or raise; a read that failed within `retry_s` is not
        repeated, so an outage of the keyring's source is not hammered by every call."""
        if not self._may_try(now) and self._failed:
            raise errors.Unavailable("The token keyring is not available.")
        self._reload(now)

    def _reload(self, now: float) -> None:
        """Read the keyring (caller holds the lock). A failure leaves the held one as it was."""
        self._tried_at, self._failed = now, True
        cipher = TokenCipher(self._load(), clock=self._wall_clock)
        self._failed = False
        previous = self._cipher
        self._cipher, self._loaded_at = cipher, now
        self.loads += 1
        if previous is not None and previous.newest_version != cipher.newest_version:
            log.info(
                "token keyring changed",
                extra={
                    "fields": {
                        "newest_version": cipher.newest_version,
                        "versions": ",".join(cipher.versions),
                    }
                },
            )

    def _report(self, version: str) -> None:
        if version in self._reported or self._on_primary is None:
            return
        self._on_primary(version)
        self._reported.add(version)
