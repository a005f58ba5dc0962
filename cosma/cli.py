"""The `cosma` command: run the system locally and operate it.

cosma serve            embedded Postgres + migrations + every function on :8080 (PORT)
cosma url              the running local server's address (from the state folder)
cosma migrate          apply migrations to DATABASE_URL (an administrative URL)
cosma audit-verify     recompute the audit hash chains, name the first broken link
cosma dev-token        a local session token; the organization and member come from
                       signed Clerk webhooks sent to the running server, clients from its API
cosma dev-event        send one signed Clerk event to the running server (as Clerk would)
cosma directory reconcile  compare with Clerk's Backend API and apply what differs
cosma rotate-keys      add a key version and re-encrypt every stored token with it, until final
cosma keys-check       count tokens per key version; non-zero exit while any is on an old one;
                       --retire deletes old versions once no token and no instance uses them
cosma sync             sync the due connections now (what Cloud Scheduler triggers), with progress
cosma platforms        each platform's API version, its sunset and the days left (warns within 90)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared import logs
from shared.platforms.versions import WARN_DAYS
from shared.settings import Settings


def state_dir() -> Path:
    return Path(os.environ.get("COSMA_HOME", ".cosma")).resolve()


def default_url() -> str:
    """Where `cosma serve` listens when started from this shell's environment."""
    return f"http://127.0.0.1:{int(os.environ.get('PORT', '8080'))}"


