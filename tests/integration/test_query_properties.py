"""Generated specs through the served `POST /query` on DuckDB, each answer compared
with the plain-Python reference over the same rows (group by, sums, derived
metrics with None on zero division, order, limit, per-currency totals)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from cosma.server import LocalServer
from shared.runtime import Runtime
from tests.support.identity import TokenIssuer
from tests.support.reporting import DAYS, START, Fixture, jsonable, load, reference, same
from tests.support.seed import Seeder

PLATFORMS = ("meta", "tiktok")
METRICS = ("impressions", "clicks", "spend", "conversions", "conversion_value")
METRICS += ("ctr", "cpc", "cpm", "cpa", "roas")
DIMENSIONS = ("date", "week", "month", "platform", "account_id", "campaign_id")
DIMENSIONS += ("campaign_name", "ad_group_id", "ad_id")
FIELDS = ("platform", "account_id", "campaign_id", "campaign_name", "ad_group_id", "ad_id")
FIELDS += ("currency",)


@pytest.fixture(scope="module")
def data(runtime: Runtime, seeder: Seeder) -> Iterator[Fixture]:
    org = seeder.org()
    yield load(runtime, org, org.clients[0], PLATFORMS, seed=21, count=160)


def known_values(fixture: Fixture, field: str) -> list[str]:
    return sorted({r[field] for r in fixture.rows if r[field] is not None})


@st.composite
def specs(
    draw: st.DrawFn, fixture: Fixture, dimension_names: tuple[str, ...] = DIMENSIONS
) -> dict[str, Any]:
    platforms = draw(
        st.lists(st.sampled_from(fixture.platforms), min_size=1, max_size=2, unique=True)
    )
    metrics = draw(st.lists(st.sampled_from(METRICS), min_size=1, max_size=4, unique=True))
    dimensions = draw(st.lists(st.sampled_from(dimension_names), max_size=3, unique=True))
    first = draw(st.integers(0, DAYS + 10)) - 5
    span = draw(st.integers(0, DAYS))
    date_from = START + dt.timedelta(days=first)
    filters = []
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from(FIELDS))
        pool = known_values(fixture, field)
        value = st.sampled_from(pool) | st.text(min_size=1, max_size=8).filter(
            lambda s: "\x00" not in s
        )
        op = draw(st.sampled_from(["eq", "in", "contains"]))
        if op == "in":
            filters.append(
                {"field": field, "op": op, "value": draw(st.lists(value, min_size=1, max_size=4))}
            )
        elif op == "contains":
            whole = draw(value)
            start = draw(st.integers(0, max(len(whole) - 1, 0)))
            filters.append({"field": field, "op": op, "value": whole[start : start + 4] or whole})
        else:
            filters.append({"field": field, "op": op, "value": draw(value)})
    money = any(m in ("spend", "conversion_value", "cpc", "cpm", "cpa", "roas") for m in metrics)
    columns = dimensions + metrics + (["currency"] if money else [])
    order = draw(st.lists(st.sampled_from(columns), max_size=3, unique=True))
    order_by = [f"-{c}" if draw(st.booleans()) else c for c in order]
    return {
        "client_id": fixture.client_id,
        "platforms": platforms,
        "date_from": date_from.isoformat(),
        "date_to": (date_from + dt.timedelta(days=span)).isoformat(),
        "metrics": metrics,
        "dimensions": dimensions,
        "filters": filters,
        "order_by": order_by,
        "limit": draw(st.integers(1, 60)),
    }


def test_generated_specs_match_the_reference(
    server: LocalServer, tokens: TokenIssuer, data: Fixture
) -> None:
    client = Client(server)
    headers = tokens.header(data.org, data.org.user("viewer"))

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(spec=specs(data))
    def check(spec: dict[str, Any]) -> None:
        response = client.post(
            "/query", data=json.dumps(spec), content_type="application/json", headers=headers
        )
        assert response.status_code == 200, (spec, response.get_data(as_text=True))
        body = response.get_json()
        expected = jsonable(reference(data.rows, spec))
        for key in ("columns", "rows", "totals", "truncated"):
            assert same(body[key], expected[key]), (key, body[key], expected[key])

    check()
