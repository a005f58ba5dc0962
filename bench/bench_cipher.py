"""Key rotation throughput: the full rotation path (read a batch as the worker
role under RLS, open each token and check its binding, seal with the newest key,
write the batch back, one transaction per 500 rows) vs raw `MultiFernet.rotate`
on the same tokens, in the same run. Goal: at least 0.5x.

Three rounds, each adding a key version, so both sides always rotate tokens
sealed by the second key of the ring; the median of each side is reported.
"""

from __future__ import annotations

import base64
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet, MultiFernet

from cosma import localdb
from shared import rotation
from shared.cipher import TokenCipher
from shared.db import Database

TOKENS = 20_000
ROUNDS = 3
BATCH = 500
ORG = "org_bench"


def _token() -> str:
    # About the size of a real refresh token (Google's are ~100, Microsoft's ~1,000 bytes).
    return "1//0g" + base64.urlsafe_b64encode(os.urandom(150)).decode()


def _load(admin_url: str, cipher: TokenCipher) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("insert into organizations (id, name) values (%s, 'Bench')", (ORG,))
        row = conn.execute(
            "insert into clients (org_id, name) values (%s, 'c') returning id", (ORG,)
        ).fetchone()
        assert row is not None
        ids = [uuid.uuid4() for _ in range(TOKENS)]
        sealed = [cipher.encrypt(_token(), connection_id=str(i), org_id=ORG) for i in ids]
        conn.execute(
            "insert into connections (id, org_id, client_id, platform, created_by,"
            " token_ciphertext, key_version)"
            " select v.id, %s, %s, 'sandbox', 'bench', v.ct, %s"
            " from unnest(%s::uuid[], %s::bytea[]) as v(id, ct)",
            (ORG, row[0], cipher.newest_version, ids, [s.ciphertext for s in sealed]),
        )
        conn.execute("vacuum analyze connections")


def _stored(admin_url: str) -> list[bytes]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute("select token_ciphertext from connections").fetchall()
    return [bytes(r[0]).partition(b":")[2] for r in rows]


def run() -> list[str]:
    keys = [("1", Fernet.generate_key())]
    with tempfile.TemporaryDirectory() as tmp:
        db = localdb.prepare(admin_url=None, datadir=Path(tmp) / "pg", dbname="bench_cipher")
        worker = Database(db.worker_url, max_size=1, name="bench")
        try:
            _load(db.admin_url, TokenCipher(keys))
            raw_rates, cmd_rates = [], []
            for round_ in range(ROUNDS):
                keys.insert(0, (str(round_ + 2), Fernet.generate_key()))
                # Baseline: MultiFernet.rotate over exactly the tokens now stored.
                tokens = _stored(db.admin_url)
                multi = MultiFernet([Fernet(k) for _, k in keys])
                started = time.perf_counter()
                for token in tokens:
                    multi.rotate(token)
                raw_rates.append(len(tokens) / (time.perf_counter() - started))
                # Subject: the rotation command's path, database included.
                result = rotation.rotate(worker, TokenCipher(keys), batch_size=BATCH)
                assert result.rotated == TOKENS and result.remaining == 0, result
                cmd_rates.append(result.rotated / result.seconds)
        finally:
            worker.close()
            db.stop()
    raw, cmd = statistics.median(raw_rates), statistics.median(cmd_rates)
    return [
        f"cipher.rotate_keys: {cmd:,.0f} tokens/s ({cmd / raw:.2f}x vs MultiFernet.rotate"
        f" {raw:,.0f} tokens/s; {TOKENS:,} tokens, batches of {BATCH}, goal >= 0.5x)"
    ]