def local_settings(
    app_url: str, worker_url: str, home: Path, public: str | None = None, **overrides: object
) -> Settings:
    """Settings for local mode: the environment, with local defaults filled in.

    `public` is the server's own address; the other commands pass the running
    server's (from `cosma.instance`), not their own PORT."""
    base = Settings.from_env()
    public = public or default_url()
    values: dict[str, object] = {
        "database_url": app_url,
        "worker_database_url": worker_url,
        "public_url": public,
        "allowed_origins": base.allowed_origins or ("http://localhost:3000",),
        "keyring_dir": base.keyring_dir or home / "keys",
        "secrets_dir": base.secrets_dir or home / "secrets",
        "warehouse_dir": base.warehouse_dir or home / "warehouse",
        "clerk_issuer": base.clerk_issuer or public,
        "clerk_jwks_url": base.clerk_jwks_url or f"{public}/.well-known/jwks.json",
        "sync_audience": base.sync_audience or f"{public}/sync",
        "reconcile_audience": base.reconcile_audience or f"{public}/directory/reconcile",
    }
    values.update(overrides)
    return base.with_changes(**values)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _listen(host: str, port: int) -> socket.socket | None:
    """The server's listening socket, bound here so that a port in use gets our
    message (werkzeug prints its own and exits when it binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        print(
            f"cosma: cannot listen on {host}:{port}: {exc.strerror or exc}.\n"
            "  Another program (perhaps another `make run`) has that port. Start this"
            " server on another one, e.g. `PORT=8292 make run`.",
            file=sys.stderr,
        )
        return None
    return sock


def _public_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "127.0.0.1", "localhost", "", "::") else host  # noqa: S104
    return f"http://{shown}:{port}"


def cmd_serve(args: argparse.Namespace) -> int:
    from cosma import instance

    # `kill` (SIGTERM) stops as cleanly as Ctrl-C, from the first moment on.
    signal.signal(signal.SIGTERM, _interrupt)
    home = state_dir()
    claim = instance.claim(home)
    if claim is None:
        other = instance.running(home)
        where = f" (pid {other.pid}, {other.url})" if other else ""
        print(
            f"cosma: another server{where} is already running on the state in {home}.\n"
            "  Stop it first (Ctrl-C in its terminal), or give this one a state folder"
            " of its own: `COSMA_HOME=/tmp/cosma-2 PORT=8292 make run`.",
            file=sys.stderr,
        )
        return 1
    try:
        return _serve(args, home, claim)
    except KeyboardInterrupt:
        print("cosma: stopped", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        claim.release()


def _serve(args: argparse.Namespace, home: Path, claim: Any) -> int:
    from cosma import instance, localdb
    from cosma.server import LocalServer, make_local_server

    settings0 = Settings.from_env()
    logs.configure(settings0.log_level)
    # Our own access line already covers each request.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # The port first: a port in use is said before Postgres starts for nothing.
    sock = _listen(args.host, args.port)
    if sock is None:
        return 1
    port = sock.getsockname()[1]
    public = _public_url(args.host, port)
    print(f"cosma: state in {home}", flush=True)
    try:
        db = localdb.prepare(admin_url=os.environ.get("DATABASE_URL"), datadir=home / "pg")
    except BaseException:
        sock.close()
        raise
    try:
        settings = local_settings(
            db.app_url, db.worker_url, home, public=public, directory_database_url=db.directory_url
        )
        from cosma import sandbox_oauth, sandbox_platform

        # The local composition: the deployed platforms plus the sandbox.
        runtime = sandbox_platform.local_runtime(settings)

        # The sandbox platform's client secret, created on first run like the keys,
        # and its grants, kept with the rest of the state so restarts keep them.
        sandbox_oauth.ensure_client_secret(settings)
        sandbox_oauth.provider.keep_grants_in(home / "sandbox")
        # Clerk's webhooks: CLERK_WEBHOOK_SECRET, or a secret generated on first run.
        _webhook_secret(settings)
        # First run creates the local key directory (0700) and its first key (0600).
        newest = runtime.secrets.keyring()[0][0]
        print(f"cosma: token key version {newest} in {settings.keyring_dir}", flush=True)
        from cosma.issuer import LocalIssuer

        # The local identity provider: its JWKS is what CLERK_JWKS_URL names locally.
        app = LocalServer(runtime, extra=[LocalIssuer.load_or_create(home).router()])
        server = make_local_server(args.host, port, app, fd=sock.fileno())
        sock.close()  # the server holds its own duplicate of the socket
        claim.publish(
            instance.ServerRecord(
                pid=os.getpid(),
                url=public,
                issuer=settings.clerk_issuer,
                azp=settings.allowed_origins[0],
            )
        )
        print(banner(public), flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            runtime.close()
    finally:
        # A second Ctrl-C must not leave Postgres half stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        db.stop()
    print("cosma: stopped", flush=True)
    return 0


def banner(base: str) -> str:
    """What `cosma serve` prints once it listens: commands that work as printed,
    from any shell (they find this server through the state folder)."""
    return (
        f"\ncosma: serving every function on {base}\n"
        f"  API reference: {base}/docs  (the OpenAPI document: {base}/openapi.json)\n"
        f"  curl {base}/healthz\n"
        f"  curl -i {base}/no-such-path      # a problem+json 404\n"
        "  TOKEN=$(.venv/bin/cosma dev-token --user u1 --org o1 --role admin)"
        "   # via signed Clerk webhooks\n"
        f'  curl -H "Authorization: Bearer $TOKEN" {base}/auth/session\n'
        "  (README.md walks through connecting the sandbox platform, a sync and a query.)\n"
        "Ctrl-C stops the server and the embedded Postgres.\n"
    )


def cmd_url(args: argparse.Namespace) -> int:
    from cosma import instance

    record = instance.running(state_dir())
    if record is None:
        print(_not_running(), file=sys.stderr)
        return 1
    print(record.url)
    return 0


def _not_running() -> str:
    return (
        f"cosma: no local server is running on the state in {state_dir()};"
        " start it with `make run` (in another terminal)"
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    from shared import migrate

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        print("DATABASE_URL (an administrative URL) is required", file=sys.stderr)
        return 2
    applied = migrate.apply(url)
    print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    import psycopg

    from shared import audit

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        from cosma import localdb

        db = localdb.prepare(admin_url=None, datadir=state_dir() / "pg")
        url, stop = db.admin_url, db.stop
    else:
        stop = lambda: None  # noqa: E731
    try:
        with psycopg.connect(url) as conn:
            broken = audit.verify(conn, args.org)
            checked = _audit_census(conn, args.org)
    finally:
        stop()
    records, orgs = checked
    if not broken and records == 0:
        if args.org:
            print(
                f"audit-verify: organization {args.org!r} has no audit records, so nothing was"
                " checked (is the id right? `--org` takes the organization id, e.g. o1)",
                file=sys.stderr,
            )
            return 1
        print("audit-verify: no audit records yet, nothing to check")
        return 0
    if not broken:
        print(f"audit chain intact: {records} record(s) of {orgs} organization(s) checked")
        return 0
    for link in broken:
        print(f"broken: org={link.org_id} seq={link.seq} id={link.id}: {link.reason}")
    return 1


def _audit_census(conn: Any, org: str | None) -> tuple[int, int]:
    """How many audit records (and of how many organizations) a verification read."""
    row = conn.execute(
        "select count(*), count(distinct org_id) from audit_log"
        " where %(org)s::text is null or org_id = %(org)s",
        {"org": org},
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _client_id(value: str) -> str:
    """argparse type of `--client`: a client id is a UUID."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a client id: client ids are UUIDs"
            " (`--create-client NAME` makes a client and prints its id)"
        ) from None


