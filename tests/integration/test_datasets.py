"""The datasets function end to end: real Postgres with RLS, the DuckDB warehouse,
tokens from the test issuer. Authorization always comes before any warehouse call."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest
from werkzeug.test import Client

from cosma.server import LocalServer
from shared import errors, provisioning
from shared.audit import RequestAudit
from shared.policy import access_client
from shared.runtime import Runtime
from shared.settings import Settings
from shared.tenancy import tenant
from shared.warehouse import dataset_id_for
from tests.support.identity import TokenIssuer
from tests.support.seed import Org, Seeder
from tests.support.warehouse import daily_rows, days

JAN = dt.date(2024, 1, 1)


def dataset_file(runtime: Runtime, client_id: str, platform: str) -> Path:
    dataset_id = dataset_id_for(runtime.settings.env, client_id, platform)
    assert runtime.settings.warehouse_dir is not None
    return runtime.settings.warehouse_dir / f"{dataset_id}.duckdb"


def admin_rows(seeder: Seeder, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with psycopg.connect(seeder.admin_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def audit_count(seeder: Seeder, org: Org, action: str) -> int:
    rows = admin_rows(
        seeder, "select count(*) from audit_log where org_id = %s and action = %s", (org.id, action)
    )
    return int(rows[0][0])


def post(client: Client, tokens: TokenIssuer, org: Org, role: str, body: Any) -> Any:
    return client.post("/datasets", json=body, headers=tokens.header(org.principal(org.user(role))))


def test_admin_provisions_idempotently_in_the_org_location(
    client: Client, tokens: TokenIssuer, seeder: Seeder, runtime: Runtime
) -> None:
    org = seeder.org(location="EU")
    body = {"client_id": org.clients[1], "platform": "meta"}
    first = post(client, tokens, org, "admin", body)
    assert first.status_code == 200, first.get_data(as_text=True)
    record = first.get_json()
    assert record["dataset_id"] == dataset_id_for("test", org.clients[1], "meta")
    assert record["location"] == "EU" and record["status"] == "ready"
    assert dataset_file(runtime, org.clients[1], "meta").exists()
    config = runtime.warehouse.dataset_config(record["dataset_id"])  # type: ignore[attr-defined]
    assert config["location"] == "EU"
    assert config["labels"]["client"] == org.clients[1]
    assert "Client" not in str(config)  # no customer name anywhere
    again = post(client, tokens, org, "admin", body)
    assert again.status_code == 200 and again.get_json()["dataset_id"] == record["dataset_id"]
    rows = admin_rows(
        seeder, "select dataset_id, location from datasets where org_id = %s", (org.id,)
    )
    assert rows == [(record["dataset_id"], "EU")]
    assert audit_count(seeder, org, "datasets.provision") == 2


@pytest.mark.parametrize("role, status", [("editor", 403), ("viewer", 403)])
def test_only_admins_provision_over_http(
    client: Client, tokens: TokenIssuer, seeder: Seeder, runtime: Runtime, role: str, status: int
) -> None:
    org = seeder.org()
    response = post(client, tokens, org, role, {"client_id": org.clients[0], "platform": "meta"})
    assert response.status_code == status
    assert not dataset_file(runtime, org.clients[0], "meta").exists()
    assert audit_count(seeder, org, "datasets.provision") == 1  # the denial is recorded


def test_another_orgs_client_is_not_found_and_untouched(
    client: Client, tokens: TokenIssuer, seeder: Seeder, runtime: Runtime
) -> None:
    mine, theirs = seeder.org(), seeder.org()
    response = post(
        client, tokens, mine, "admin", {"client_id": theirs.clients[0], "platform": "meta"}
    )
    assert response.status_code == 404
    assert not dataset_file(runtime, theirs.clients[0], "meta").exists()
    listing = client.get(
        f"/datasets?client_id={theirs.clients[0]}",
        headers=tokens.header(mine.principal(mine.user("admin"))),
    )
    assert listing.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"client_id": "not-a-uuid", "platform": "meta"},
        {"platform": "meta"},
        {"client_id": "{c}", "platform": "myspace"},
        {"client_id": "{c}", "platform": "meta", "dataset_id": "cosma_prod_x_meta"},
        {"client_id": "{c}", "platform": "meta'; drop table datasets; --"},
    ],
)
def test_bad_input_is_rejected_and_nothing_changes(
    client: Client, tokens: TokenIssuer, seeder: Seeder, runtime: Runtime, body: dict[str, Any]
) -> None:
    org = seeder.org()
    body = {k: v.replace("{c}", org.clients[0]) for k, v in body.items()}
    response = post(client, tokens, org, "admin", body)
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert admin_rows(seeder, "select 1 from datasets where org_id = %s", (org.id,)) == []


def test_unauthenticated_requests_never_reach_the_warehouse(
    client: Client, seeder: Seeder, runtime: Runtime
) -> None:
    org = seeder.org()
    response = client.post("/datasets", json={"client_id": org.clients[0], "platform": "meta"})
    assert response.status_code == 401
    assert not dataset_file(runtime, org.clients[0], "meta").exists()


def test_the_oauth_callback_path_lets_editors_provision_assigned_clients(
    seeder: Seeder, runtime: Runtime
) -> None:
    # The callback checks "connect" on the client, then ensures the dataset in the
    # same transaction; `POST /datasets` itself stays admin-only ("manage").
    org = seeder.org()
    editor = org.principal(org.user("editor"))
    audit = RequestAudit(lambda: runtime.db, action="datasets.provision", request_id="r" * 8)
    with pytest.raises(errors.Forbidden):
        provisioning.provision(runtime, editor, audit, org.clients[0], "google_ads")
    with tenant(runtime.db, editor) as tx:
        allowed = access_client(tx, editor, "connect", org.clients[0])
        record = provisioning.ensure_dataset(runtime, tx, editor, allowed, "google_ads")
    assert record.status == "ready"
    with pytest.raises(errors.NotFound), tenant(runtime.db, editor) as tx:
        access_client(tx, editor, "connect", org.clients[1])
    assert not dataset_file(runtime, org.clients[1], "google_ads").exists()
    viewer = org.principal(org.user("viewer"))
    with pytest.raises(errors.Forbidden), tenant(runtime.db, viewer) as tx:
        access_client(tx, viewer, "connect", org.clients[0])


def test_list_shows_the_clients_datasets_to_assigned_members(
    client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org = seeder.org()
    for platform in ("tiktok", "meta"):
        assert (
            post(
                client, tokens, org, "admin", {"client_id": org.clients[0], "platform": platform}
            ).status_code
            == 200
        )
    viewer = tokens.header(org.principal(org.user("viewer")))
    listing = client.get(f"/datasets?client_id={org.clients[0]}", headers=viewer)
    assert listing.status_code == 200
    assert [d["platform"] for d in listing.get_json()["datasets"]] == ["meta", "tiktok"]
    assert client.get(f"/datasets?client_id={org.clients[1]}", headers=viewer).status_code == 404
    assert client.get("/datasets?client_id=x&extra=1", headers=viewer).status_code == 422


def test_drop_removes_the_dataset_and_its_record(
    client: Client, tokens: TokenIssuer, seeder: Seeder, runtime: Runtime
) -> None:
    org = seeder.org()
    c = org.clients[0]
    post(client, tokens, org, "admin", {"client_id": c, "platform": "linkedin"})
    editor = tokens.header(org.principal(org.user("editor")))
    assert client.delete(f"/datasets/{c}/linkedin", headers=editor).status_code == 403
    assert dataset_file(runtime, c, "linkedin").exists()
    admin = tokens.header(org.principal(org.user("admin")))
    assert client.delete(f"/datasets/{c}/linkedin", headers=admin).status_code == 204
    assert not dataset_file(runtime, c, "linkedin").exists()
    assert admin_rows(seeder, "select 1 from datasets where client_id = %s", (c,)) == []
    assert client.delete(f"/datasets/{c}/linkedin", headers=admin).status_code == 404
    assert client.delete(f"/datasets/{c}/myspace", headers=admin).status_code == 422


def test_erasure_leaves_nothing_of_the_client_but_its_audit_trail(
    client: Client, tokens: TokenIssuer, seeder: Seeder, runtime: Runtime
) -> None:
    org = seeder.org()
    gone, kept = org.clients
    for c in (gone, kept):
        post(client, tokens, org, "admin", {"client_id": c, "platform": "sandbox"})
    connection = seeder.connection(org, gone)
    admin_rows(
        seeder,
        "update connections set token_ciphertext = %s, key_version = 'k1'"
        " where id = %s returning 1",
        (b"ciphertext-of-a-refresh-token", connection),
    )
    dataset_id = dataset_id_for("test", gone, "sandbox")
    runtime.warehouse.replace_slice(
        dataset_id, daily_rows("a1", days(JAN, 2)), "a1", JAN, JAN + dt.timedelta(1)
    )
    audit_before = admin_rows(
        seeder, "select count(*) from audit_log where org_id = %s", (org.id,)
    )[0][0]

    editor = tokens.header(org.principal(org.user("editor")))
    assert client.delete(f"/clients/{gone}", headers=editor).status_code == 403
    assert dataset_file(runtime, gone, "sandbox").exists()

    admin = tokens.header(org.principal(org.user("admin")))
    response = client.delete(f"/clients/{gone}", headers=admin)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert {k: v for k, v in body.items() if k != "connections"} == {
        "client_id": gone,
        "datasets_dropped": 1,
        "connections_disconnected": 1,
        "grants_revoked": 0,
        "grants_not_revoked": 1,
    }
    # That ciphertext opens under no key: its grant cannot be revoked from here,
    # and the answer says so rather than calling it revoked.
    [disconnected] = body["connections"]
    assert disconnected["id"] == connection
    assert disconnected["revocation"]["revoked"] is False
    assert disconnected["revocation"]["reason"] == "credential_unreadable"
    assert not dataset_file(runtime, gone, "sandbox").exists()
    assert dataset_file(runtime, kept, "sandbox").exists()
    for table in ("clients", "connections", "datasets"):
        column = "id" if table == "clients" else "client_id"
        assert admin_rows(seeder, f"select 1 from {table} where {column} = %s", (gone,)) == []
    assert (
        admin_rows(
            seeder,
            "select 1 from connections where token_ciphertext is not null and client_id = %s",
            (gone,),
        )
        == []
    )
    audit_after = admin_rows(seeder, "select count(*) from audit_log where org_id = %s", (org.id,))[
        0
    ][0]
    assert audit_after == audit_before + 2  # the refused attempt and the erasure; none deleted
    assert audit_count(seeder, org, "clients.erase") == 2
    assert client.delete(f"/clients/{gone}", headers=admin).status_code == 404


def test_export_writes_the_clients_rows_as_parquet(
    client: Client, tokens: TokenIssuer, seeder: Seeder, runtime: Runtime
) -> None:
    org = seeder.org()
    c = org.clients[0]
    post(client, tokens, org, "admin", {"client_id": c, "platform": "meta"})
    dataset_id = dataset_id_for("test", c, "meta")
    runtime.warehouse.replace_slice(
        dataset_id, daily_rows("a1", days(JAN, 3)), "a1", JAN, JAN + dt.timedelta(2)
    )
    viewer = tokens.header(org.principal(org.user("viewer")))
    assert client.post(f"/clients/{c}/export", headers=viewer).status_code == 403
    admin = tokens.header(org.principal(org.user("admin")))
    response = client.post(f"/clients/{c}/export", headers=admin)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    (obj,) = body["objects"]
    assert obj["name"] == f"{dataset_id}-000000000000.parquet" and obj["rows"] == 3
    assert body["rows"] == 3 and body["manifest"]["name"] == "manifest.json"
    # The audit record names the export.
    (resource,) = admin_rows(
        seeder,
        "select resource from audit_log where org_id = %s and action = 'clients.export'"
        " and outcome = 'ok'",
        (org.id,),
    )[0]
    assert resource == f"/clients/{c}/exports/{body['export_id']}"
    # The link, with the admin's token, gives the object whose sha256 the answer lists.
    path = obj["url"].removeprefix(runtime.settings.public_url)
    download = client.get(path, headers=admin)
    assert download.status_code == 200, download.get_data(as_text=True)
    data = download.get_data()
    assert hashlib.sha256(data).hexdigest() == obj["sha256"] and len(data) == obj["size"]
    assert pq.read_table(io.BytesIO(data)).num_rows == 3
    manifest = client.get(
        body["manifest"]["url"].removeprefix(runtime.settings.public_url), headers=admin
    )
    assert hashlib.sha256(manifest.get_data()).hexdigest() == body["manifest"]["sha256"]
    # Editors and viewers may not download; an id of another shape is no export.
    assert client.get(path, headers=viewer).status_code == 403
    assert (
        client.get(
            f"/clients/{c}/exports/20260101T000000000000Z-00000000/x", headers=admin
        ).status_code
        == 404
    )
    assert audit_count(seeder, org, "clients.export_download") == 4


def test_an_export_link_is_refused_after_it_expires(
    settings: Settings, tokens: TokenIssuer, seeder: Seeder, runtime: Runtime
) -> None:
    now = [time.time()]
    clocked = Runtime(runtime.settings.with_changes(export_link_ttl_s=60), clock=lambda: now[0])
    try:
        client = Client(LocalServer(clocked))
        org = seeder.org()
        c = org.clients[0]
        admin = tokens.header(org.principal(org.user("admin")))
        assert (
            post(client, tokens, org, "admin", {"client_id": c, "platform": "meta"}).status_code
            == 200
        )
        body = client.post(f"/clients/{c}/export", headers=admin).get_json()
        path = body["manifest"]["url"].removeprefix(clocked.settings.public_url)
        now[0] += 59
        assert client.get(path, headers=admin).status_code == 200
        now[0] += 1
        refused = client.get(path, headers=admin)
        assert refused.status_code == 410
        assert refused.get_json()["detail"] == "The download link has expired."
    finally:
        clocked.close()
