"""Key rotation: re-encrypt every stored token with the newest key version.

Procedure (`cosma rotate-keys`, then `cosma keys-check --retire`):
1. Add a key version (locally `LocalSecrets.add_key_version()`; in the cloud a
   new version of the keyring secret, mounted into the functions). Running
   instances pick it up within `keyring_refresh_s` (`shared.keyring`).
2. `rotate()` walks `connections` in primary-key order, in batches, each batch
   one transaction: rows not on the newest version are locked with
   `FOR UPDATE SKIP LOCKED`, opened (the envelope binding is checked), sealed
   with the newest key and written back. A batch commits or leaves nothing,
   so the run is safe to interrupt and to rerun: a rerun only sees rows still
   on an old version. Rows locked by a concurrent token refresh are skipped
   and picked up by the next pass; the run repeats passes until one makes no
   progress.
   `converge()` repeats the rotation until it is final: an instance may seal
   with an old version until the grace after the newest first sealed
   (`shared.retirement`), so it waits for that moment, then makes a last pass;
   after it, no token is on an old version and none can appear.
3. `census()` counts tokens per key version. A version may be retired when no
   token is on it and the grace has passed (`retirement.decide`); then it is
   disabled in Secret Manager, or deleted with `LocalSecrets.retire_key_version`.

The rotation runs as the worker role (`runtime.worker_db`): it has select and
update on connections under the `worker_all` policy and nothing more. In the
cloud it runs as a Cloud Run job with the keyring mounted as files, the same
image and settings as the sync worker; it needs no new grant.

A row whose token cannot be opened (tampered, bound to another row, or on a
key no longer in the keyring) is left unchanged and reported by connection id
only; it is never decrypted into a log line or an error.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared import retirement
from shared.cipher import DEFAULT_PURPOSE, TokenCipher
from shared.errors import InvalidToken

if TYPE_CHECKING:
    from shared.db import Database

log = logging.getLogger("cosma.rotation")

DEFAULT_BATCH = 500

_SELECT_BATCH = """
select id, org_id, token_ciphertext from public.connections
 where id > %s and token_ciphertext is not null and key_version is distinct from %s
 order by id
 limit %s
 for update skip locked
"""

# `c.id = any(ids)` lets the planner find the batch through the primary key
# instead of hashing the whole table for every batch. Binary parameters (%b)
# send the ciphertexts as raw bytes, not escaped text.
_UPDATE_BATCH = """
update public.connections c
   set token_ciphertext = v.ciphertext, key_version = %(version)s
  from unnest(%(ids)b::uuid[], %(ciphertexts)b::bytea[]) as v(id, ciphertext)
 where c.id = v.id and c.id = any(%(ids)b::uuid[])
"""

_REMAINING = """
select count(*) from public.connections
 where token_ciphertext is not null and key_version is distinct from %s
"""

_CENSUS = """
select coalesce(key_version, ''), count(*) from public.connections
 where token_ciphertext is not null
 group by 1 order by 1
"""


@dataclass
class Progress:
    """Where a rotation stands; passed to the progress callback after each batch."""

    newest_version: str
    total: int
    rotated: int = 0
    failed: list[str] = field(default_factory=list)  # connection ids, nothing else
    batches: int = 0
    passes: int = 0
    remaining: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rotated / self.seconds if self.seconds > 0 else 0.0


def remaining(db: Database, newest_version: str) -> int:
    """Tokens not yet on `newest_version`."""
    with db.transaction() as conn:
        row = conn.execute(_REMAINING, (newest_version,)).fetchone()
    return int(row[0]) if row else 0


def census(db: Database) -> dict[str, int]:
    """Token count per key version ("" for a token stored without one)."""
    with db.transaction() as conn:
        return {str(v): int(n) for v, n in conn.execute(_CENSUS).fetchall()}


def rotate(
    db: Database,
    cipher: TokenCipher,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[Progress], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Progress:
    """Re-encrypt every token not on the cipher's newest version; resumable."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    newest = cipher.newest_version
    started = clock()
    progress = Progress(newest_version=newest, total=remaining(db, newest))
    while True:
        progress.passes += 1
        moved = _one_pass(db, cipher, batch_size, progress, on_batch, clock, started)
        if moved == 0:
            break
    progress.remaining = remaining(db, newest)
    progress.seconds = clock() - started
    log.info(
        "key rotation finished",
        extra={
            "fields": {
                "key_version": newest,
                "rotated": progress.rotated,
                "failed": len(progress.failed),
                "remaining": progress.remaining,
            }
        },
    )
    return progress