def _webhook_secret(settings: Settings) -> None:
    """The local Clerk webhook signing secret: `CLERK_WEBHOOK_SECRET` when set, else
    one generated in the local secrets folder on first run."""
    from cosma import clerk_events

    folder = settings.secrets_dir
    if folder is None:
        return
    generated = Path(folder) / clerk_events.SECRET_FILE
    if os.environ.get(clerk_events.ENV, "").strip():
        # A file would take precedence over the variable: the generated one goes.
        if generated.exists():
            generated.unlink()
        print(f"cosma: Clerk webhooks verified with {clerk_events.ENV}", flush=True)
        return
    clerk_events.ensure_secret(Path(folder))
    print(f"cosma: Clerk webhooks verified with the secret in {generated}", flush=True)


class _LocalApi:
    """The local server's API, called as a client would, with a bearer token."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def call(self, method: str, path: str, token: str, body: object = None) -> tuple[int, object]:
        import json
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (the local server's http URL)
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read()
                try:
                    return exc.code, json.loads(raw) if raw else None
                except ValueError:
                    return exc.code, None


def _running_server(command: str) -> Any:
    """The running local server's record (its address, issuer and azp), or None with
    a sentence on stderr: Clerk's events and the API calls go to it."""
    from cosma import instance

    home = state_dir()
    server = instance.running(home)
    if server is None:
        print(
            f"{command}: no local server is running on the state in {home}; start it with"
            " `make run` (it receives the signed Clerk events this command sends)",
            file=sys.stderr,
        )
    return server


def _signing_secret(command: str) -> str | None:
    from cosma import clerk_events

    home = state_dir()
    folder = Settings.from_env().secrets_dir or home / "secrets"
    try:
        return clerk_events.local_secret(Path(folder))
    except FileNotFoundError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return None


def _membership_id(org_id: str, user_id: str) -> str:
    """The same membership id on every run for a user and organization, as in Clerk."""
    import hashlib

    return "orgmem_" + hashlib.sha256(f"{org_id}/{user_id}".encode()).hexdigest()[:24]


def _send(command: str, base: str, secret: str, kind: str, data: dict[str, Any]) -> bool:
    import urllib.error

    from cosma import clerk_events

    try:
        status = clerk_events.send(base, secret, clerk_events.event(kind, data))
    except (urllib.error.URLError, OSError) as exc:
        print(f"{command}: cannot reach the local server at {base} ({exc})", file=sys.stderr)
        return False
    if status != 200:
        hint = (
            f" (is {clerk_events.ENV} the same for it and for this command?)"
            if status == 401
            else ""
        )
        print(f"{command}: the local server answered {status} to {kind}{hint}", file=sys.stderr)
        return False
    return True


