"""Injection payloads in every string field of `POST /query`: each answer is a 422
(the value is outside an allow-list or a bound) or a correct, parameterized result
for the caller's own client; never a 500 and never another client's rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from shared.runtime import Runtime
from tests.support.identity import TokenIssuer
from tests.support.reporting import CAMPAIGN_NAMES, Fixture, jsonable, load, reference, same
from tests.support.seed import Seeder

PAYLOADS = [
    "'; drop table x; --",
    '" or 1=1 --',
    "' or '1'='1",
    "`cosma_test`.`ad_performance_daily`",
    "\u2019 or \u20181\u2019=\u20181",
    "\\",
    "\\'",
    "$1",
    "@date_from",
    "%s",
    "{s_spend}",
    "x') union all select * from clients --",
    "meta'; attach '/etc/passwd' as p; --",
    "a" * 300,
    "a\x00b",
    "\ud800",
]
PLATFORMS = ("meta", "tiktok")


@pytest.fixture(scope="module")
def data(runtime: Runtime, seeder: Seeder) -> Iterator[tuple[Fixture, Fixture]]:
    org = seeder.org()
    mine = load(runtime, org, org.clients[0], PLATFORMS, seed=11)
    other = load(runtime, org, org.clients[1], PLATFORMS, seed=12)
    yield mine, other


def base(fixture: Fixture) -> dict[str, Any]:
    return {
        "client_id": fixture.client_id,
        "platforms": list(PLATFORMS),
        "date_from": "2024-01-01",
        "date_to": "2024-03-31",
        "metrics": ["clicks", "spend"],
        "dimensions": ["campaign_name", "ad_id"],
    }


def post(client: Client, tokens: TokenIssuer, fixture: Fixture, body: Any) -> Any:
    org = fixture.org
    # ensure_ascii keeps a lone surrogate as the JSON escape "\ud800", as a client could send it.
    return client.post(
        "/query",
        data=json.dumps(body),
        content_type="application/json",
        headers=tokens.header(org, org.user("editor")),
    )


def placements(payload: str) -> list[tuple[str, dict[str, Any]]]:
    """The payload in each place a string can go, with what the answer must be."""
    return [
        ("client_id", {"client_id": payload}),
        ("platforms", {"platforms": ["meta", payload]}),
        ("metrics", {"metrics": ["clicks", payload]}),
        ("dimensions", {"dimensions": [payload]}),
        ("order_by", {"order_by": [payload]}),
        ("order_by desc", {"order_by": [f"-{payload}"]}),
        ("date_from", {"date_from": payload}),
        ("filter field", {"filters": [{"field": payload, "op": "eq", "value": "x"}]}),
        ("filter op", {"filters": [{"field": "ad_id", "op": payload, "value": "x"}]}),
        ("unknown key", {payload: "x"}),
    ]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_structural_fields_are_422(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, Fixture], payload: str
) -> None:
    mine = data[0]
    for where, change in placements(payload):
        response = post(client, tokens, mine, {**base(mine), **change})
        assert response.status_code == 422, (where, response.get_data(as_text=True))
        text = response.get_data(as_text=True)
        # Values are never echoed; an unknown key's name is (as its location in `errors`).
        if len(payload) > 3 and where != "unknown key":
            assert json.dumps(payload)[1:-1] not in text, where  # the input is not echoed


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_as_filter_values_are_parameters(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, Fixture], payload: str
) -> None:
    mine = data[0]
    bad_text = "\x00" in payload or "\ud800" in payload or len(payload) > 256
    for field in (
        "account_id",
        "campaign_id",
        "campaign_name",
        "ad_group_id",
        "ad_id",
        "currency",
        "platform",
    ):
        for op, value in (("eq", payload), ("contains", payload), ("in", [payload, "x"])):
            spec = {**base(mine), "filters": [{"field": field, "op": op, "value": value}]}
            response = post(client, tokens, mine, spec)
            if bad_text:
                assert response.status_code == 422, (field, op)
                continue
            assert response.status_code == 200, (field, op, response.get_data(as_text=True))
            expected = jsonable(reference(mine.rows, spec))
            body = response.get_json()
            assert same(body["rows"], expected["rows"]) and same(body["totals"], expected["totals"])


@pytest.mark.parametrize("name", [n for n in CAMPAIGN_NAMES if n])
def test_hostile_names_in_the_data_match_exactly(
    client: Client, tokens: TokenIssuer, data: tuple[Fixture, Fixture], name: str
) -> None:
    mine, other = data
    for op, value in (("eq", name), ("contains", name[3:12]), ("in", [name])):
        spec = {**base(mine), "filters": [{"field": "campaign_name", "op": op, "value": value}]}
        response = post(client, tokens, mine, spec)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        expected = jsonable(reference(mine.rows, spec))
        assert body["rows"] and same(body["rows"], expected["rows"])
        assert same(body["totals"], expected["totals"])
        # The sibling client has rows with the same names: none of them came along.
        theirs = jsonable(reference(other.rows, {**spec, "client_id": other.client_id}))
        assert not same(body["totals"], theirs["totals"])
