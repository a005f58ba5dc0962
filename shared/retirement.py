"""When an old token key version may be retired, and, when not yet, why and when.

A version V may be retired (its key file deleted, its Secret Manager version
dropped from the mounted versions and disabled) only when both hold:

1. no instance may still seal a token with V. Every instance re-reads its
   keyring at least every `keyring_refresh_s` before sealing (`shared.keyring`),
   so once a newer version has sealed a token anywhere, at time T, every
   instance reading the same keyring seals with a newer one by T + refresh. An
   instance of the previous deployment (the keyring mounted per version in the
   cloud) may finish a request it started before the new one took the traffic:
   the grace (`key_retire_grace_s`, default 600 s: the longest function timeout,
   540 s, plus the refresh) covers both, and is never less than the refresh.
2. no stored token is sealed with V. Checked after 1: once nothing seals with
   V, the count can only fall.

"Primary since" (T) lives in the database, table `key_versions`: the first
process to seal with a version (an instance, the sync worker, the rotation
command) inserts it, and the row takes the database's clock. Every instance and
the command read and write the same row, whichever keyring source they use
(a local key directory, mounted Secret Manager versions or the Secret Manager
API), and no host's clock is involved. A version sealed with before this
record existed gets its row from the first seal after it; until then retiring
older versions is refused, which is the safe side.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.db import Database

__all__ = ["Decision", "decide", "grace_s", "primary_since", "record_primary", "sealing_settled_at"]

# No conflict target: naming one needs SELECT on it, and the app role has none.
_RECORD = "insert into public.key_versions (version) values (%s) on conflict do nothing"
_SINCE = "select version, primary_since, now() from public.key_versions"
_NOW = "select now()"
_HELD = (
    "select count(*) from public.connections"
    " where token_ciphertext is not null and key_version = %s"
)


@dataclass(frozen=True)
class Decision:
    """Whether `version` may be retired now; if not, `reason` says why for the operator
    and `allowed_at` when the grace ends (None when waiting alone will not do)."""

    version: str
    allowed: bool
    reason: str = ""
    allowed_at: dt.datetime | None = None


def grace_s(grace: float, refresh: float) -> float:
    """The grace in force: never shorter than the refresh interval it must cover."""
    return max(grace, refresh)


def record_primary(db: Database, version: str) -> None:
    """Note that `version` seals tokens from now on; the first note wins."""
    with db.transaction() as conn:
        conn.execute(_RECORD, (version,))


def primary_since(db: Database) -> tuple[dict[str, dt.datetime], dt.datetime]:
    """When each recorded version first sealed, and the database's now."""
    with db.transaction() as conn:
        rows = conn.execute(_SINCE).fetchall()
        if rows:
            return {str(v): t for v, t, _ in rows}, rows[0][2]
        now = conn.execute(_NOW).fetchone()
    if now is None:  # `select now()` always answers
        raise RuntimeError("no database time")
    return {}, now[0]


def sealing_settled_at(
    since: dict[str, dt.datetime], newest: str, *, grace: float, refresh: float
) -> dt.datetime | None:
    """From when no instance seals with a version older than `newest` (None: `newest`
    has not sealed yet, so older ones still may)."""
    first = since.get(newest)
    if first is None:
        return None
    return first + dt.timedelta(seconds=grace_s(grace, refresh))


def decide(
    db: Database, versions: list[str], version: str, *, grace: float, refresh: float
) -> Decision:
    """May `version` be retired from the keyring `versions` (newest first) now?"""
    if version not in versions:
        return Decision(version, False, f"version {version} is not in the keyring")
    if version == versions[0]:
        return Decision(version, False, f"version {version} is the newest; it seals new tokens")
    since, now = primary_since(db)
    newer = sorted((t, v) for v, t in since.items() if v.isdigit() and int(v) > int(version))
    if not newer:
        return Decision(
            version,
            False,
            f"no version newer than {version} has sealed a token yet, so an instance may"
            f" still seal with {version}: run `cosma rotate-keys --no-new-key`",
        )
    first_at, first_version = newer[0]
    allowed_at = first_at + dt.timedelta(seconds=grace_s(grace, refresh))
    if now < allowed_at:
        wait = (allowed_at - now).total_seconds()
        return Decision(
            version,
            False,
            f"an instance may still seal with version {version} until"
            f" {allowed_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC (in {wait:.0f} s):"
            f" version {first_version} first sealed at"
            f" {first_at.astimezone(dt.UTC):%H:%M:%S} UTC and instances re-read their"
            f" keyring within the grace of {grace_s(grace, refresh):.0f} s"
            " (COSMA_KEY_RETIRE_GRACE_S)",
            allowed_at,
        )
    with db.transaction() as conn:
        row = conn.execute(_HELD, (version,)).fetchone()
    held = int(row[0]) if row else 0
    if held:
        return Decision(
            version,
            False,
            f"{held} token(s) are still sealed with version {version}:"
            " run `cosma rotate-keys --no-new-key`",
        )
    return Decision(version, True)
