"""Serving cost of the functions, each against a bare functions-framework hello-world.

- cold start, per function: a fresh interpreter runs the real functions-framework
  path (`create_app(target, source)`, then one request through its test client)
  and the time is taken from spawning the interpreter to the first response of
  an authenticated request that reaches the database. Baseline: the same for
  `bench/hello/main.py`. Samples interleave subject and baseline; medians are
  reported. Goal: at most 1.5x.
- throughput: `gunicorn -w 2` serving one function, driven for a bounded time by
  a load generator in its own process on loopback (`bench.loadgen`), counting
  2xx responses; subject and baseline servers run side by side and are driven
  in interleaved rounds (medians). Baseline: hello under the same gunicorn settings. Goal: at
  least 0.5x for `GET /auth/session`; `POST /query` on a small table is
  reported against the same baseline.
- floor (`bench/floor/main.py`): functions-framework, psycopg_pool and one durable
  insert per request, none of Cosma's code; reported in both benchmarks against
  the same baseline, as the least any function that reaches Postgres can cost.

Everything is local and real: an embedded Postgres (migrated, seeded), Clerk
tokens from a key generated here (`CLERK_JWT_KEY`, networkless), the DuckDB
warehouse, and for `sync` a Google-style certificate server on loopback that
signs the scheduler's OIDC token. Rate limits are off (`COSMA_RATE_LIMIT_IP`
and `COSMA_RATE_LIMIT_USER` empty): their cost is measured in their own tests,
and a single loopback client would only measure the 429 path.

Knobs (environment): COSMA_BENCH_SAMPLES (cold-start rounds, 7),
COSMA_BENCH_SECONDS (load per throughput subject, 8), COSMA_BENCH_THREADS (4),
COSMA_BENCH_ONLY ("cold", "throughput" or both, comma-separated).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosma import clerk_events

ROOT = Path(__file__).resolve().parent.parent
HELLO_SOURCE = "bench/hello/main.py"
FLOOR_SOURCE = "bench/floor/main.py"
AZP = "https://app.bench.test"
SYNC_AUDIENCE = "https://sync.bench.test/sync"
BQ_PROJECT = "cosma-bench"
SAMPLES = int(os.environ.get("COSMA_BENCH_SAMPLES", "7"))
SECONDS = float(os.environ.get("COSMA_BENCH_SECONDS", "8"))
THREADS = int(os.environ.get("COSMA_BENCH_THREADS", "4"))
WARMUP_S = 1.5
ROUNDS = 4  # throughput: each subject's SECONDS split into this many interleaved rounds
# The child: interpreter start -> functions-framework app -> one request -> marker line.
# Nothing is imported before functions_framework that the baseline does not import too.
CHILD = r"""
import json, os, sys
import functions_framework
spec = json.loads(os.environ["BENCH_REQUEST"])
app = functions_framework.create_app(target=sys.argv[1], source=sys.argv[2])
response = app.test_client().open(
    spec["path"], method=spec["method"], headers=spec["headers"], data=spec.get("body")
)
sys.stdout.write("\n@@bench " + json.dumps(response.status_code) + "\n")
sys.stdout.flush()
os._exit(0)
"""


@dataclass
class Subject:
    """One function and the request that exercises it."""

    name: str
    target: str
    source: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    # The child's environment when not the stage's (the BigQuery-backed query).
    env: dict[str, str] | None = None

    def request(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
        }


@dataclass
class Stage:
    env: dict[str, str]
    subjects: dict[str, Subject]
    hello: Subject
    floor: Subject
    workdir: Path


# ---------------------------------------------------------------- set-up


@contextlib.contextmanager
def _stage() -> Iterator[Stage]:
    """Postgres, seeded tenancy, a provisioned dataset, tokens and the child env."""
    import logging

    from cosma import localdb
    from shared.runtime import Runtime
    from shared.settings import Settings
    from tests.support.bigquery_server import BigQueryServer
    from tests.support.google_certs import SCHEDULER_EMAIL, GoogleCerts
    from tests.support.identity import TokenIssuer
    from tests.support.reporting import load
    from tests.support.seed import Seeder
    from tests.support.servers import serve

    # The certificate server's per-request lines are noise among the results.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="cosma-bench-") as tmp:
        workdir = Path(tmp)
        db = localdb.prepare(admin_url=None, datadir=workdir / "pg", dbname="bench_serving")
        stack = contextlib.ExitStack()
        try:
            org = Seeder(db.admin_url).org()
            _floor_table(db.admin_url)
            client = org.clients[0]
            editor = org.user("editor")
            settings = Settings(
                env="bench",
                database_url=db.app_url,
                worker_database_url=db.worker_url,
                warehouse="duckdb",
                warehouse_dir=workdir / "warehouse",
                keyring_dir=workdir / "keys",
                secrets_dir=workdir / "secrets",
            )
            runtime = Runtime(settings)
            try:
                # A deployed platform: the functions run with cloud settings, where
                # the sandbox is no platform at all.
                load(runtime, org, client, ("meta",), count=60)
            finally:
                runtime.close()
            bq_client = org.clients[1]
            bigquery = stack.enter_context(BigQueryServer(BQ_PROJECT).running())
            bq_settings = settings.with_changes(
                warehouse="bigquery", gcp_project=BQ_PROJECT, bigquery_endpoint=bigquery.url
            )
            runtime = Runtime(bq_settings)
            try:
                load(runtime, org, bq_client, ("meta",), count=60)
            finally:
                runtime.close()
            clerk_events.ensure_secret(settings.secrets_dir)
            webhook_secret = (settings.secrets_dir / clerk_events.SECRET_FILE).read_text().strip()

            tokens = TokenIssuer(issuer="https://clerk.bench.test", azp=AZP)
            user = {"Authorization": f"Bearer {tokens.token(org, editor, ttl=3600)}"}
            # The editor is assigned the first client only; the second is the admin's.
            admin = {"Authorization": f"Bearer {tokens.token(org, org.user('admin'), ttl=3600)}"}
            certs = GoogleCerts()
            certs_url = stack.enter_context(serve(certs.app))
            env = _child_env(settings, tokens, certs_url, SCHEDULER_EMAIL, db.directory_url)
            bq_env = {
                **env,
                "COSMA_WAREHOUSE": "bigquery",
                "GCP_PROJECT": BQ_PROJECT,
                "BIGQUERY_ENDPOINT": bigquery.url,
            }
            spec = {
                "client_id": client,
                "platforms": ["meta"],
                "date_from": "2024-01-01",
                "date_to": "2024-03-31",
                "metrics": ["impressions", "clicks", "spend"],
                "dimensions": ["date"],
            }
            json_headers = {**user, "Content-Type": "application/json"}
            sync_auth = {"Authorization": f"Bearer {certs.token(SYNC_AUDIENCE)}"}
            # A stale update of the seeded organization: verified, looked up, ignored.
            stale = clerk_events.event(
                "organization.updated", clerk_events.organization(org.id, "bench", updated_at=1)
            )
            stale_body = json.dumps(stale, separators=(",", ":"))
            webhook_headers = {
                "Content-Type": "application/json",
                **clerk_events.signed(webhook_secret, stale_body.encode()),
            }

            def fn(name: str, method: str, path: str, **kw: Any) -> Subject:
                return Subject(name, name, f"functions/{name}/main.py", method, path, **kw)

            subjects = {
                "auth": fn("auth", "GET", "/auth/session", headers=user),
                "oauth": fn("oauth", "GET", f"/connections?client_id={client}", headers=user),
                "datasets": fn("datasets", "GET", f"/datasets?client_id={client}", headers=user),
                "clients": fn("datasets", "GET", "/clients", headers=user),
                "query": fn("query", "POST", "/query", headers=json_headers, body=json.dumps(spec)),
                "query_bigquery": fn(
                    "query",
                    "POST",
                    "/query",
                    headers={**admin, "Content-Type": "application/json"},
                    body=json.dumps({**spec, "client_id": bq_client}),
                    env=bq_env,
                ),
                "sync": fn("sync", "POST", "/sync", headers=sync_auth),
                "directory": fn(
                    "directory", "POST", "/webhooks/clerk", headers=webhook_headers, body=stale_body
                ),
            }
            for label, subject in subjects.items():
                subject.name = label
            # The baseline gets the same headers as the auth subject: same bytes parsed.
            hello = Subject("hello", "hello", HELLO_SOURCE, "GET", "/", headers=user)
            floor = Subject("floor", "floor", FLOOR_SOURCE, "GET", "/", headers=user)
            yield Stage(env, subjects, hello, floor, workdir)
        finally:
            stack.close()
            db.stop()


def _floor_table(admin_url: str) -> None:
    """The floor function's table: the app role may insert, as into audit_log."""
    import psycopg

    from shared import migrate

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "create table public.bench_floor (id bigint generated always as identity"
            " primary key, path text not null, at timestamptz not null default now())"
        )
        conn.execute(f"grant insert on public.bench_floor to {migrate.APP}")


