"""The limit holds across instances: four server processes, one Postgres.

Each process is a separate interpreter with its own pool and its own local
state; the only thing they share is the bucket row. Hammered concurrently on
one key, together they accept at most the limit (plus one, for a refill that
may land during the run).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.identity import TokenIssuer
from tests.support.seed import Seeder

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4
LIMIT = 5  # per hour: a refill during the run is (run seconds) * 5/3600


@pytest.fixture(scope="module")
def instances(pg, tokens: TokenIssuer) -> Iterator[list[str]]:
    env = {
        **os.environ,
        "DATABASE_URL": pg.app_url,
        "WORKER_DATABASE_URL": pg.worker_url,
        "CLERK_ISSUER": tokens.issuer,
        "CLERK_JWT_KEY": tokens.public_pem,
        "COSMA_ALLOWED_ORIGINS": tokens.azp,
        "COSMA_RATE_LIMIT_IP": f"{LIMIT}/3600s",
        # As behind one proxy that appends the client's address: each test
        # names its client in X-Forwarded-For.
        "COSMA_TRUSTED_XFF_ENTRIES": "1",
        "COSMA_RATE_LIMIT_USER": f"{LIMIT}/3600s",
        "COSMA_LOG_LEVEL": "WARNING",
        "COSMA_DB_POOL_MAX": "8",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.server_process"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    urls = []
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("port="), f"server did not start: {line!r}"
            urls.append(f"http://127.0.0.1:{line.removeprefix('port=')}")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def hammer(urls: list[str], headers: dict[str, str], total: int = 120) -> Counter[int]:
    session_headers = dict(headers)

    def one(i: int) -> int:
        response = requests.get(
            f"{urls[i % len(urls)]}/auth/session", headers=session_headers, timeout=30
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        return Counter(pool.map(one, range(total)))


def test_four_processes_share_one_ip_limit(instances: list[str]) -> None:
    ip = f"2001:db8:{secrets.randbits(16):x}:{secrets.randbits(16):x}::1"
    statuses = hammer(instances, {"X-Forwarded-For": ip})
    accepted = sum(n for status, n in statuses.items() if status != 429)
    assert set(statuses) <= {401, 429}, statuses
    assert LIMIT <= accepted <= LIMIT + 1, statuses


def test_four_processes_share_one_principal_limit(
    instances: list[str], seeder: Seeder, tokens: TokenIssuer
) -> None:
    org = seeder.org()
    headers = tokens.header(org.principal(org.user("viewer")))
    statuses = hammer(instances, headers)
    accepted = statuses[200]
    assert set(statuses) <= {200, 429}, statuses
    assert LIMIT <= accepted <= LIMIT + 1, statuses