def _one_pass(
    db: Database,
    cipher: TokenCipher,
    batch_size: int,
    progress: Progress,
    on_batch: Callable[[Progress], None] | None,
    clock: Callable[[], float],
    started: float,
) -> int:
    """Walk the table once by primary key; returns how many rows were re-encrypted."""
    newest = cipher.newest_version
    seen_failed = set(progress.failed)
    after: object = uuid.UUID(int=0)
    moved = 0
    while True:
        with db.transaction() as conn:
            rows = conn.execute(_SELECT_BATCH, (after, newest, batch_size), binary=True).fetchall()
            if not rows:
                return moved
            ids: list[object] = []
            sealed: list[bytes] = []
            for conn_id, org_id, ciphertext in rows:
                try:
                    new = cipher.rotate(
                        ciphertext,
                        connection_id=str(conn_id),
                        org_id=org_id,
                        purpose=DEFAULT_PURPOSE,
                    )
                except InvalidToken:
                    if str(conn_id) not in seen_failed:
                        seen_failed.add(str(conn_id))
                        progress.failed.append(str(conn_id))
                    continue
                ids.append(conn_id)
                sealed.append(new.ciphertext)
            if ids:
                conn.execute(_UPDATE_BATCH, {"version": newest, "ids": ids, "ciphertexts": sealed})
            after = rows[-1][0]
        moved += len(ids)
        progress.rotated += len(ids)
        progress.batches += 1
        progress.seconds = clock() - started
        if on_batch is not None:
            on_batch(progress)


def converge(
    db: Database,
    snapshot: Callable[[], TokenCipher],
    *,
    record: Callable[[str], None],
    grace: float,
    refresh: float,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[Progress], None] | None = None,
    on_wait: Callable[[float, str], None] | None = None,
    wait: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
    max_rounds: int = 5,
) -> Progress:
    """Re-encrypt until no token is on an old version and none can appear.

    Each round reads the keyring afresh (`snapshot()`), notes that its newest
    version seals from now on (`record`, which starts the grace if no instance
    has yet), and rotates. Until the grace after the newest first sealed, an
    instance that has not re-read its keyring may still seal with an older
    version: with `wait`, the round then sleeps until that moment (`on_wait`
    gets the seconds left and the version) and goes again. A keyring that gained
    a version meanwhile simply makes the next round rotate to it.
    """
    started = clock()
    total: Progress | None = None
    for _ in range(max_rounds):
        cipher = snapshot()
        record(cipher.newest_version)
        since, before = retirement.primary_since(db)
        settled_at = retirement.sealing_settled_at(
            since, cipher.newest_version, grace=grace, refresh=refresh
        )
        progress = rotate(db, cipher, batch_size=batch_size, on_batch=on_batch, clock=clock)
        total = progress if total is None else _merged(total, progress)
        # Final only if the whole round ran after every instance sealed with the newest.
        if settled_at is None or not wait or before >= settled_at:
            break
        _, now = retirement.primary_since(db)
        left = (settled_at - now).total_seconds()
        while left > 0:
            if on_wait is not None:
                on_wait(left, cipher.newest_version)
            step = min(left, 10.0)
            sleep(step)
            left -= step
    if total is None:  # max_rounds < 1
        raise ValueError("max_rounds must be positive")
    total.seconds = clock() - started
    return total


def _merged(total: Progress, later: Progress) -> Progress:
    failed = total.failed + [c for c in later.failed if c not in total.failed]
    return Progress(
        newest_version=later.newest_version,
        total=total.total + later.total,
        rotated=total.rotated + later.rotated,
        failed=failed,
        batches=total.batches + later.batches,
        passes=total.passes + later.passes,
        remaining=later.remaining,
        seconds=total.seconds + later.seconds,
    )