def _child_env(
    settings: Any, tokens: Any, certs_url: str, scheduler_email: str, directory_url: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COSMA_", "CLERK_", "SENTRY_", "GCP_", "BIGQUERY_", "SYNC_"))
        # The warm-up round must leave our bytecode cached, as pip left the libraries'
        # (hello's whole import): a machine that sets this would otherwise compile
        # our sources again in every sample and charge it to us alone.
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        {
            "COSMA_ENV": "bench",
            "DATABASE_URL": settings.database_url,
            "WORKER_DATABASE_URL": settings.worker_database_url,
            "DIRECTORY_DATABASE_URL": directory_url,
            "COSMA_ALLOWED_ORIGINS": AZP,
            "CLERK_ISSUER": tokens.issuer,
            "CLERK_JWT_KEY": tokens.public_pem,
            "COSMA_WAREHOUSE": "duckdb",
            "COSMA_WAREHOUSE_DIR": str(settings.warehouse_dir),
            "COSMA_KEYRING_DIR": str(settings.keyring_dir),
            "COSMA_SECRETS_DIR": str(settings.secrets_dir),
            "COSMA_RATE_LIMIT_IP": "",
            "COSMA_RATE_LIMIT_USER": "",
            "SYNC_AUDIENCE": SYNC_AUDIENCE,
            "SCHEDULER_SA_EMAIL": scheduler_email,
            "GOOGLE_CERTS_URL": f"{certs_url}/oauth2/v3/certs",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


# ---------------------------------------------------------------- cold start


def cold_start(stage: Stage, subject: Subject) -> float:
    """Seconds from spawning a fresh interpreter to its first response."""
    env = {**(subject.env or stage.env), "BENCH_REQUEST": json.dumps(subject.request())}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, subject.target, subject.source],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    marker = None
    for line in proc.stdout:
        if line.startswith("@@bench "):
            marker = line
            break
    elapsed = time.perf_counter() - started
    _, stderr = proc.communicate(timeout=60)
    if marker is None:
        raise RuntimeError(f"cold start of {subject.name} failed: {stderr[-2000:]}")
    status = json.loads(marker[len("@@bench ") :])
    if not 200 <= status < 300:
        raise RuntimeError(f"cold start of {subject.name}: status {status}")
    return elapsed


def _cold_starts(stage: Stage) -> list[str]:
    order = [stage.hello, stage.floor, *stage.subjects.values()]
    for subject in order:  # warm the page cache and the bytecode caches, unmeasured
        cold_start(stage, subject)
    samples: dict[str, list[float]] = {s.name: [] for s in order}
    for round_ in range(SAMPLES):
        # Rotate the order so no subject always runs right after the same one.
        shift = round_ % len(order)
        for subject in order[shift:] + order[:shift]:
            samples[subject.name].append(cold_start(stage, subject))
    hello = statistics.median(samples["hello"])
    floor = statistics.median(samples["floor"])
    lines = [
        f"cold_start_hello: {hello * 1000:.0f} ms (bare functions-framework, for reference)",
        f"cold_start_floor: {floor * 1000:.0f} ms ({floor / hello:.2f}x hello; the baseline)",
    ]
    for name in stage.subjects:
        value = statistics.median(samples[name])
        goal = COLD_GOALS.get(name)
        lines.append(
            f"cold_start_{name}: {value * 1000:.0f} ms ({value / floor:.2f}x floor"
            f"{f'; goal <= {goal}x' if goal else ''}; {value / hello:.2f}x hello)"
        )
    return lines


# The goals, as ratios to the floor (docs/performance.md).
COLD_GOALS = {
    "auth": 1.15,
    "oauth": 1.25,
    "datasets": 1.25,
    "clients": 1.25,
    "sync": 1.25,
    "directory": 1.25,
    "query": 1.5,
    "query_bigquery": 2.0,
}


# ---------------------------------------------------------------- throughput


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _gunicorn(stage: Stage, subject: Subject, mode: str) -> Iterator[int]:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if gunicorn is None:
        raise RuntimeError("gunicorn is not installed (pip install -e '.[dev]')")
    port = _free_port()
    app = f'functions_framework:create_app(target="{subject.target}", source="{subject.source}")'
    log = stage.workdir / f"gunicorn-{subject.name}-{mode}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [gunicorn, *MODES[mode], "-b", f"127.0.0.1:{port}", app],
            cwd=ROOT,
            env=stage.env,
            stdout=subprocess.DEVNULL,  # one JSON access line per request: kept off the pipe
            stderr=out,
        )
    try:
        _wait_ready(port, subject, proc, log)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(port: int, subject: Subject, proc: subprocess.Popen[bytes], log: Path) -> None:
    import http.client

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            body = subject.body.encode() if subject.body else None
            conn.request(subject.method, subject.path, body=body, headers=subject.headers)
            status = conn.getresponse().status
            conn.close()
        except OSError:
            time.sleep(0.1)
            continue
        if status == 200:
            return
        raise RuntimeError(f"{subject.name} under gunicorn answered {status}")
    raise RuntimeError("gunicorn did not start")


