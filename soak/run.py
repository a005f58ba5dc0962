"""The orchestrator: one soak run from an empty state folder to its printed verdict."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from soak import checks, config, faults
from soak.client import Api, Recorder, read_records
from soak.cluster import ROOT, Proc
from soak.config import Knobs, Layout
from soak.world import Org

SETUP_TIMEOUT_S = 600.0
SCHEDULER_EVERY_S = 2.0


def say(text: str) -> None:
    print(f"soak: {text}", flush=True)


class Orchestrator:
    def __init__(self, knobs: Knobs, home: Path) -> None:
        self.knobs = knobs
        self.root = ROOT
        self.layout = Layout(
            home=home,
            peer_port=config.free_port(),
            server_ports=[config.free_port() for _ in range(knobs.servers)],
        )
        self.pgdata = home / "pg"
        self.logs = home / "logs"
        self.env: dict[str, str] = {}
        self.servers: list[Proc] = []
        self.peer: Proc | None = None
        self.clients: list[Proc] = []
        self.db: Any = None
        self.api: Api | None = None
        self.recorder: Recorder | None = None
        self.fault_log: list[dict[str, Any]] = []
        self._stop_scheduler = threading.Event()
        self._syncs: list[threading.Thread] = []
        self._worker: Any = None

    # ------------------------------------------------------------ the system

    def start(self) -> None:
        from cosma import clerk_events, sandbox_oauth
        from cosma.issuer import LocalIssuer
        from shared.secrets import LocalSecrets
        from shared.settings import Settings
        from soak import google, postgres

        home = self.layout.home
        say(f"state in {home}")
        self.db = postgres.prepare(self.pgdata)
        self.layout.database = {
            "admin": self.db.admin_url,
            "app": self.db.app_url,
            "worker": self.db.worker_url,
            "directory": self.db.directory_url,
        }
        self.layout.save(home / "layout.json")
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("COSMA_", "CLERK_", "SANDBOX_", "SOAK_"))
            and k not in ("DATABASE_URL", "WORKER_DATABASE_URL", "DIRECTORY_DATABASE_URL")
        }
        self.env = {**inherited, **config.environment(self.layout, self.knobs)}
        # What `cosma serve` makes on a first run, made once here for every process.
        clerk_events.ensure_secret(home / "secrets")
        settings = Settings.from_env(self.env)
        sandbox_oauth.ensure_client_secret(settings)
        LocalSecrets(home / "keys", home / "secrets").keyring()
        LocalIssuer.load_or_create(home)
        google.create(home)
        self.peer = Proc("peer", ["soak.peer", str(home / "layout.json")], self.env, self.logs)
        self.peer.start()
        self.servers = [
            Proc(f"server-{i}", ["soak.server", str(port)], self.env, self.logs)
            for i, port in enumerate(self.layout.server_ports)
        ]
        for server in self.servers:
            server.start()
        self.peer.wait_url(self.layout.peer_url + "/.well-known/jwks.json")
        for i, server in enumerate(self.servers):
            server.wait_url(self.layout.server_url(i) + "/healthz")
        self.recorder = Recorder(self.layout.records / "orchestrator.jsonl")
        self.api = Api(
            [self.layout.server_url(i) for i in range(self.knobs.servers)], self.recorder, "o"
        )
        say(f"Postgres, the peer and {len(self.servers)} API servers are up")

    def worker_runtime(self) -> Any:
        if self._worker is None:
            from shared.runtime import Runtime
            from shared.settings import Settings

            self._worker = Runtime(Settings.from_env(self.env))
        return self._worker

    def make_due(self, *, limit: int | None) -> None:
        from shared.sync import leases

        db = self.worker_runtime().worker_db
        ids: list[str] | None = None
        if limit is not None:
            with db.transaction() as conn:
                rows = conn.execute(
                    "select id::text from connections where status = 'active'"
                    " order by random() limit %s",
                    (limit,),
                ).fetchall()
            ids = [r[0] for r in rows]
        try:
            leases.make_due(db, ids)
        except Exception as exc:  # during another fault: the next one will do
            say(f"make_due: {type(exc).__name__}")

    def leases_held(self, pattern: str) -> int:
        try:
            with self.worker_runtime().worker_db.transaction() as conn:
                row = conn.execute(
                    "select count(*) from connections where lease_owner like %s", (pattern,)
                ).fetchone()
        except Exception:
            return 0
        return int(row[0]) if row else 0

    def runs_in_progress(self, pattern: str) -> int:
        """Sync runs started and not finished by the lease owners matching `pattern`."""
        try:
            with self.worker_runtime().worker_db.transaction() as conn:
                row = conn.execute(
                    "select count(*) from sync_runs r join connections c"
                    " on c.id = r.connection_id"
                    " where r.outcome = 'running' and c.lease_owner like %s",
                    (pattern,),
                ).fetchone()
        except Exception:
            return 0
        return int(row[0]) if row else 0

    def database_answers(self) -> bool:
        import psycopg

        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with psycopg.connect(self.layout.database["admin"]) as conn:
                    conn.execute("select 1")
                return True
            except psycopg.Error:
                time.sleep(0.2)
        return False

    # ------------------------------------------------------------ Cloud Scheduler

    def scheduler(self) -> None:
        """POST /sync every few seconds with Cloud Scheduler's token, at most two at once."""
        from soak import google

        rng = random.Random(self.knobs.seed)
        while not self._stop_scheduler.wait(SCHEDULER_EVERY_S):
            self._syncs = [t for t in self._syncs if t.is_alive()]
            if len(self._syncs) >= 2:
                continue
            token = google.token(
                self.layout.home, f"{self.layout.public_url}/sync", config.SCHEDULER_EMAIL
            )
            server = rng.randrange(self.knobs.servers)
            thread = threading.Thread(target=self._sync_once, args=(token, server), daemon=True)
            thread.start()
            self._syncs.append(thread)

    def _sync_once(self, token: str, server: int) -> None:
        if self.api is None:
            return
        self.api.call(
            "POST",
            "/sync",
            route="POST /sync",
            expected=(200,),
            kind="scheduler",
            token=token,
            ip="10.253.0.1",
            server=server,
        )

    def stop_scheduler(self) -> None:
        self._stop_scheduler.set()
        for thread in self._syncs:
            thread.join(60)

    # ------------------------------------------------------------ the run

    def set_up(self) -> list[dict[str, Any]]:
        plan = {"knobs": self.knobs.__dict__, "rate": 6.0}
        plan_path = self.layout.home / "plan.json"
        plan_path.write_text(json.dumps(plan))
        groups: list[list[int]] = [[] for _ in range(self.knobs.client_processes)]
        for index in range(self.knobs.organizations):
            groups[index % len(groups)].append(index)
        for n, group in enumerate(groups):
            name = f"c{n + 1}"
            argv = ["soak.load", str(self.layout.home / "layout.json"), str(plan_path), name]
            self.clients.append(Proc(name, [*argv, *map(str, group)], self.env, self.logs).start())
        ready = self.layout.home / "ready"
        deadline = time.time() + SETUP_TIMEOUT_S
        directory: list[dict[str, Any]] = []
        while time.time() < deadline:
            found = [ready / f"{c.name}.json" for c in self.clients]
            if all(p.exists() for p in found):
                for path in found:
                    data = json.loads(path.read_text())
                    if "failed" in data:
                        raise RuntimeError(f"set-up failed in {path.stem}: {data['failed']}")
                    directory.extend(data["orgs"])
                return directory
            for client in self.clients:
                if not client.running() and not (ready / f"{client.name}.json").exists():
                    raise RuntimeError(f"{client.name} exited:\n{client.tail()}")
            time.sleep(0.2)
        raise RuntimeError("set-up did not finish in time")

    def go(self, directory: list[dict[str, Any]]) -> tuple[float, float]:
        start = time.time() + 1.0
        deadline = start + self.knobs.seconds
        signal = {
            "start": start,
            "deadline": deadline,
            "directory": directory,
            "provider_window": faults.provider_window(start, self.knobs.seconds),
        }
        partial = self.layout.home / ".go.json"
        partial.write_text(json.dumps(signal))
        os.replace(partial, self.layout.home / "go.json")
        return start, deadline

    def run_faults(self, start: float) -> None:
        for offset, name in faults.schedule(self.knobs.seconds):
            delay = start + offset - time.time()
            if delay > 0:
                time.sleep(delay)
            say(f"fault: {name}")
            try:
                result = faults.FAULTS[name](self)
            except Exception as exc:
                now = time.time()
                result = {
                    "name": name,
                    "start": now,
                    "end": now,
                    "ok": False,
                    "detail": f"{type(exc).__name__}: {exc}",
                }
            self.fault_log.append(result)
            say(f"fault: {name} {'done' if result['ok'] else 'FAILED'}: {result['detail']}")

    def final_queries(self, directory: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every client's whole history, asked through the API as its admin, against
        what the warehouse holds."""
        from cosma.issuer import LocalIssuer

        if self.api is None:
            raise RuntimeError("the system is not started")
        issuer = LocalIssuer.load_or_create(self.layout.home)
        datasets = self.dataset_files()
        today = dt.datetime.now(dt.UTC).date()
        results = []
        for entry in directory:
            org = Org(int(entry["index"]))
            user = org.user_id("admin1")
            token = issuer.mint(
                user_id=user,
                org_id=org.id,
                role="admin",
                issuer=self.layout.peer_url,
                azp=config.ORIGIN,
            )
            for client_id in entry["clients"]:
                if client_id not in datasets:
                    continue
                spec = {
                    "client_id": client_id,
                    "platforms": ["sandbox"],
                    "date_from": str(today - dt.timedelta(days=400)),
                    "date_to": str(today + dt.timedelta(days=1)),
                    "metrics": ["impressions", "clicks"],
                    "dimensions": ["date", "account_id"],
                    "limit": 10000,
                }
                answer = self.api.call(
                    "POST",
                    "/query",
                    route="POST /query",
                    expected=(200,),
                    kind="final",
                    org=org.id,
                    user=user,
                    token=token,
                    body=spec,
                    ip="10.254.0.1",
                )
                got = _query_days(answer.json()) if answer.ok else None
                want = _warehouse_days(datasets[client_id])
                match = got == want
                detail = "" if match else f"API {len(got or {})} days, warehouse {len(want)}"
                results.append({"client_id": client_id, "match": match, "detail": detail})
        return results

    def dataset_files(self) -> dict[str, Path]:
        import psycopg

        with psycopg.connect(self.layout.database["admin"]) as conn:
            rows = conn.execute(
                "select client_id::text, dataset_id from datasets where platform = 'sandbox'"
                " and status = 'ready'"
            ).fetchall()
        folder = self.layout.home / "warehouse"
        return {c: folder / f"{d}.duckdb" for c, d in rows if (folder / f"{d}.duckdb").exists()}

    def stop(self) -> None:
        self._stop_scheduler.set()
        for proc in [*self.clients, *self.servers]:
            proc.stop()
        if self.peer is not None:
            self.peer.stop()
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self.recorder is not None:
            for thread in self._syncs:
                thread.join(60)
            self.recorder.close()
            self.recorder = None

    def stop_database(self) -> None:
        from soak import postgres

        if self.db is not None:
            postgres.stop(self.pgdata, self.db)
            self.db = None


def _query_days(body: Any) -> dict[tuple[str, str], tuple[int, int]] | None:
    if not isinstance(body, dict):
        return None
    columns = body["columns"]
    at = [columns.index(n) for n in ("date", "account_id", "impressions", "clicks")]
    return {
        (str(r[at[0]])[:10], str(r[at[1]])): (int(r[at[2]]), int(r[at[3]])) for r in body["rows"]
    }


def _warehouse_days(path: Path) -> dict[tuple[str, str], tuple[int, int]]:
    import duckdb

    conn = duckdb.connect(str(path), read_only=True)
    try:
        rows = conn.execute(
            "select date, account_id, sum(impressions), sum(clicks)"
            " from ad_performance_daily group by date, account_id"
        ).fetchall()
    finally:
        conn.close()
    return {(str(d), str(a)): (int(i), int(c)) for d, a, i, c in rows}


# ---------------------------------------------------------------- evidence


def gather(o: Orchestrator, load: tuple[float, float]) -> checks.Evidence:
    import duckdb
    import psycopg

    from shared import audit

    admin = o.layout.database["admin"]
    with psycopg.connect(admin) as conn:
        audit_rows = [
            (str(a), str(b), str(c), str(d))
            for a, b, c, d in conn.execute(
                "select org_id, actor, request_id, outcome from audit_log"
            ).fetchall()
        ]
        broken = [f"{b.org_id} seq {b.seq}: {b.reason}" for b in audit.verify(conn)]
        orgs_row = conn.execute("select count(distinct org_id) from audit_log").fetchone()
        owners: dict[str, str] = {}
        for table in ("clients", "connections", "sync_runs"):
            for uuid, org in conn.execute(f"select id::text, org_id from {table}").fetchall():  # noqa: S608
                owners[str(uuid)] = str(org)
        runs = [
            {
                "id": r[0],
                "connection_id": r[1],
                "started_at": r[2],
                "finished_at": r[3],
                "rows_loaded": r[4],
                "outcome": r[5],
                "error_class": r[6],
            }
            for r in conn.execute(
                "select id::text, connection_id::text, started_at, finished_at, rows_loaded,"
                " outcome, error_class from sync_runs"
            ).fetchall()
        ]
        connections = [
            {
                "id": r[0],
                "client_id": r[1],
                "org_id": r[2],
                "status": r[3],
                "account_ids": list(r[4] or []),
                "has_token": bool(r[5]),
                "key_version": r[6],
                "ciphertext": bytes(r[7]) if r[7] is not None else None,
                "revocation": r[8],
            }
            for r in conn.execute(
                "select id::text, client_id::text, org_id, status, account_ids,"
                " token_ciphertext is not null, key_version, token_ciphertext, revocation"
                " from connections"
            ).fetchall()
        ]
    files = o.dataset_files()
    warehouse_rows: dict[str, list[tuple[Any, ...]]] = {}
    for client_id, path in files.items():
        conn_d = duckdb.connect(str(path), read_only=True)
        try:
            warehouse_rows[client_id] = conn_d.execute(
                "select date, account_id, ad_id, campaign_id, campaign_name, ad_group_id,"
                " impressions, clicks, spend_micros, conversions, conversion_value_micros,"
                " currency from ad_performance_daily"
            ).fetchall()
        finally:
            conn_d.close()
    runtime = o.worker_runtime()
    newest = runtime.secrets.keyring()[0][0]
    token_results: dict[str, str] = {}
    for c in connections:
        if c["status"] != "active":
            continue
        if c["ciphertext"] is None:
            token_results[c["id"]] = "active without a token"
            continue
        try:
            runtime.cipher.decrypt(c["ciphertext"], connection_id=c["id"], org_id=c["org_id"])
            token_results[c["id"]] = ""
        except Exception as exc:
            token_results[c["id"]] = f"does not decrypt ({type(exc).__name__})"
    return checks.Evidence(
        records=read_records(o.layout.records),
        faults=[checks.Fault.of(f) for f in o.fault_log],
        load_start=load[0],
        load_end=load[1],
        principal_ttl_s=o.knobs.principal_ttl_s,
        first_days=config.FIRST_DAYS,
        audit_rows=audit_rows,
        broken_chains=broken,
        audit_orgs=int(orgs_row[0]) if orgs_row else 0,
        owners=owners,
        sync_runs=runs,
        connections=connections,
        datasets=files,
        warehouse_rows=warehouse_rows,
        token_results=token_results,
        newest_version=newest,
    )


def run(knobs: Knobs, *, keep: bool = False) -> int:
    from cosma.sandbox_connector import SandboxConnector

    home = Path(tempfile.mkdtemp(prefix="cosma-soak-"))
    o = Orchestrator(knobs, home)
    code = 1
    try:
        began = time.time()
        o.start()
        scheduler = threading.Thread(target=o.scheduler, daemon=True)
        scheduler.start()
        directory = o.set_up()
        say(
            f"{len(directory)} organizations set up in {time.time() - began:.0f} s;"
            f" {knobs.seconds:g} s of load from {len(o.clients)} client processes"
        )
        start, deadline = o.go(directory)
        fault_thread = threading.Thread(target=o.run_faults, args=(start,))
        fault_thread.start()
        for client in o.clients:
            client.wait(knobs.seconds + 300)
        fault_thread.join()
        o.stop_scheduler()
        failed_clients = [c.name for c in o.clients if c.proc and c.proc.returncode != 0]
        say("load done; final queries")
        finals = o.final_queries(directory)
        provider = faults.provider_state(o)
        o.stop()
        evidence = gather(o, (start, deadline))
        evidence.final_queries = finals
        evidence.provider_grants = int(provider.get("live_refresh_grants", -1))
        lines = checks.all_lines(
            evidence,
            lookback_days=SandboxConnector.lookback_days,
            retention_days=SandboxConnector.retention_days,
        )
        driver_errors = sum(
            json.loads(p.read_text()).get("driver_errors", 0)
            for p in (home / "ready").glob("*.done.json")
        )
        lines.append(
            checks.Line(
                "clients",
                not failed_clients and driver_errors == 0,
                f"{len(o.clients)} client processes, {driver_errors} errors in their own code"
                + (f"; exited non-zero: {', '.join(failed_clients)}" if failed_clients else ""),
            )
        )
        report = "\n".join(line.render() for line in lines)
        print(report, flush=True)
        (home / "report.txt").write_text(report + "\n")
        code = 0 if all(line.ok for line in lines) else 1
        say(f"{'passed' if code == 0 else 'FAILED'} in {time.time() - began:.0f} s")
    except Exception as exc:
        say(f"run aborted: {type(exc).__name__}: {exc}")
        raise
    finally:
        o.stop()
        o.stop_database()
        if code == 0 and not keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            say(f"state, logs and records kept in {home}")
    return code


if __name__ == "__main__":
    sys.exit(run(Knobs()))
