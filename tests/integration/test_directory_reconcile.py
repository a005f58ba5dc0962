"""The reconcile: Clerk's Backend API (a local server of its shapes) against our rows."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from werkzeug.test import Client

from cosma import clerk_events
from cosma.server import LocalServer
from shared import errors
from shared.directory import reconcile
from shared.runtime import Runtime
from tests.support.clerk import BackendApi, Webhooks, new_id
from tests.support.google_certs import SCHEDULER_EMAIL, GoogleCerts
from tests.support.seed import Seeder
from tests.support.servers import serve

ROOT = Path(__file__).resolve().parents[2]


def rows(seeder: Seeder, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(seeder.admin_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def members(seeder: Seeder, org_id: str) -> dict[str, str]:
    found = rows(seeder, "select user_id, role from members where org_id = %s", (org_id,))
    return dict(found)


@pytest.fixture
def clerk() -> Iterator[tuple[BackendApi, str]]:
    """A fresh Clerk instance of its own for each test: nothing else lives in it."""
    fake = BackendApi()
    with serve(fake) as url:
        yield fake, f"{url}/v1"


def run(
    runtime: Runtime, fake: BackendApi, url: str, page_size: int = 2, **kw: Any
) -> reconcile.Summary:
    from shared.clerk_api import ClerkBackend

    backend = ClerkBackend(url, fake.secret_key, page_size=page_size)
    return reconcile.reconcile(runtime, backend, request_id="test-reconcile", **kw)


def test_missed_webhooks_are_created_from_clerk_page_by_page(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder]
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    orgs = [fake.add_org(created_at=1_700_000_000_000 + i, data_location="EU") for i in range(3)]
    users = [new_id("user") for _ in range(5)]
    for i, user in enumerate(users):
        fake.add_member(
            orgs[0]["id"],
            user,
            ("org:admin", "org:editor", "org:member")[i % 3],
            created_at=1_700_000_000_000 + i,
        )
    summary = run(runtime, fake, url)
    assert summary.organizations == 3 and summary.memberships == 5
    assert (summary.created, summary.updated, summary.removed) == (8, 0, 0)
    assert members(seeder, orgs[0]["id"]) == {
        users[0]: "admin",
        users[1]: "editor",
        users[2]: "viewer",
        users[3]: "admin",
        users[4]: "editor",
    }
    assert rows(seeder, "select location from organizations where id = %s", (orgs[1]["id"],)) == [
        ("EU",)
    ]
    # Audited as Clerk's, through the webhook's code, with the way it came.
    trail = rows(
        seeder,
        "select actor, action, detail from audit_log where org_id = %s order by seq",
        (orgs[0]["id"],),
    )
    assert trail[0][:2] == ("clerk", "clerk.organization.created")
    assert all(actor == "clerk" and detail.endswith("via=reconcile") for actor, _, detail in trail)
    assert len(trail) == 6
    # Pages of two: more than one request per list.
    assert sum(1 for path, _ in fake.calls if path == "/v1/organizations") == 2
    # A second run finds nothing to do and writes nothing.
    again = run(runtime, fake, url)
    assert (again.created, again.updated, again.removed) == (0, 0, 0)
    assert len(rows(seeder, "select 1 from audit_log where org_id = %s", (orgs[0]["id"],))) == 6


def test_role_changes_and_removals_missed_are_applied(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder]
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    org = fake.add_org()
    stays, promoted, leaves = new_id("user"), new_id("user"), new_id("user")
    for user in (stays, promoted, leaves):
        fake.add_member(org["id"], user, "org:member", updated_at=1_700_000_000_000)
    run(runtime, fake, url)
    fake.remove_member(org["id"], promoted)
    fake.add_member(org["id"], promoted, "org:admin", updated_at=1_800_000_000_000)
    fake.remove_member(org["id"], leaves)
    summary = run(runtime, fake, url)
    assert (summary.created, summary.updated, summary.removed) == (0, 1, 1)
    assert members(seeder, org["id"]) == {stays: "viewer", promoted: "admin"}
    removal = rows(
        seeder,
        "select action, resource from audit_log where org_id = %s and action like %s",
        (org["id"], "%deleted"),
    )
    assert removal == [
        ("clerk.organizationMembership.deleted", f"/organizations/{org['id']}/members/{leaves}")
    ]


def test_a_member_that_moved_while_the_list_was_read_is_asked_for_again(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder]
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    org = fake.add_org()
    users = [new_id("user") for _ in range(4)]
    for i, user in enumerate(users):
        fake.add_member(org["id"], user, "org:member", created_at=1_700_000_000_000 + i)
    run(runtime, fake, url)

    def first_leaves(org_id: str, offset: int) -> None:
        # Someone leaves while we read page two: the others shift up one place,
        # and users[2] is on neither page we read.
        if (
            org_id == org["id"]
            and offset == 2
            and any(m["public_user_data"]["user_id"] == users[0] for m in fake.memberships[org_id])
        ):
            fake.remove_member(org_id, users[0])

    fake.before_page = first_leaves
    summary = run(runtime, fake, url)
    fake.before_page = None
    # users[2] was skipped by the shift, asked for by id, and kept; users[0] was
    # listed before it left, so the next run removes it.
    assert summary.removed == 0
    assert set(members(seeder, org["id"])) == set(users)
    assert any(args.get("user_id") == [users[2]] for _, args in fake.calls)
    assert run(runtime, fake, url).removed == 1
    assert set(members(seeder, org["id"])) == set(users[1:])


def test_a_membership_newer_than_the_list_is_not_removed(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder], webhook_secret: str
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    org = fake.add_org()
    fake.add_member(org["id"], new_id("user"), "org:admin")
    run(runtime, fake, url)
    # A webhook applied a membership Clerk will list only later (it is newer).
    newcomer = new_id("user")
    hooks = Webhooks(Client(LocalServer(runtime)), webhook_secret)
    future = clerk_events.now_ms() + 3_600_000
    hooks.send(
        "organizationMembership.created",
        clerk_events.membership(org, newcomer, "org:editor", updated_at=future),
    )
    run(runtime, fake, url)
    assert members(seeder, org["id"])[newcomer] == "editor"


def test_an_organization_gone_from_clerk_is_deleted_and_erased(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder]
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    kept, gone = fake.add_org(), fake.add_org()
    for org in (kept, gone):
        fake.add_member(org["id"], new_id("user"), "org:admin")
    fake.add_org()  # a third, so one removal is not "more than half"
    run(runtime, fake, url)
    rows(
        seeder,
        "insert into clients (org_id, name) values (%s, 'A'), (%s, 'B') returning 1",
        (gone["id"], gone["id"]),
    )
    fake.remove_org(gone["id"])
    summary = run(runtime, fake, url)
    assert summary.removed == 1 and summary.erased_clients == 2 and summary.clients_left == 0
    assert rows(
        seeder, "select suspended_at is not null from organizations where id = %s", (gone["id"],)
    ) == [(True,)]
    assert rows(seeder, "select 1 from members where org_id = %s", (gone["id"],)) == []
    assert rows(seeder, "select 1 from clients where org_id = %s", (gone["id"],)) == []
    assert len(members(seeder, kept["id"])) == 1


def test_a_clerk_that_lists_none_of_our_organizations_removes_nothing(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder]
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    ours = [seeder.org() for _ in range(2)]
    summary = run(runtime, fake, url)  # an empty instance: another key, say
    assert summary.removed == 0 and summary.refused
    for org in ours:
        assert len(members(seeder, org.id)) == 3
        assert rows(seeder, "select suspended_at from organizations where id = %s", (org.id,)) == [
            (None,)
        ]
    forced = run(runtime, fake, url, allow_mass_removal=True)
    assert forced.removed == 2


def test_a_dry_run_changes_nothing(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder]
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    org = fake.add_org()
    fake.add_member(org["id"], new_id("user"), "org:admin")
    summary = run(runtime, fake, url, dry_run=True)
    assert summary.dry_run and summary.created == 2
    assert rows(seeder, "select 1 from organizations where id = %s", (org["id"],)) == []
    assert rows(seeder, "select 1 from audit_log where org_id = %s", (org["id"],)) == []


def test_a_refused_key_applies_nothing(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder]
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    org = fake.add_org()
    from shared.clerk_api import ClerkBackend

    with pytest.raises(errors.UpstreamError):
        reconcile.reconcile(runtime, ClerkBackend(url, "sk_wrong"), request_id="x")
    assert rows(seeder, "select 1 from organizations where id = %s", (org["id"],)) == []


# ---------------------------------------------------------------- the scheduled job and the CLI


def test_the_reconcile_route_runs_for_the_schedulers_token_only(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder], tmp_path: Path
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    org = fake.add_org()
    certs = GoogleCerts()
    audience = "https://directory.cosma.test/directory/reconcile"
    (tmp_path / "clerk-secret-key").write_text(fake.secret_key)
    with serve(certs.app) as certs_url:
        job = Runtime(
            runtime.settings.with_changes(
                clerk_api_url=url,
                secrets_dir=tmp_path,
                google_certs_url=f"{certs_url}/oauth2/v1/certs",
                reconcile_audience=audience,
                reconcile_scheduler_sa_email=SCHEDULER_EMAIL,
            )
        )
        try:
            client = Client(LocalServer(job))
            wrong = certs.token(audience="https://sync.cosma.test/sync")
            refused = client.post(
                "/directory/reconcile", headers={"Authorization": f"Bearer {wrong}"}
            )
            assert refused.status_code == 401
            assert client.post("/directory/reconcile").status_code == 401
            assert rows(seeder, "select 1 from organizations where id = %s", (org["id"],)) == []
            token = certs.token(audience=audience)
            done = client.post("/directory/reconcile", headers={"Authorization": f"Bearer {token}"})
            assert done.status_code == 200, done.get_data(as_text=True)
            assert done.get_json()["created"] == 1
        finally:
            job.close()
    assert rows(seeder, "select 1 from organizations where id = %s", (org["id"],)) == [(1,)]


def test_the_cli_prints_progress_and_a_summary(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder], tmp_path: Path
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    org = fake.add_org()
    fake.add_member(org["id"], new_id("user"), "org:admin")
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("COSMA_", "CLERK_", "DATABASE_URL"))
        },
        "COSMA_HOME": str(tmp_path),
        "COSMA_ENV": "test",
        "DIRECTORY_DATABASE_URL": runtime.settings.directory_database_url,
        "CLERK_API_URL": url,
        "CLERK_SECRET_KEY": fake.secret_key,
    }
    result = subprocess.run(
        [sys.executable, "-m", "cosma.cli", "directory", "reconcile"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"organization {org['id']}: 1 member(s), created 2, updated 0, removed 0" in result.stdout
    )
    assert "done: created 2, updated 0, removed 0" in result.stdout
    assert fake.secret_key not in result.stdout + result.stderr
    assert len(members(seeder, org["id"])) == 1


def test_seen_deliveries_are_kept_for_the_retention_then_pruned(
    clerk: tuple[BackendApi, str], isolated: tuple[Runtime, Seeder]
) -> None:
    fake, url = clerk
    runtime, seeder = isolated
    days = runtime.settings.directory_delivery_retention_days
    rows(
        seeder,
        "insert into directory_deliveries (svix_id, received_at) values"
        " ('msg_old', now() - make_interval(days => %s + 1)),"
        " ('msg_recent', now() - make_interval(days => %s - 1)) returning 1",
        (days, days),
    )
    run(runtime, fake, url)
    assert rows(seeder, "select svix_id from directory_deliveries order by 1") == [("msg_recent",)]