def _drive(port: int, subject: Subject, seconds: float, threads: int = THREADS) -> dict[str, float]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            json.dumps(subject.request()),
            "--port",
            str(port),
            "--seconds",
            str(seconds),
            "--threads",
            str(threads),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    counts: dict[str, float] = json.loads(result.stdout)
    if counts["other"] or counts["failed"]:
        raise RuntimeError(f"{subject.name}: non-2xx answers under load: {counts}")
    return {**counts, "rate": counts["ok"] / counts["seconds"]}


# How the throughput subjects are served: two sync workers (one request at a
# time each), and as Cloud Functions gen2 serves them (functions-framework's
# gunicorn settings: one worker, four threads per core, several requests at once).
MODES = {
    "w2": ["-w", "2"],
    "gen2": ["-w", "1", "--threads", str((os.cpu_count() or 1) * 4), "-k", "gthread"],
}
# Goals for throughput, as ratios to the floor (docs/performance.md).
RATE_GOALS = {"auth_session": 0.85, "connections": 0.8, "clients": 0.8}
LATENCY_CLIENTS = 8


def _throughputs(stage: Stage) -> list[str]:
    """Every server up at once per mode, driven in turn for ROUNDS short rounds,
    medians reported: load from other processes on the machine then hits subject
    and baseline alike instead of whichever ran during a burst."""
    subjects = [
        ("hello", stage.hello),
        ("floor", stage.floor),
        ("auth_session", stage.subjects["auth"]),
        ("connections", stage.subjects["oauth"]),
        ("clients", stage.subjects["clients"]),
        ("query", stage.subjects["query"]),
    ]
    lines = []
    for mode in MODES:
        rates: dict[str, list[float]] = {label: [] for label, _ in subjects}
        with contextlib.ExitStack() as stack:
            ports = {label: stack.enter_context(_gunicorn(stage, s, mode)) for label, s in subjects}
            for label, subject in subjects:
                _drive(ports[label], subject, WARMUP_S)  # every worker past its cold start
            for _ in range(ROUNDS):
                for label, subject in subjects:
                    rates[label].append(_drive(ports[label], subject, SECONDS / ROUNDS)["rate"])
            latency = {
                label: _drive(ports[label], subject, SECONDS / 2, threads=LATENCY_CLIENTS)
                for label, subject in subjects[1:3]
            }
        hello = statistics.median(rates["hello"])
        floor = statistics.median(rates["floor"])
        lines.append(f"throughput_{mode}_hello: {hello:.0f} req/s (for reference)")
        lines.append(f"throughput_{mode}_floor: {floor:.0f} req/s ({floor / hello:.2f}x hello)")
        for label, _ in subjects[2:]:
            value = statistics.median(rates[label])
            goal = RATE_GOALS.get(label)
            lines.append(
                f"throughput_{mode}_{label}: {value:.0f} req/s ({value / floor:.2f}x floor"
                f"{f'; goal >= {goal}x' if goal else ''})"
            )
        base, ours = latency["floor"], latency["auth_session"]
        lines.append(
            f"latency_{mode}_auth_session ({LATENCY_CLIENTS} clients): p50 {ours['p50_ms']:.1f} ms"
            f" ({ours['p50_ms'] / base['p50_ms']:.2f}x floor's {base['p50_ms']:.1f}),"
            f" p99 {ours['p99_ms']:.1f} ms ({ours['p99_ms'] / base['p99_ms']:.2f}x floor's"
            f" {base['p99_ms']:.1f}; goal <= 1.5x)"
        )
    return lines


def run() -> list[str]:
    parts = os.environ.get("COSMA_BENCH_ONLY", "cold,throughput").split(",")
    with _stage() as stage:
        lines = _cold_starts(stage) if "cold" in parts else []
        return lines + (_throughputs(stage) if "throughput" in parts else [])
