"""`POST /query` end to end on DuckDB: real Postgres, real provisioning, the served
function; answers compared with a plain-Python reference over the same rows."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from werkzeug.test import Client

from cosma.server import LocalServer
from shared.runtime import Runtime
from tests.support.identity import TokenIssuer
from tests.support.reporting import Fixture, jsonable, load, reference, same
from tests.support.seed import Org, Seeder

PLATFORMS = ("meta", "tiktok")


@pytest.fixture(scope="module")
def data(runtime: Runtime, seeder: Seeder) -> Iterator[tuple[Fixture, Fixture, Fixture]]:
    """Client 0 of an org (two platforms), its sibling client 1 and another org's
    client, each with different rows, so any leak shows in the numbers."""
    org = seeder.org()
    other_org = seeder.org()
    mine = load(runtime, org, org.clients[0], PLATFORMS, seed=1)
    sibling = load(runtime, org, org.clients[1], PLATFORMS, seed=2)
    foreign = load(runtime, other_org, other_org.clients[0], PLATFORMS, seed=3)
    yield mine, sibling, foreign


def spec_for(fixture: Fixture, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "client_id": fixture.client_id,
        "platforms": list(PLATFORMS),
        "date_from": "2024-01-01",
        "date_to": "2024-03-31",
        "metrics": ["impressions", "clicks", "spend"],
        "dimensions": ["platform"],
    }
    spec.update(overrides)
    return spec


def post(client: Client, tokens: TokenIssuer, org: Org, role: str, spec: dict[str, Any]) -> Any:
    return client.post(
        "/query",
        data=json.dumps(spec),
        content_type="application/json",
        headers=tokens.header(org, org.user(role)),
    )


def check(response: Any, fixture: Fixture, spec: dict[str, Any]) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    expected = jsonable(reference(fixture.rows, spec))
    for key in ("columns", "rows", "totals", "truncated"):
        assert same(body[key], expected[key]), (key, body[key], expected[key])
    return dict(body)


def test_blends_platforms_and_keeps_currencies_apart(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...]
) -> None:
    mine = data[0]
    spec = spec_for(
        mine,
        metrics=[
            "impressions",
            "clicks",
            "spend",
            "ctr",
            "cpc",
            "cpm",
            "cpa",
            "roas",
            "conversions",
            "conversion_value",
        ],
    )
    body = check(post(client, tokens, mine.org, "viewer", spec), mine, spec)
    assert body["columns"][:2] == ["platform", "currency"]
    # Each (platform, currency) once; totals one per currency, never one across both.
    assert len({(r[0], r[1]) for r in body["rows"]}) == len(body["rows"])
    assert [t["currency"] for t in body["totals"]] == ["EUR", "USD"]
    assert body["bytes_processed"] is None  # DuckDB does not report it


def test_no_money_metric_means_no_currency_column(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...]
) -> None:
    mine = data[0]
    spec = spec_for(mine, metrics=["clicks", "ctr"], dimensions=["month"])
    body = check(post(client, tokens, mine.org, "editor", spec), mine, spec)
    assert body["columns"] == ["month", "clicks", "ctr"]
    assert len(body["totals"]) == 1 and "currency" not in body["totals"][0]


def test_filters_order_and_limit(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...]
) -> None:
    mine = data[0]
    spec = spec_for(
        mine,
        metrics=["spend", "cpc"],
        dimensions=["week", "campaign_id", "ad_group_id"],
        filters=[
            {"field": "campaign_id", "op": "in", "value": ["me-c1", "ti-c2", "me-c3"]},
            {"field": "campaign_name", "op": "contains", "value": "Brand"},
        ],
        order_by=["-cpc", "week"],
        limit=7,
    )
    body = check(post(client, tokens, mine.org, "admin", spec), mine, spec)
    assert len(body["rows"]) == 7 and body["truncated"] is True


def test_zero_division_gives_null(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...]
) -> None:
    mine = data[0]
    spec = spec_for(
        mine,
        metrics=["ctr", "cpc", "cpa"],
        dimensions=["date", "account_id", "campaign_id", "ad_group_id", "ad_id"],
        limit=10_000,
    )
    body = check(post(client, tokens, mine.org, "admin", spec), mine, spec)
    assert any(None in row[-3:] for row in body["rows"])


def test_no_rows_in_range_is_an_empty_answer(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...]
) -> None:
    mine = data[0]
    spec = spec_for(mine, date_from="2023-01-01", date_to="2023-06-30")
    body = check(post(client, tokens, mine.org, "viewer", spec), mine, spec)
    assert body["rows"] == [] and body["totals"] == []


def test_a_platform_without_a_dataset_is_404_naming_it(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...]
) -> None:
    mine = data[0]
    response = post(
        client, tokens, mine.org, "admin", spec_for(mine, platforms=["meta", "linkedin"])
    )
    assert response.status_code == 404
    assert "linkedin" in response.get_json()["detail"]


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
def test_another_organizations_client_is_404(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...], role: str
) -> None:
    mine, _, foreign = data
    response = post(client, tokens, mine.org, role, spec_for(foreign))
    assert response.status_code == 404
    assert response.get_json()["detail"] == "No such client."


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_an_unassigned_client_is_404_for_editors_and_viewers(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...], role: str
) -> None:
    mine, sibling, _ = data
    response = post(client, tokens, mine.org, role, spec_for(sibling))
    assert response.status_code == 404
    assert response.get_json()["detail"] == "No such client."


def test_an_admin_reaches_every_client_of_its_organization(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...]
) -> None:
    mine, sibling, _ = data
    spec = spec_for(sibling)
    check(post(client, tokens, mine.org, "admin", spec), sibling, spec)


def test_a_missing_client_is_404_and_no_token_is_401(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...]
) -> None:
    mine = data[0]
    response = post(client, tokens, mine.org, "admin", spec_for(mine, client_id=str(uuid.uuid4())))
    assert response.status_code == 404
    anonymous = client.post(
        "/query", data=json.dumps(spec_for(mine)), content_type="application/json"
    )
    assert anonymous.status_code == 401


def test_one_audit_record_with_the_spec_hash_and_no_filter_values(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...], pg: Any
) -> None:
    mine = data[0]
    secret_name = f"needle-{uuid.uuid4().hex}"
    spec = spec_for(mine, filters=[{"field": "campaign_name", "op": "eq", "value": secret_name}])
    request_id = uuid.uuid4().hex
    response = client.post(
        "/query",
        data=json.dumps(spec),
        content_type="application/json",
        headers={**tokens.header(mine.org, mine.org.user("viewer")), "X-Request-Id": request_id},
    )
    assert response.status_code == 200
    from shared.reporting import QuerySpec

    digest = QuerySpec.model_validate(spec).sha256()
    with psycopg.connect(pg.admin_url) as conn:
        rows = conn.execute(
            "select action, resource, outcome, detail from audit_log where request_id = %s",
            (request_id,),
        ).fetchall()
        leaked = conn.execute(
            "select count(*) from audit_log where detail like %s or resource like %s",
            (f"%{secret_name}%", f"%{secret_name}%"),
        ).fetchone()
    assert rows == [("query.run", f"client:{mine.client_id}", "ok", f"spec_sha256={digest}")]
    assert leaked == (0,)


def test_a_refused_query_is_audited_once_as_denied(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...], pg: Any
) -> None:
    mine, sibling, _ = data
    request_id = uuid.uuid4().hex
    response = client.post(
        "/query",
        data=json.dumps(spec_for(sibling)),
        content_type="application/json",
        headers={**tokens.header(mine.org, mine.org.user("viewer")), "X-Request-Id": request_id},
    )
    assert response.status_code == 404
    with psycopg.connect(pg.admin_url) as conn:
        rows = conn.execute(
            "select action, outcome from audit_log where request_id = %s", (request_id,)
        ).fetchall()
    assert rows == [("query.run", "denied")]


def test_the_served_function_answers_through_functions_framework(
    server: LocalServer, tokens: TokenIssuer, data: tuple[Fixture, ...]
) -> None:
    # The LocalServer routes /query to functions/query/main.py's router, as the URL map does.
    assert server.router_for("/query").function == "query"


def test_metrics_without_dimensions_give_one_row(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...]
) -> None:
    mine = data[0]
    spec = spec_for(mine, metrics=["clicks", "ctr"], dimensions=[])
    body = check(post(client, tokens, mine.org, "viewer", spec), mine, spec)
    assert body["columns"] == ["clicks", "ctr"] and len(body["rows"]) == 1
    assert body["totals"] == [dict(zip(body["columns"], body["rows"][0], strict=True))]


def test_no_record_no_rows(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, ...], pg: Any
) -> None:
    # The warehouse answered, the record is refused: the server's fault (503), and
    # not one row leaves.
    mine = data[0]
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute("revoke insert on audit_log from cosma_app")
    try:
        response = post(client, tokens, mine.org, "viewer", spec_for(mine))
    finally:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            conn.execute("grant insert on audit_log to cosma_app")
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert "rows" not in response.get_json()
