"""Shared fixtures: a real Postgres (embedded, or TEST_DATABASE_URL as an
administrative URL), migrated once per session into a throwaway database."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client

from cosma import localdb, sandbox_platform
from cosma.server import LocalServer
from shared.runtime import Runtime
from shared.settings import Settings
from tests.support import log_scan
from tests.support.clerk import Webhooks
from tests.support.identity import TokenIssuer
from tests.support.seed import Seeder

ALLOWED_ORIGIN = "https://app.cosma.test"

# Every log line of the session, formatted as production formats it, is scanned
# for secrets when the session ends (tests/support/log_scan.py).
LOG_CAPTURE = log_scan.CaptureHandler()
logging.getLogger().addHandler(LOG_CAPTURE)
logging.getLogger().setLevel(logging.INFO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = log_scan.leaks(LOG_CAPTURE.lines)
    if found:
        print(f"\nlog scan: {len(found)} line(s) hold a secret:", *found[:20], sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        print(f"\nlog scan: {len(LOG_CAPTURE.lines)} log lines, no secret found")


@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    """The session's own folder. Not pytest's numbered tmp folders: pytest prunes
    the oldest of those when other sessions start, which would pull the data
    directory from under a running Postgres."""
    path = Path(tempfile.mkdtemp(prefix="cosma-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(session_dir: Path) -> Iterator[localdb.LocalDatabase]:
    db = localdb.prepare(
        admin_url=os.environ.get("TEST_DATABASE_URL"),
        datadir=session_dir / "pg",
        dbname=f"cosma_test_{os.getpid()}",
        fresh=True,
    )
    yield db
    db.stop()


@pytest.fixture(scope="session")
def state_dir(session_dir: Path) -> Path:
    path = session_dir / "cosma"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def tokens() -> TokenIssuer:
    """Mints valid Clerk-shaped v2 session tokens: `tokens.header(principal)`."""
    return TokenIssuer(azp=ALLOWED_ORIGIN)


@pytest.fixture(scope="session")
def settings(pg: localdb.LocalDatabase, state_dir: Path, tokens: TokenIssuer) -> Settings:
    return Settings(
        env="test",
        database_url=pg.app_url,
        worker_database_url=pg.worker_url,
        directory_database_url=pg.directory_url,
        allowed_origins=(ALLOWED_ORIGIN,),
        app_url="https://app.cosma.test",
        public_url="http://127.0.0.1:8080",
        keyring_dir=state_dir / "keys",
        secrets_dir=state_dir / "secrets",
        warehouse_dir=state_dir / "warehouse",
        clerk_issuer=tokens.issuer,
        clerk_jwt_key=tokens.public_pem,
        # The suite's requests all come from 127.0.0.1: limits are tested with their
        # own runtimes (tests/*/test_ratelimit*.py), off here.
        rate_limit_ip="",
        rate_limit_user="",
    )


@pytest.fixture(scope="session")
def runtime(settings: Settings) -> Iterator[Runtime]:
    """The local composition (`make run`'s): the deployed platforms plus the sandbox."""
    rt = sandbox_platform.local_runtime(settings)
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def seeder(pg: localdb.LocalDatabase) -> Seeder:
    return Seeder(pg.admin_url)


@pytest.fixture(scope="session")
def server(runtime: Runtime) -> LocalServer:
    return LocalServer(runtime)


@pytest.fixture
def client(server: LocalServer) -> Client:
    return Client(server)


@pytest.fixture
def isolated(pg: localdb.LocalDatabase, settings: Settings) -> Iterator[tuple[Runtime, Seeder]]:
    """A migrated database of the test's own, with its runtime and seeder: for work
    that reads every organization or every due connection (a reconcile, a lease)."""
    from tests.support.sync_env import sync_database

    db = sync_database(pg)
    runtime = Runtime(
        settings.with_changes(
            database_url=db.app_url,
            worker_database_url=db.worker_url,
            directory_database_url=db.directory_url,
        )
    )
    yield runtime, Seeder(db.admin_url)
    runtime.close()


@pytest.fixture(scope="session")
def webhook_secret(settings: Settings) -> str:
    """The suite's Clerk webhook signing secret, where the local secrets port reads it."""
    from cosma import clerk_events

    assert settings.secrets_dir is not None
    return clerk_events.local_secret_or_create(settings.secrets_dir)


@pytest.fixture
def webhooks(client: Client, webhook_secret: str) -> Webhooks:
    """Clerk's webhooks, signed by the svix library, posted to the local server."""
    return Webhooks(client, webhook_secret)