def cmd_dev_token(args: argparse.Namespace) -> int:
    """Clerk's part, played locally: signed webhooks make the organization and the
    member on the running server; clients and assignments go through its API."""
    from cosma import clerk_events
    from cosma.issuer import LocalIssuer

    server = _running_server("dev-token")
    secret = _signing_secret("dev-token")
    if server is None or secret is None:
        return 2
    if (args.client or args.create_client) and args.role != "admin" and not args.admin:
        print(
            "dev-token: --client and --create-client go through the API, where admins"
            " create and assign clients: name an admin of the organization with --admin",
            file=sys.stderr,
        )
        return 2
    issuer = LocalIssuer.load_or_create(state_dir())

    def mint(user: str, role: str) -> str:
        return issuer.mint(
            user_id=user,
            org_id=args.org,
            role=role,
            issuer=server.issuer,
            azp=server.azp,
            ttl=args.ttl,
        )

    api = _LocalApi(server.url)
    acting = mint(args.admin or args.user, "admin")
    # The clients to assign must be the organization's, checked before anything changes.
    for client_id in args.client:
        status, _ = api.call("GET", f"/clients/{client_id}", acting)
        if status != 200:
            print(
                f"dev-token: organization {args.org} has no client {client_id} that its admin"
                " can see; `--create-client NAME` makes one. Nothing was changed.",
                file=sys.stderr,
            )
            return 2
    # The organization as first created (version 0): a later run changes nothing of
    # it (`cosma dev-event organization.updated` does); the membership is current.
    org = clerk_events.organization(
        args.org, args.org, data_location=args.data_location, created_at=0, updated_at=0
    )
    membership = clerk_events.membership(
        org,
        args.user,
        args.clerk_role or f"org:{args.role}",
        membership_id=_membership_id(args.org, args.user),
    )
    for kind, data in (
        ("organization.created", org),
        ("organizationMembership.created", membership),
    ):
        if not _send("dev-token", server.url, secret, kind, data):
            return 2
    if args.client or args.create_client:
        code = _dev_clients(api, acting, args)
        if code:
            return code
    print(mint(args.user, args.role))
    return 0


def cmd_dev_event(args: argparse.Namespace) -> int:
    """One signed Clerk event to the running server, e.g. a membership's deletion."""
    from cosma import clerk_events

    server = _running_server("dev-event")
    secret = _signing_secret("dev-event")
    if server is None or secret is None:
        return 2
    kind = args.type
    needs_user = kind == "user.deleted" or kind.startswith("organizationMembership.")
    if needs_user and not args.user:
        print(f"dev-event: {kind} needs --user", file=sys.stderr)
        return 2
    org = clerk_events.organization(args.org, args.org, data_location=args.data_location)
    data: dict[str, Any]
    if kind == "organization.deleted":
        data = clerk_events.deleted("organization", args.org)
    elif kind == "user.deleted":
        data = clerk_events.deleted("user", args.user)
    elif kind.startswith("organizationMembership."):
        data = clerk_events.membership(
            org, args.user, args.clerk_role, membership_id=_membership_id(args.org, args.user)
        )
    else:
        data = org
    if not _send("dev-event", server.url, secret, kind, data):
        return 1
    print(f"{kind}: applied")
    return 0


def _dev_clients(api: _LocalApi, token: str, args: argparse.Namespace) -> int:
    clients = list(args.client)
    for name in args.create_client:
        status, body = api.call("POST", "/clients", token, {"name": name})
        if status == 409:  # made by an earlier run: the same client
            _, listed = api.call("GET", "/clients", token)
            known = listed.get("clients", []) if isinstance(listed, dict) else []
            found = [c["id"] for c in known if c["name"].lower() == name.strip().lower()]
            status, body = (200, {"id": found[0]}) if found else (409, body)
        if status not in (200, 201) or not isinstance(body, dict):
            print(f"dev-token: POST /clients answered {status}: {body}", file=sys.stderr)
            return 2
        print(f"client {name}: {body['id']}", file=sys.stderr)
        clients.append(body["id"])
    if args.role == "admin":
        return 0  # an admin reaches every client of its organization: nothing to assign
    for client_id in clients:
        status, body = api.call("PUT", f"/clients/{client_id}/assignments/{args.user}", token)
        if status != 204:
            print(f"dev-token: assigning {client_id} answered {status}: {body}", file=sys.stderr)
            return 2
    return 0


