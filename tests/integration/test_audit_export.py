"""`GET /audit`: an organization's audit records for its admins, with the chain."""

from __future__ import annotations

import hashlib
import itertools

from werkzeug.test import Client

from tests.support.identity import TokenIssuer
from tests.support.seed import Org, Seeder


def _export(client: Client, tokens: TokenIssuer, org: Org, role: str, query: str = "") -> object:
    return client.get(f"/audit{query}", headers=tokens.header(org, org.user(role)))


def _touch(client: Client, tokens: TokenIssuer, org: Org, times: int) -> None:
    for _ in range(times):
        assert (
            client.get("/auth/session", headers=tokens.header(org, org.user("editor"))).status_code
            == 200
        )


def test_admin_exports_its_records_in_chain_order(
    client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org, other = seeder.org(), seeder.org()
    _touch(client, tokens, org, 3)
    _touch(client, tokens, other, 2)
    response = _export(client, tokens, org, "admin")
    assert response.status_code == 200, response.get_data(as_text=True)
    records = response.get_json()["records"]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert {r["actor"] for r in records} == {org.user("editor")}
    assert records[0]["prev_hash"] is None
    for previous, record in itertools.pairwise(records):
        assert record["prev_hash"] == previous["hash"]
        assert len(bytes.fromhex(record["hash"])) == hashlib.sha256().digest_size
    assert response.get_json()["next_after_seq"] is None


def test_pages_follow_the_sequence(client: Client, tokens: TokenIssuer, seeder: Seeder) -> None:
    org = seeder.org()
    _touch(client, tokens, org, 5)
    first = _export(client, tokens, org, "admin", "?limit=2").get_json()
    assert [r["seq"] for r in first["records"]] == [1, 2] and first["next_after_seq"] == 2
    second = _export(client, tokens, org, "admin", "?limit=2&after_seq=2").get_json()
    assert [r["seq"] for r in second["records"]] == [3, 4]


def test_time_window(client: Client, tokens: TokenIssuer, seeder: Seeder) -> None:
    org = seeder.org()
    _touch(client, tokens, org, 2)
    records = _export(client, tokens, org, "admin").get_json()["records"]
    since = records[1]["at"].replace("+", "%2B")
    later = _export(client, tokens, org, "admin", f"?since={since}").get_json()["records"]
    # 3 is the first export's own record: every request leaves one.
    assert [(r["seq"], r["action"]) for r in later] == [(2, "auth.session"), (3, "audit.export")]
    earlier = _export(client, tokens, org, "admin", f"?until={since}").get_json()["records"]
    assert [r["seq"] for r in earlier] == [1]


def test_editors_and_viewers_may_not_export(
    client: Client, tokens: TokenIssuer, seeder: Seeder
) -> None:
    org = seeder.org()
    for role in ("editor", "viewer"):
        response = _export(client, tokens, org, role)
        assert response.status_code == 403
        assert response.content_type == "application/problem+json"


def test_bad_paging_is_422(client: Client, tokens: TokenIssuer, seeder: Seeder) -> None:
    org = seeder.org()
    for query in ("?limit=0", "?limit=10001", "?after_seq=-1", "?since=yesterday", "?org_id=x"):
        assert _export(client, tokens, org, "admin", query).status_code == 422, query
