"""Reporting fixtures: daily rows for a client's datasets, loaded through the real
provisioning and warehouse code, and a plain-Python reference of what `POST /query`
must answer for a spec (group by, sums, derived metrics, order, limit, totals).

The reference mirrors the SQL's formulas operation by operation, and the
fixture's numbers keep every sum exact (integers, conversions in halves), so
results can be compared to the last bit; a small tolerance still guards floats.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from shared import provisioning
from shared.audit import RequestAudit
from shared.runtime import Runtime
from shared.warehouse import DAILY_SCHEMA
from tests.support.seed import Org

START = dt.date(2024, 1, 1)
DAYS = 75  # crosses month and ISO-week boundaries, and a year with 29 February
SYNCED_AT = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)

# Names a hostile or careless customer could type: quotes, comments, backslashes,
# unicode quotes and non-ASCII; they must come back byte for byte.
CAMPAIGN_NAMES = (
    "Brand",
    "Brand 'Q1'; drop table x; --",
    'Say "hi" or 1=1 --',
    "back`tick\\slash",
    "Ünïcode \u2019quotes\u2019 \u201csmart\u201d",
    None,
)
MONEY_COLUMNS = ("spend_micros", "conversion_value_micros")


@dataclass
class Fixture:
    """What was loaded for one client: the rows (with their platform) and the datasets."""

    org: Org
    client_id: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    platforms: tuple[str, ...] = ()


def make_rows(
    seed: int, platform: str, accounts: Sequence[str], count: int
) -> list[dict[str, Any]]:
    """Deterministic rows with nulls, zeros (for zero division) and two currencies."""
    rng = random.Random(f"{seed}:{platform}")
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for _ in range(count):
        account = rng.choice(list(accounts))
        day = START + dt.timedelta(days=rng.randrange(DAYS))
        campaign = f"{platform[:2]}-c{rng.randrange(4)}"
        ad_group = rng.choice([None, f"{campaign}-g1", f"{campaign}-g2"])
        ad = None if ad_group is None else rng.choice([None, f"{ad_group}-a1"])
        impressions = rng.choice([0, 0, rng.randrange(1, 5_000)])
        clicks = 0 if impressions == 0 else rng.randrange(0, impressions // 10 + 2)
        row = {
            "date": day,
            "account_id": account,
            "campaign_id": campaign,
            "campaign_name": rng.choice(CAMPAIGN_NAMES),
            "ad_group_id": ad_group,
            "ad_id": ad,
            "impressions": impressions,
            "clicks": clicks,
            "spend_micros": rng.choice([0, rng.randrange(1, 50_000_000)]),
            "conversions": rng.randrange(0, 8) / 2,
            "conversion_value_micros": rng.choice([0, rng.randrange(1, 90_000_000)]),
            # One currency per account, as the platforms report it.
            "currency": "EUR" if account.endswith(("1", "3")) else "USD",
            "synced_at": SYNCED_AT,
        }
        # The daily table has one row per (date, account, campaign, ad group, ad).
        rows[(day, account, campaign, ad_group, ad)] = row
    return list(rows.values())


def load(
    runtime: Runtime,
    org: Org,
    client_id: str,
    platforms: Iterable[str],
    *,
    seed: int = 1,
    count: int = 120,
) -> Fixture:
    """Provision (as the org's admin) and fill one dataset per platform."""
    admin = org.principal(org.user("admin"))
    fixture = Fixture(org, client_id, platforms=tuple(platforms))
    for index, platform in enumerate(fixture.platforms):
        audit = RequestAudit(lambda: runtime.db, action="test.load", request_id="test-load")
        record = provisioning.provision(runtime, admin, audit, client_id, platform)
        accounts = [f"{platform}-acct{index * 2 + 1}", f"{platform}-acct{index * 2 + 2}"]
        rows = make_rows(seed, platform, accounts, count)
        for account in accounts:
            mine = [r for r in rows if r["account_id"] == account]
            runtime.warehouse.replace_slice(
                record.dataset_id,
                pa.Table.from_pylist(mine, schema=DAILY_SCHEMA),
                account,
                START,
                START + dt.timedelta(days=DAYS - 1),
            )
        fixture.rows.extend({**r, "platform": platform} for r in rows)
    return fixture


# ---------------------------------------------------------------- the reference

_MONEY = {"spend", "conversion_value", "cpc", "cpm", "cpa", "roas"}


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _metric(name: str, s: dict[str, Any]) -> Any:
    if name in ("impressions", "clicks", "conversions"):
        return s[name]
    if name == "spend":
        return s["spend"] / 1000000
    if name == "conversion_value":
        return s["conversion_value"] / 1000000
    if name == "ctr":
        return _div(s["clicks"], s["impressions"])
    if name == "cpc":
        return _div(s["spend"] / 1000000, s["clicks"])
    if name == "cpm":
        return _div(s["spend"] / 1000, s["impressions"])
    if name == "cpa":
        return _div(s["spend"] / 1000000, s["conversions"])
    if name == "roas":
        return _div(s["conversion_value"], s["spend"])
    raise KeyError(name)


def _key(row: dict[str, Any], name: str) -> Any:
    day: dt.date = row["date"]
    if name == "week":
        return day - dt.timedelta(days=day.weekday())
    if name == "month":
        return day.replace(day=1)
    return row[name]


def _matches(row: dict[str, Any], flt: dict[str, Any]) -> bool:
    value = row[flt["field"]]
    if value is None:
        return False
    if flt["op"] == "eq":
        return bool(value == flt["value"])
    if flt["op"] == "in":
        return value in flt["value"]
    return flt["value"] in value


def _sums(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "impressions": sum(r["impressions"] for r in rows),
        "clicks": sum(r["clicks"] for r in rows),
        "spend": sum(r["spend_micros"] for r in rows),
        "conversions": sum(r["conversions"] for r in rows),
        "conversion_value": sum(r["conversion_value_micros"] for r in rows),
    }


def reference(rows: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    """What the answer to `spec` must be, computed in plain Python."""
    dims = list(spec.get("dimensions", []))
    metrics = list(spec["metrics"])
    money = any(m in _MONEY for m in metrics)
    keys = dims + (["currency"] if money else [])
    date_from = dt.date.fromisoformat(spec["date_from"])
    date_to = dt.date.fromisoformat(spec["date_to"])
    kept = [
        r
        for r in rows
        if r["platform"] in spec["platforms"]
        and date_from <= r["date"] <= date_to
        and all(_matches(r, f) for f in spec.get("filters", []))
    ]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in kept:
        groups.setdefault(tuple(_key(r, k) for k in keys), []).append(r)
    detail = []
    for group_key, members in groups.items():
        s = _sums(members)
        detail.append(dict(zip(keys, group_key, strict=True)) | {m: _metric(m, s) for m in metrics})
    order = [(o.lstrip("-"), o.startswith("-")) for o in spec.get("order_by", [])]
    named = {k for k, _ in order}
    order += [(k, False) for k in keys if k not in named]
    for name, desc in reversed(order):
        if desc:
            detail.sort(key=lambda d, n=name: (d[n] is not None, d[n]), reverse=True)
        else:
            detail.sort(key=lambda d, n=name: (d[n] is None, d[n]))
    limit = spec.get("limit", 1000)
    columns = keys + metrics
    by_currency: dict[Any, list[dict[str, Any]]] = {}
    for r in kept:
        by_currency.setdefault(r["currency"] if money else None, []).append(r)
    totals = []
    for currency in sorted(by_currency, key=lambda c: (c is None, c)):
        s = _sums(by_currency[currency])
        total = {"currency": currency} if money else {}
        totals.append(total | {m: _metric(m, s) for m in metrics})
    return {
        "columns": columns,
        "rows": [[d[c] for c in columns] for d in detail[:limit]],
        "totals": totals,
        "truncated": len(detail) > limit,
    }


def jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def same(actual: Any, expected: Any, rel: float = 1e-9) -> bool:
    """Equal, with floats compared relatively (ints and floats may meet: 3 == 3.0)."""
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            same(a, e, rel) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            same(actual[k], expected[k], rel) for k in actual
        )
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return abs(actual - expected) <= rel * max(abs(actual), abs(expected), 1e-12)
    return bool(actual == expected)