def _directory_settings() -> tuple[Settings, Callable[[], None]]:
    """Settings for a job on the directory role: the environment when it names the
    directory database (the cloud job), else the local embedded database."""
    from shared import migrate

    local = _local_job_database("DIRECTORY_DATABASE_URL", "directory", migrate.DIRECTORY)
    if local is None:
        return Settings.from_env(), lambda: None
    home, directory_url, stop = local
    return local_settings("", "", home, directory_database_url=directory_url), stop


def _local_job_database(
    url_variable: str, role_name: str, role: str
) -> tuple[Path, str, Callable[[], None]] | None:
    """For a job on one database role: None when the environment names that role's
    database (the cloud job); else the local embedded database, started and
    migrated, as (state folder, the role's URL, stop)."""
    if os.environ.get(url_variable):
        return None
    if os.environ.get("DATABASE_URL"):
        raise SystemExit(f"{url_variable} (the {role_name} role's URL) is required")
    from cosma import localdb
    from shared import migrate

    home = state_dir()
    home.mkdir(parents=True, exist_ok=True)
    # Not `localdb.prepare`: it resets role passwords under a running `cosma serve`.
    admin_url, stop = localdb.start_embedded(home / "pg")
    try:
        localdb.create_database(admin_url, "cosma")
        url = localdb.with_database(admin_url, "cosma")
        migrate.apply(url)
    except BaseException:
        stop()
        raise
    # The embedded server trusts its unix socket; the role, not a password, matters.
    return home, localdb.with_user(url, role, ""), stop


def cmd_directory_reconcile(args: argparse.Namespace) -> int:
    """What the daily scheduler job runs: Clerk's Backend API against our rows."""
    import time
    import uuid

    from shared.directory import reconcile
    from shared.runtime import Runtime

    settings, stop = _directory_settings()
    runtime = Runtime(settings)
    started = time.monotonic()

    def show(p: reconcile.OrgProgress) -> None:
        print(
            f"organization {p.org_id}: {p.members} member(s), created {p.created},"
            f" updated {p.updated}, removed {p.removed}",
            flush=True,
        )

    try:
        summary = reconcile.run(
            runtime,
            request_id=f"cli-{uuid.uuid4().hex[:16]}",
            dry_run=args.dry_run,
            allow_mass_removal=args.allow_mass_removal,
            on_progress=show,
        )
    finally:
        runtime.close()
        stop()
    for reason in summary.refused:
        print(f"refused: {reason}", file=sys.stderr)
    print(
        f"done{' (dry run, nothing applied)' if summary.dry_run else ''}:"
        f" created {summary.created}, updated {summary.updated}, removed {summary.removed}"
        f" ({summary.unchanged} unchanged) over {summary.organizations} organization(s),"
        f" {summary.memberships} membership(s); erased {summary.erased_clients} client(s)"
        f" of deleted organizations, {summary.clients_left} left;"
        f" {summary.stopped} in {time.monotonic() - started:.2f}s",
        flush=True,
    )
    return 1 if summary.refused or summary.clients_left or summary.stopped != "done" else 0


def _worker_settings() -> tuple[Settings, Callable[[], None]]:
    """Settings for a job on the worker role: the environment when it names the
    worker database (the cloud job), else the local embedded database."""
    from shared import migrate

    local = _local_job_database("WORKER_DATABASE_URL", "worker", migrate.WORKER)
    if local is None:
        return Settings.from_env(), lambda: None
    home, worker_url, stop = local
    from cosma import instance

    server = instance.running(home)
    return local_settings("", worker_url, home, public=server.url if server else None), stop


