"""`POST /webhooks/clerk`: Clerk's organizations and members become ours.

Every event is Clerk-shaped (`cosma.clerk_events`, checked against Clerk's SDK
in test_clerk_shapes.py) and signed by the `svix` library itself; sessions are
checked through `GET /auth/session` with Clerk-shaped tokens, so each case
runs the whole path a deployed request takes.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from werkzeug.test import Client

from cosma import clerk_events
from cosma.server import LocalServer
from shared.runtime import Runtime
from shared.settings import Settings
from shared.warehouse import dataset_id_for
from tests.support.clerk import Webhooks, new_id, svix_secret
from tests.support.identity import TokenIssuer
from tests.support.seed import Seeder


def rows(seeder: Seeder, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(seeder.admin_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def run(seeder: Seeder, sql: str) -> None:
    with psycopg.connect(seeder.admin_url, autocommit=True) as conn:
        conn.execute(sql)


def member_role(seeder: Seeder, org_id: str, user_id: str) -> str | None:
    found = rows(
        seeder, "select role from members where org_id = %s and user_id = %s", (org_id, user_id)
    )
    return found[0][0] if found else None


def records(seeder: Seeder, org_id: str) -> list[tuple[Any, ...]]:
    return rows(
        seeder,
        "select actor, action, resource, outcome, detail, request_id from audit_log"
        " where org_id = %s order by seq",
        (org_id,),
    )


def directory_state(seeder: Seeder, org_id: str) -> tuple[Any, ...]:
    return (
        rows(
            seeder,
            "select id, name, location, suspended_at from organizations where id = %s",
            (org_id,),
        ),
        rows(
            seeder,
            "select user_id, role from members where org_id = %s order by user_id",
            (org_id,),
        ),
        rows(seeder, "select count(*) from audit_log where org_id = %s", (org_id,)),
        rows(
            seeder,
            "select kind, key, version, deleted from directory_objects where org_id = %s"
            " order by 1, 2",
            (org_id,),
        ),
    )


def session(client: Client, tokens: TokenIssuer, org_id: str, user_id: str) -> Any:
    return client.get(
        "/auth/session", headers={"Authorization": f"Bearer {tokens.mint(user_id, org_id)}"}
    )


@pytest.fixture
def ids() -> tuple[str, str]:
    return new_id("org"), new_id("user")


# ---------------------------------------------------------------- the first admin


def test_signed_events_make_the_first_admin_and_removal_takes_it_away(
    webhooks: Webhooks, client: Client, tokens: TokenIssuer, seeder: Seeder, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    assert session(client, tokens, org_id, user_id).status_code == 403
    org = clerk_events.organization(org_id, "Acme Agency")
    assert webhooks.send("organization.created", org) == {
        "status": "applied",
        "type": "organization.created",
    }
    membership = clerk_events.membership(org, user_id, "org:admin")
    webhooks.send("organizationMembership.created", membership)

    answer = session(client, tokens, org_id, user_id)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["role"] == "admin"

    gone = dict(membership, updated_at=membership["updated_at"] + 1)
    webhooks.send("organizationMembership.deleted", gone)
    # This instance forgets the membership at once; others within the cache's 30 s.
    assert session(client, tokens, org_id, user_id).status_code == 403
    assert member_role(seeder, org_id, user_id) is None


def test_another_instance_follows_a_removal_within_the_cache_bound(
    webhooks: Webhooks,
    settings: Settings,
    tokens: TokenIssuer,
    seeder: Seeder,
    ids: tuple[str, str],
) -> None:
    org_id, user_id = ids
    membership = webhooks.member(org_id, user_id, "org:admin")
    now = [dt.datetime.now(dt.UTC).timestamp()]
    other = Runtime(settings, clock=lambda: now[0])
    try:
        instance = Client(LocalServer(other))
        assert session(instance, tokens, org_id, user_id).status_code == 200
        webhooks.send(
            "organizationMembership.deleted",
            dict(membership, updated_at=membership["updated_at"] + 1),
        )
        # Postgres follows at once: the removed member's queries see nothing.
        principal_rows = rows(
            seeder, "select 1 from members where org_id = %s and user_id = %s", (org_id, user_id)
        )
        assert principal_rows == []
        now[0] += 29  # inside the bound, the other instance still has its cached role
        assert session(instance, tokens, org_id, user_id).status_code == 200
        now[0] += 2  # past the 30 s bound
        assert session(instance, tokens, org_id, user_id).status_code == 403
    finally:
        other.close()


# ---------------------------------------------------------------- verification


def _body(org_id: str) -> bytes:
    return json.dumps(
        clerk_events.event("organization.created", clerk_events.organization(org_id, "X"))
    ).encode()


TAMPERS = [
    "no headers",
    "no signature",
    "wrong secret",
    "tampered body",
    "old timestamp",
    "future timestamp",
    "signature without comma",
    "signature not base64",
    "v2 only",
    "body not utf-8",
]


def _tampered(tamper: str, webhook_secret: str, org_id: str) -> tuple[bytes, dict[str, str]]:
    body = _body(org_id)
    at = dt.datetime.now(dt.UTC)
    if tamper == "old timestamp":
        at -= dt.timedelta(minutes=6)
    if tamper == "future timestamp":
        at += dt.timedelta(minutes=6)
    secret = svix_secret() if tamper == "wrong secret" else webhook_secret
    headers = clerk_events.signed(secret, body, at=at)
    if tamper == "tampered body":
        body = body.replace(b'"X"', b'"Y"')
    if tamper == "no signature":
        del headers["svix-signature"]
    if tamper == "no headers":
        headers = {}
    if tamper == "signature without comma":
        headers["svix-signature"] = headers["svix-signature"].replace(",", "")
    if tamper == "signature not base64":
        headers["svix-signature"] = "v1,@@@not-base64@@@"
    if tamper == "v2 only":
        headers["svix-signature"] = headers["svix-signature"].replace("v1,", "v2,")
    if tamper == "body not utf-8":
        body = b"\xff\xfe" + body
        headers = clerk_events.signed(webhook_secret, b"placeholder", at=at) | {
            "svix-signature": headers["svix-signature"]
        }
    return body, headers


@pytest.mark.parametrize("tamper", TAMPERS)
def test_a_bad_or_missing_signature_is_401_and_changes_nothing(
    tamper: str, client: Client, webhook_secret: str, seeder: Seeder
) -> None:
    org_id = new_id("org")
    body, headers = _tampered(tamper, webhook_secret, org_id)
    before = directory_state(seeder, org_id)
    response = client.post("/webhooks/clerk", data=body, headers=headers)
    assert response.status_code == 401, response.get_data(as_text=True)
    problem = response.get_json()
    assert problem["detail"] == "The request could not be authenticated."
    assert directory_state(seeder, org_id) == before
    assert rows(seeder, "select count(*) from organizations where id = %s", (org_id,)) == [(0,)]


@pytest.mark.parametrize("tamper", ["none", *TAMPERS])
def test_verification_decides_as_the_svix_library_does(
    tamper: str, client: Client, webhook_secret: str
) -> None:
    # The function verifies with Standard Webhooks' library, the core that
    # svix.webhooks.Webhook wraps: every case must be decided as svix decides it.
    from svix.webhooks import Webhook, WebhookVerificationError

    body, headers = _tampered(tamper, webhook_secret, new_id("org"))
    try:
        Webhook(webhook_secret).verify(body, headers)
        svix_accepts = True
    except (WebhookVerificationError, ValueError, TypeError):
        svix_accepts = False
    response = client.post("/webhooks/clerk", data=body, headers=headers)
    assert (response.status_code == 200) == svix_accepts, (tamper, response.status_code)
    assert svix_accepts == (tamper == "none")


def test_any_of_several_signatures_and_either_of_two_secrets_verify(
    settings: Settings, tmp_path: Path, seeder: Seeder
) -> None:
    new, old, stranger = svix_secret(), svix_secret(), svix_secret()
    (tmp_path / clerk_events.SECRET_FILE).write_text(f"{new} {old}")
    runtime = Runtime(settings.with_changes(secrets_dir=tmp_path))
    try:
        client = Client(LocalServer(runtime))
        hooks = Webhooks(client, new)
        first, second, third = new_id("org"), new_id("org"), new_id("org")
        assert hooks.post(json.loads(_body(first)), secret=new).status_code == 200
        assert hooks.post(json.loads(_body(second)), secret=old).status_code == 200
        assert hooks.post(json.loads(_body(third)), secret=stranger).status_code == 401
        # During Clerk's rotation Svix signs with both secrets: one entry matching is enough.
        body = _body(third)
        mine = clerk_events.signed(old, body, msg_id="msg_rotation")
        theirs = clerk_events.signed(stranger, body, msg_id="msg_rotation", at=None)
        headers = dict(
            mine, **{"svix-signature": f"{theirs['svix-signature']} {mine['svix-signature']}"}
        )
        assert client.post("/webhooks/clerk", data=body, headers=headers).status_code == 200
        found = rows(
            seeder,
            "select id from organizations where id = any(%s) order by id",
            ([first, second, third],),
        )
        assert found == sorted([(first,), (second,), (third,)])
    finally:
        runtime.close()


def test_a_missing_signing_secret_is_503_so_svix_retries(
    settings: Settings, tmp_path: Path
) -> None:
    runtime = Runtime(settings.with_changes(secrets_dir=tmp_path / "empty"))
    try:
        client = Client(LocalServer(runtime))
        body = _body(new_id("org"))
        headers = clerk_events.signed(svix_secret(), body)
        assert client.post("/webhooks/clerk", data=body, headers=headers).status_code == 503
    finally:
        runtime.close()


# ---------------------------------------------------------------- once per svix-id


def test_a_replay_answers_200_and_changes_nothing(
    webhooks: Webhooks, seeder: Seeder, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    org = clerk_events.organization(org_id, "Acme")
    webhooks.send("organization.created", org)
    event = clerk_events.event(
        "organizationMembership.created", clerk_events.membership(org, user_id, "org:admin")
    )
    assert webhooks.post(event, msg_id="msg_once").get_json()["status"] == "applied"
    removal = clerk_events.membership(
        org, user_id, "org:admin", updated_at=clerk_events.now_ms() + 5
    )
    webhooks.send("organizationMembership.deleted", removal)
    before = directory_state(seeder, org_id)
    # Svix's retry: the same id and body, signed again at a later time.
    again = webhooks.post(event, msg_id="msg_once", at=dt.datetime.now(dt.UTC))
    assert again.status_code == 200
    assert again.get_json()["status"] == "replayed"
    assert directory_state(seeder, org_id) == before
    assert member_role(seeder, org_id, user_id) is None


def test_concurrent_deliveries_of_one_id_apply_once(
    webhooks: Webhooks,
    webhook_secret: str,
    server: LocalServer,
    seeder: Seeder,
    ids: tuple[str, str],
) -> None:
    org_id, user_id = ids
    org = clerk_events.organization(org_id, "Acme")
    webhooks.send("organization.created", org)
    body = json.dumps(
        clerk_events.event(
            "organizationMembership.created", clerk_events.membership(org, user_id, "org:editor")
        )
    ).encode()
    headers = clerk_events.signed(webhook_secret, body, msg_id=f"msg_{user_id}")
    answers: list[str] = []

    def deliver() -> None:
        response = Client(server).post("/webhooks/clerk", data=body, headers=headers)
        answers.append(response.get_json()["status"])

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == ["applied", "replayed", "replayed", "replayed"]
    applied = [r for r in records(seeder, org_id) if r[1] == "clerk.organizationMembership.created"]
    assert len(applied) == 1


def test_a_failed_application_records_no_id_so_the_retry_applies(
    webhooks: Webhooks, seeder: Seeder, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    org = clerk_events.organization(org_id, "Acme")
    webhooks.send("organization.created", org)
    event = clerk_events.event(
        "organizationMembership.created", clerk_events.membership(org, user_id, "org:admin")
    )
    # A fault in the middle: the directory cannot write its audit record.
    run(seeder, "revoke insert on audit_log from cosma_directory")
    try:
        failed = webhooks.post(event, msg_id=f"msg_fault_{user_id}")
    finally:
        run(seeder, "grant insert on audit_log to cosma_directory")
    assert failed.status_code >= 400
    assert member_role(seeder, org_id, user_id) is None
    assert (
        rows(
            seeder,
            "select 1 from directory_deliveries where svix_id = %s",
            (f"msg_fault_{user_id}",),
        )
        == []
    )
    retried = webhooks.post(event, msg_id=f"msg_fault_{user_id}")
    assert retried.get_json()["status"] == "applied"
    assert member_role(seeder, org_id, user_id) == "admin"


def test_other_event_types_answer_200_and_are_ignored(webhooks: Webhooks, seeder: Seeder) -> None:
    user_id = new_id("user")
    for kind in ("user.created", "session.created", "organizationInvitation.created"):
        answer = webhooks.send(
            kind, {"id": user_id, "object": "user"}, msg_id=f"msg_{kind}_{user_id}"
        )
        assert answer == {"status": "ignored", "type": kind}
        assert (
            rows(
                seeder,
                "select 1 from directory_deliveries where svix_id = %s",
                (f"msg_{kind}_{user_id}",),
            )
            == []
        )


def test_a_signed_event_that_is_not_clerk_shaped_is_422_and_changes_nothing(
    webhooks: Webhooks, seeder: Seeder
) -> None:
    org_id = new_id("org")
    bad = clerk_events.event("organization.created", {"id": org_id, "name": "X"})  # no updated_at
    response = webhooks.post(bad)
    assert response.status_code == 422
    assert rows(seeder, "select 1 from organizations where id = %s", (org_id,)) == []


# ---------------------------------------------------------------- order


def test_out_of_order_updates_keep_the_newest(
    webhooks: Webhooks, seeder: Seeder, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    t = clerk_events.now_ms()
    org = clerk_events.organization(org_id, "New name", updated_at=t + 20)
    old_org = clerk_events.organization(org_id, "Old name", updated_at=t)
    # The update arrives before the creation it follows.
    assert webhooks.send("organization.updated", org)["status"] == "applied"
    assert webhooks.send("organization.created", old_org)["status"] == "stale"
    assert rows(seeder, "select name from organizations where id = %s", (org_id,)) == [
        ("New name",)
    ]

    editor = clerk_events.membership(org, user_id, "org:editor", updated_at=t + 30)
    admin = clerk_events.membership(org, user_id, "org:admin", updated_at=t + 10)
    webhooks.send("organizationMembership.updated", editor)
    assert webhooks.send("organizationMembership.created", admin)["status"] == "stale"
    assert member_role(seeder, org_id, user_id) == "editor"


def test_a_deletion_leaves_a_tombstone_that_a_late_creation_cannot_pass(
    webhooks: Webhooks, client: Client, tokens: TokenIssuer, seeder: Seeder, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    t = clerk_events.now_ms()
    org = clerk_events.organization(org_id, "Acme", updated_at=t)
    webhooks.send("organization.created", org)
    created = clerk_events.membership(org, user_id, "org:admin", updated_at=t + 10)
    # The deletion overtakes the creation.
    webhooks.send("organizationMembership.deleted", created, timestamp=t + 20)
    assert webhooks.send("organizationMembership.created", created)["status"] == "stale"
    assert session(client, tokens, org_id, user_id).status_code == 403
    # Added again later in Clerk: a newer membership passes the tombstone.
    again = clerk_events.membership(org, user_id, "org:viewer", updated_at=t + 30)
    assert webhooks.send("organizationMembership.created", again)["status"] == "applied"
    assert session(client, tokens, org_id, user_id).get_json()["role"] == "viewer"


def test_a_membership_before_its_organization_creates_the_organization(
    webhooks: Webhooks, client: Client, tokens: TokenIssuer, seeder: Seeder, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    org = clerk_events.organization(org_id, "Early", data_location="EU")
    webhooks.send(
        "organizationMembership.created", clerk_events.membership(org, user_id, "org:admin")
    )
    assert rows(seeder, "select name, location from organizations where id = %s", (org_id,)) == [
        ("Early", "EU")
    ]
    assert session(client, tokens, org_id, user_id).get_json()["role"] == "admin"
    # Its own (older) creation event then changes nothing.
    assert webhooks.send("organization.created", org)["status"] == "stale"


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("clerk_role", "ours"),
    [
        ("org:admin", "admin"),
        ("org:editor", "editor"),
        ("org:viewer", "viewer"),
        ("org:member", "viewer"),
    ],
)
def test_the_default_role_map(
    clerk_role: str,
    ours: str,
    webhooks: Webhooks,
    client: Client,
    tokens: TokenIssuer,
    ids: tuple[str, str],
) -> None:
    org_id, user_id = ids
    webhooks.member(org_id, user_id, clerk_role)
    assert session(client, tokens, org_id, user_id).get_json()["role"] == ours


def test_an_unmapped_role_gives_no_access_and_is_audited(
    webhooks: Webhooks, client: Client, tokens: TokenIssuer, seeder: Seeder, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    membership = webhooks.member(org_id, user_id, "org:admin")
    assert session(client, tokens, org_id, user_id).status_code == 200
    demoted = dict(membership, role="org:billing_manager", updated_at=membership["updated_at"] + 1)
    webhooks.send("organizationMembership.updated", demoted)
    assert member_role(seeder, org_id, user_id) is None
    assert session(client, tokens, org_id, user_id).status_code == 403
    (record,) = [
        r for r in records(seeder, org_id) if r[1] == "clerk.organizationMembership.updated"
    ]
    actor, _, resource, outcome, detail, _ = record
    assert (actor, outcome) == ("clerk", "denied")
    assert resource == f"/organizations/{org_id}/members/{user_id}"
    assert "role=org:billing_manager unmapped: no access" in detail


def test_the_role_map_is_a_setting(
    settings: Settings, webhook_secret: str, tokens: TokenIssuer, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    mapped = settings.with_changes(clerk_role_map={"org:account_manager": "editor"})
    runtime = Runtime(mapped)
    try:
        client = Client(LocalServer(runtime))
        hooks = Webhooks(client, webhook_secret)
        hooks.member(org_id, user_id, "org:account_manager")
        assert session(client, tokens, org_id, user_id).get_json()["role"] == "editor"
        # org:admin is not in this map: no access.
        other = new_id("user")
        org = clerk_events.organization(org_id, "Acme")
        hooks.send(
            "organizationMembership.created", clerk_events.membership(org, other, "org:admin")
        )
        assert session(client, tokens, org_id, other).status_code == 403
    finally:
        runtime.close()


def test_role_changes_take_effect_at_once_in_postgres_and_on_this_instance(
    webhooks: Webhooks, client: Client, tokens: TokenIssuer, seeder: Seeder, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    membership = webhooks.member(org_id, user_id, "org:admin")
    headers = {"Authorization": f"Bearer {tokens.mint(user_id, org_id)}"}
    created = client.post("/clients", json={"name": "Acme"}, headers=headers)
    assert created.status_code == 201
    viewer = dict(membership, role="org:viewer", updated_at=membership["updated_at"] + 1)
    webhooks.send("organizationMembership.updated", viewer)
    assert session(client, tokens, org_id, user_id).get_json()["role"] == "viewer"
    assert client.post("/clients", json={"name": "Other"}, headers=headers).status_code == 403
    assert client.get("/clients", headers=headers).get_json() == {"clients": []}


# ---------------------------------------------------------------- data location


def test_data_location_from_public_metadata_until_a_dataset_exists(
    webhooks: Webhooks, client: Client, tokens: TokenIssuer, seeder: Seeder, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    t = clerk_events.now_ms()
    webhooks.member(org_id, user_id, data_location="EU")
    assert rows(seeder, "select location from organizations where id = %s", (org_id,)) == [("EU",)]
    # No dataset yet: the location may still change.
    webhooks.send(
        "organization.updated",
        clerk_events.organization(org_id, "Acme", data_location="US", updated_at=t + 10),
    )
    assert rows(seeder, "select location from organizations where id = %s", (org_id,)) == [("US",)]

    headers = {"Authorization": f"Bearer {tokens.mint(user_id, org_id)}"}
    client_id = client.post("/clients", json={"name": "Acme"}, headers=headers).get_json()["id"]
    provisioned = client.post(
        "/datasets", json={"client_id": client_id, "platform": "meta"}, headers=headers
    )
    assert provisioned.get_json()["location"] == "US"

    answer = webhooks.send(
        "organization.updated",
        clerk_events.organization(org_id, "Acme Europe", data_location="EU", updated_at=t + 20),
    )
    assert answer["status"] == "applied"
    assert rows(seeder, "select name, location from organizations where id = %s", (org_id,)) == [
        ("Acme Europe", "US")
    ]
    (refused,) = [r for r in records(seeder, org_id) if r[3] == "rejected"]
    assert refused[1] == "clerk.organization.updated"
    assert "location US->EU refused: datasets exist" in refused[4]


def test_an_absent_or_invalid_location_uses_the_default(
    settings: Settings, webhook_secret: str, seeder: Seeder
) -> None:
    runtime = Runtime(settings.with_changes(default_data_location="EU"))
    try:
        hooks = Webhooks(Client(LocalServer(runtime)), webhook_secret)
        plain, invalid = new_id("org"), new_id("org")
        hooks.send("organization.created", clerk_events.organization(plain, "A"))
        hooks.send(
            "organization.created", clerk_events.organization(invalid, "B", data_location="Mars")
        )
    finally:
        runtime.close()
    assert rows(
        seeder,
        "select id, location from organizations where id = any(%s) order by id",
        ([plain, invalid],),
    ) == sorted([(plain, "EU"), (invalid, "EU")])
    (record,) = records(seeder, invalid)
    assert record[3] == "rejected" and "data_location is not US or EU" in record[4]


# ---------------------------------------------------------------- deletions


def test_organization_deleted_suspends_at_once_and_erases_its_clients(
    webhooks: Webhooks,
    client: Client,
    tokens: TokenIssuer,
    seeder: Seeder,
    runtime: Runtime,
    ids: tuple[str, str],
) -> None:
    org_id, user_id = ids
    webhooks.member(org_id, user_id, "org:admin")
    headers = {"Authorization": f"Bearer {tokens.mint(user_id, org_id)}"}
    made = [
        client.post("/clients", json={"name": n}, headers=headers).get_json()["id"]
        for n in ("A", "B")
    ]
    for client_id in made:
        assert (
            client.post(
                "/datasets", json={"client_id": client_id, "platform": "meta"}, headers=headers
            ).status_code
            == 200
        )
    connection = rows(
        seeder,
        "insert into connections (org_id, client_id, platform, created_by, token_ciphertext,"
        " key_version) values (%s, %s, 'meta', 'seed', 'sealed', '1') returning id::text",
        (org_id, made[0]),
    )[0][0]
    warehouse_dir = runtime.settings.warehouse_dir
    assert warehouse_dir is not None
    files = [warehouse_dir / f"{dataset_id_for('test', c, 'meta')}.duckdb" for c in made]
    assert all(f.exists() for f in files)

    assert (
        webhooks.send("organization.deleted", clerk_events.deleted("organization", org_id))[
            "status"
        ]
        == "applied"
    )

    assert session(client, tokens, org_id, user_id).status_code == 403
    assert rows(
        seeder, "select suspended_at is not null from organizations where id = %s", (org_id,)
    ) == [(True,)]
    assert rows(seeder, "select 1 from members where org_id = %s", (org_id,)) == []
    assert rows(seeder, "select 1 from clients where org_id = %s", (org_id,)) == []
    assert rows(seeder, "select 1 from connections where id = %s", (connection,)) == []
    assert not any(f.exists() for f in files)
    actions = [(r[0], r[1]) for r in records(seeder, org_id)]
    assert ("clerk", "clerk.organization.deleted") in actions
    assert actions.count(("clerk", "clients.erase")) == 2
    # Nothing brings it back.
    late = clerk_events.membership(
        clerk_events.organization(org_id, "Again"), new_id("user"), "org:admin"
    )
    assert webhooks.send("organizationMembership.created", late)["status"] == "stale"
    assert (
        webhooks.send("organization.updated", clerk_events.organization(org_id, "Again"))["status"]
        == "stale"
    )


def test_a_deleted_organization_is_not_synced_while_its_erasure_waits(
    isolated: tuple[Runtime, Seeder], webhook_secret: str
) -> None:
    from shared.directory import erasure
    from shared.sync import leases

    runtime, seeder = isolated
    deleted, other = seeder.org(), seeder.org()
    gone = seeder.connection(deleted, deleted.clients[0])
    kept = seeder.connection(other, other.clients[0])
    # No erasure time at all: the event suspends, the reconcile erases later.
    waiting = Runtime(runtime.settings.with_changes(directory_erase_budget_s=0.0))
    try:
        hooks = Webhooks(Client(LocalServer(waiting)), webhook_secret)
        hooks.send("organization.deleted", clerk_events.deleted("organization", deleted.id))
    finally:
        waiting.close()
    assert rows(seeder, "select 1 from members where org_id = %s", (deleted.id,)) == []
    assert len(rows(seeder, "select 1 from clients where org_id = %s", (deleted.id,))) == 2
    taken = leases.take(runtime.worker_db, "test", limit=10, lease_s=60)
    assert [lease.connection_id for lease in taken] == [kept]
    # The erasure the reconcile runs: the same path as DELETE /clients/{id}.
    done = erasure.erase_clients(
        runtime, deleted.id, deadline=runtime.clock() + 60, request_id="t", via="reconcile"
    )
    assert (done.clients, done.left) == (2, 0)
    assert rows(seeder, "select 1 from connections where id = %s", (gone,)) == []
    assert rows(seeder, "select 1 from clients where org_id = %s", (deleted.id,)) == []
    erased = [r for r in records(seeder, deleted.id) if r[1] == "clients.erase"]
    assert len(erased) == 2 and all(r[0] == "clerk" for r in erased)
    assert any("connections=1" in r[4] for r in erased)


def test_user_deleted_leaves_every_organization_with_its_assignments(
    webhooks: Webhooks, seeder: Seeder
) -> None:
    first, second = seeder.org(), seeder.org()
    user_id = new_id("user")
    for org in (first, second):
        clerk_org = clerk_events.organization(org.id, "Agency")
        webhooks.send(
            "organizationMembership.created",
            clerk_events.membership(clerk_org, user_id, "org:editor"),
        )
        seeder.assign(org, user_id, org.clients[0])
    webhooks.send("user.deleted", clerk_events.deleted("user", user_id))
    assert rows(seeder, "select 1 from members where user_id = %s", (user_id,)) == []
    assert rows(seeder, "select 1 from client_assignments where user_id = %s", (user_id,)) == []
    for org in (first, second):
        (record,) = [r for r in records(seeder, org.id) if r[1] == "clerk.user.deleted"]
        assert record[0] == "clerk" and record[2] == f"/organizations/{org.id}/members/{user_id}"
        # The other members stay.
        assert member_role(seeder, org.id, org.user("admin")) == "admin"
    late = clerk_events.membership(
        clerk_events.organization(first.id, "Agency"), user_id, "org:admin"
    )
    assert webhooks.send("organizationMembership.created", late)["status"] == "stale"


# ---------------------------------------------------------------- the trail


def test_each_applied_event_writes_one_record_without_names_or_emails(
    webhooks: Webhooks, seeder: Seeder, ids: tuple[str, str]
) -> None:
    org_id, user_id = ids
    t = clerk_events.now_ms()
    org = clerk_events.organization(org_id, "Secret Agency Name", updated_at=t)
    membership = clerk_events.membership(org, user_id, "org:admin", updated_at=t)
    sent = [
        ("organization.created", org),
        ("organizationMembership.created", membership),
        ("organizationMembership.updated", dict(membership, role="org:editor", updated_at=t + 1)),
        ("organization.updated", dict(org, updated_at=t + 2)),
        ("organizationMembership.deleted", dict(membership, updated_at=t + 3)),
    ]
    for i, (kind, data) in enumerate(sent):
        webhooks.send(kind, data, msg_id=f"msg_trail_{i}_{user_id}")
    trail = records(seeder, org_id)
    assert [(r[0], r[1]) for r in trail] == [("clerk", f"clerk.{kind}") for kind, _ in sent]
    assert [r[5] for r in trail] == [f"msg_trail_{i}_{user_id}" for i in range(len(sent))]
    identifier = membership["public_user_data"]["identifier"]
    for record in trail:
        text = " ".join(str(v) for v in record)
        assert identifier not in text and "Secret Agency" not in text and "Local" not in text
    # Nor anywhere in the directory's tables.
    stored = rows(
        seeder,
        "select row_to_json(m)::text from members m where org_id = %s"
        " union all select row_to_json(d)::text from directory_objects d where org_id = %s",
        (org_id, org_id),
    )
    assert not any(identifier in r[0] or "Local" in r[0] for r in stored)