def _progress_printer(min_interval_s: float = 1.0) -> Callable[[object], None]:
    """Print a rotation's progress: its first batch, then at most once per interval,
    and its last, so a pass over a million rows shows tens of lines, not thousands."""
    import time

    from shared import rotation

    last = [float("-inf")]

    def show(progress: object) -> None:
        if not isinstance(progress, rotation.Progress):
            return
        now = time.monotonic()
        done = progress.rotated >= progress.total
        if not done and progress.batches > 1 and now - last[0] < min_interval_s:
            return
        last[0] = now
        share = 100.0 * progress.rotated / progress.total if progress.total else 100.0
        print(
            f"rotated {progress.rotated}/{progress.total} ({share:.1f}%) to key version"
            f" {progress.newest_version}, {progress.rate:,.0f} tokens/s",
            flush=True,
        )

    return show


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    from shared import retirement, rotation
    from shared.runtime import Runtime

    settings, stop = _worker_settings()
    runtime = Runtime(settings)
    try:
        if not args.no_new_key:
            add_key_version = getattr(runtime.secrets, "add_key_version", None)
            if add_key_version is None:
                print(
                    "this keyring is managed in Secret Manager: add a version of the keyring"
                    " secret, mount it in the functions (keyring_versions) and apply, then run"
                    " `cosma rotate-keys --no-new-key` (docs/deploy.md)",
                    file=sys.stderr,
                )
                return 2
            print(f"added key version {add_key_version()}", flush=True)

        def waiting(left: float, version: str) -> None:
            print(
                f"waiting {left:.0f} s: a running instance may still seal with an older"
                f" version until it re-reads the keyring; then a last pass to version {version}"
                " (Ctrl-C is safe; rerun to finish)",
                flush=True,
            )

        worker = runtime.worker_db
        result = rotation.converge(
            worker,
            runtime.cipher.snapshot,
            record=lambda version: retirement.record_primary(worker, version),
            grace=settings.key_retire_grace_s,
            refresh=settings.keyring_refresh_s,
            batch_size=args.batch_size,
            on_batch=_progress_printer(),
            on_wait=waiting,
            wait=not args.no_wait,
        )
    finally:
        runtime.close()
        stop()
    print(
        f"done: {result.rotated} re-encrypted in {result.seconds:.2f}s,"
        f" {result.remaining} still on an old version",
        flush=True,
    )
    for connection_id in result.failed:
        print(f"unreadable token, left as is: connection {connection_id}", file=sys.stderr)
    if result.failed:
        print(
            f"{len(result.failed)} token(s) cannot be opened with any key held: those"
            " connections must be reconnected; no rerun changes them",
            file=sys.stderr,
        )
    elif result.remaining:
        print("rerun `cosma rotate-keys --no-new-key` to finish", file=sys.stderr)
    elif args.no_wait:
        print(
            "a running instance may still seal with an older version for up to"
            f" {settings.key_retire_grace_s:.0f} s; `cosma keys-check` says when it can be retired",
            flush=True,
        )
    return 0 if result.remaining == 0 else 1


def cmd_keys_check(args: argparse.Namespace) -> int:
    from shared import retirement, rotation
    from shared.runtime import Runtime

    settings, stop = _worker_settings()
    runtime = Runtime(settings)
    lines: list[str] = []
    refused = False
    try:
        versions = [v for v, _ in runtime.secrets.keyring()]
        counts = rotation.census(runtime.worker_db)
        newest = versions[0]
        stale = {v: n for v, n in counts.items() if v != newest and n}
        for version in [] if stale else versions[1:]:
            decision = retirement.decide(
                runtime.worker_db,
                versions,
                version,
                grace=settings.key_retire_grace_s,
                refresh=settings.keyring_refresh_s,
            )
            if not decision.allowed:
                refused = True
                lines.append(f"version {version}: not yet retirable: {decision.reason}")
            elif not args.retire:
                lines.append(
                    f"version {version} holds no token and no instance seals with it:"
                    " it can be retired (--retire)"
                )
            else:
                retire = getattr(runtime.secrets, "retire_key_version", None)
                if retire is None:
                    secret = getattr(runtime.secrets, "keyring_secret", "<the keyring secret>")
                    lines.append(
                        f"version {version} can be retired: drop it from keyring_versions,"
                        " apply, then disable it: `gcloud secrets versions disable"
                        f" {version} --secret={secret}` (docs/deploy.md)"
                    )
                else:
                    retire(version)
                    lines.append(f"version {version}: retired")
    finally:
        runtime.close()
        stop()
    print("tokens per key version:")
    for version in [*versions, *sorted(set(counts) - set(versions))]:
        label = {newest: " (newest)"}.get(version, "" if version in versions else " (unknown)")
        print(f"  {version or '(none)'}{label}: {counts.get(version, 0)}")
    if stale:
        print(f"{sum(stale.values())} token(s) on an old version: `cosma rotate-keys --no-new-key`")
        return 1
    for line in lines:
        print(line)
    return 1 if args.retire and refused else 0


def cmd_sync(args: argparse.Namespace) -> int:
    """One sync invocation on the worker role, as POST /sync runs it (no OIDC locally)."""
    from cosma import instance, sandbox_platform
    from shared.sync import leases, runner

    if not os.environ.get("WORKER_DATABASE_URL") and instance.running(state_dir()) is None:
        # Locally the sandbox's OAuth provider and report API are the server's own
        # routes: a sync without it would put every connection into back-off.
        print(
            f"{_not_running()}: the sandbox platform's provider runs in it. Nothing was"
            " synced and no connection changed.",
            file=sys.stderr,
        )
        return 2
    settings, stop = _worker_settings()
    runtime = sandbox_platform.local_runtime(settings)
    try:
        if args.now:
            print(f"made {leases.make_due(runtime.worker_db)} connection(s) due now", flush=True)

        def show(result: runner.RunResult) -> None:
            error = f" ({result.error_class})" if result.error_class else ""
            window = (
                f"window {result.window_from}..{result.window_to}"
                if result.window_from and result.window_to
                else "no report read"
            )
            print(
                f"connection {result.connection_id}: {result.recorded_outcome}{error},"
                f" {result.rows} rows, {result.accounts} account(s),"
                f" {window}, {result.duration_ms} ms",
                flush=True,
            )
            for line in result.health:
                print(f"  health: {line}", flush=True)

        report = runner.run(runtime, owner=runner.new_owner("cli"), on_result=show)
    finally:
        runtime.close()
        stop()
    print(
        f"done: {len(report.results)} connection(s), {report.rows} rows in"
        f" {report.elapsed_s:.2f}s ({report.stopped})",
        flush=True,
    )
    failed = [r for r in report.results if r.recorded_outcome in ("failed", "reauth_required")]
    return 1 if failed else 0


def cmd_platforms(args: argparse.Namespace) -> int:
    """The deployed platforms' API versions; non-zero exit while one is within its warning."""
    import datetime as dt

    from shared.platforms.registry import Registry

    today = args.today or dt.datetime.now(dt.UTC).date()
    registry = Registry.from_settings(Settings.from_env())
    entries = [registry.platform(name) for name in registry.names]
    versions = [e.api_version for e in entries if e.api_version is not None]
    print(f"API versions on {today} (a warning {WARN_DAYS} days before a sunset):")
    print(f"  {'platform':<11} {'version':<8} {'sunset':<11} {'days left':>9}  basis      source")
    warnings: list[str] = []
    for version in versions:
        left = version.days_left(today)
        sunset = str(version.sunset) if version.sunset else "none known"
        days = "-" if left is None else str(left)
        print(
            f"  {version.platform:<11} {version.version:<8} {sunset:<11} {days:>9}"
            f"  {version.basis:<9}  {version.source}"
        )
        notice = version.notice(today)
        if notice:
            warnings.append(notice)
    for version in versions:
        for note in version.notes:
            print(f"note: {version.platform}: {note}")
    for warning in warnings:
        print(f"WARNING: {warning}")
    return 1 if warnings else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cosma", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run every function locally")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    serve.set_defaults(func=cmd_serve)
    url = sub.add_parser("url", help="print the running local server's address")
    url.set_defaults(func=cmd_url)
    mig = sub.add_parser("migrate", help="apply migrations to DATABASE_URL")
    mig.set_defaults(func=cmd_migrate)
    ver = sub.add_parser("audit-verify", help="verify the audit hash chains")
    ver.add_argument("--org", default=None, help="only this organization")
    ver.set_defaults(func=cmd_audit_verify)
    tok = sub.add_parser(
        "dev-token", help="a local session token; org and member via signed Clerk webhooks"
    )
    tok.add_argument("--user", required=True, help="user id, e.g. u1")
    tok.add_argument("--org", required=True, help="organization id, e.g. o1")
    tok.add_argument("--role", choices=("admin", "editor", "viewer"), default="admin")
    tok.add_argument(
        "--clerk-role",
        default="",
        metavar="ROLE",
        help="the Clerk role to send instead of org:<role> (e.g. org:member, or an unmapped one)",
    )
    tok.add_argument(
        "--data-location",
        choices=("US", "EU"),
        default=None,
        help="the new organization's public_metadata.data_location (a later run keeps it)",
    )
    tok.add_argument(
        "--client", action="append", default=[], type=_client_id, help="assign this client id"
    )
    tok.add_argument(
        "--create-client",
        action="append",
        default=[],
        metavar="NAME",
        help="create a client through POST /clients (assigned unless admin), id on stderr",
    )
    tok.add_argument(
        "--admin",
        default="",
        metavar="USER",
        help="an admin of the organization who creates and assigns clients for a non-admin",
    )
    tok.add_argument("--ttl", type=int, default=3600, help="token lifetime in seconds")
    tok.set_defaults(func=cmd_dev_token)
    eve = sub.add_parser("dev-event", help="send one signed Clerk event to the local server")
    eve.add_argument(
        "type",
        choices=(
            "organization.created",
            "organization.updated",
            "organization.deleted",
            "organizationMembership.created",
            "organizationMembership.updated",
            "organizationMembership.deleted",
            "user.deleted",
        ),
    )
    eve.add_argument("--org", required=True, help="organization id")
    eve.add_argument("--user", default="", help="user id (memberships, user.deleted)")
    eve.add_argument(
        "--clerk-role", default="org:admin", metavar="ROLE", help="a membership's role"
    )
    eve.add_argument("--data-location", choices=("US", "EU"), default=None)
    eve.set_defaults(func=cmd_dev_event)
    dire = sub.add_parser("directory", help="the directory of organizations and members")
    dsub = dire.add_subparsers(dest="directory_command", required=True)
    rec = dsub.add_parser("reconcile", help="compare with Clerk's Backend API and apply it")
    rec.add_argument("--dry-run", action="store_true", help="show what differs, apply nothing")
    rec.add_argument(
        "--allow-mass-removal",
        action="store_true",
        help="remove organizations even when most of ours are not in Clerk",
    )
    rec.set_defaults(func=cmd_directory_reconcile)
    rot = sub.add_parser("rotate-keys", help="re-encrypt every stored token with a new key")
    rot.add_argument(
        "--no-new-key", action="store_true", help="re-encrypt to the newest existing version"
    )
    rot.add_argument("--batch-size", type=int, default=500, help="rows per transaction")
    rot.add_argument(
        "--no-wait",
        action="store_true",
        help="return after the passes, without waiting out the grace for a last one",
    )
    rot.set_defaults(func=cmd_rotate_keys)
    chk = sub.add_parser("keys-check", help="count tokens per key version")
    chk.add_argument(
        "--retire",
        action="store_true",
        help="delete old local key versions no token uses and no instance seals with",
    )
    chk.set_defaults(func=cmd_keys_check)
    syn = sub.add_parser("sync", help="sync the due connections now")
    syn.add_argument(
        "--now", action="store_true", help="make every active connection due first (sync again)"
    )
    syn.set_defaults(func=cmd_sync)
    plat = sub.add_parser("platforms", help="API versions, sunsets and days left")
    plat.add_argument(
        "--today",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="count the days from this date (plan ahead); default: today (UTC)",
    )
    plat.set_defaults(func=cmd_platforms)
    return parser


def _date(value: str) -> object:
    import datetime as dt

    return dt.date.fromisoformat(value)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
