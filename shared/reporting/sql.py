"""SQL text for a `QuerySpec`, in the BigQuery or DuckDB dialect.

Invariants:

- identifiers in the text come only from the allow-lists in `spec` and from
  `Warehouse.table_ref` (which accepts only dataset ids we made); every value
  (dates, platform names, filter values, the row cap) is a named parameter;
- several platforms are blended with UNION ALL, each branch tagged with its
  platform as a parameter and filtered on the date range (partition pruning);
- with any money metric, `currency` is a grouping key, in detail rows and in
  totals, so amounts in different currencies are never added together;
- divisions by zero give NULL (`NULLIF`), on both warehouses;
- detail rows are numbered in a total order (the requested keys, then every
  group key, NULLs last) and capped at `limit + 1` rows, so the caller can
  tell that a result was cut; totals cover every row, not just the first
  `limit`.

One statement returns both: rows with `_total = 0` are detail rows in order,
rows with `_total = 1` the totals (one per currency). The warehouse reads the
data once per branch of the UNION.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.reporting.spec import BASE_METRICS, QuerySpec

if TYPE_CHECKING:
    from shared.warehouse import Dialect, QueryParam

# Raw daily-table columns behind each base sum.
_SUM_SOURCE: dict[str, str] = {
    "impressions": "impressions",
    "clicks": "clicks",
    "spend": "spend_micros",
    "conversions": "conversions",
    "conversion_value": "conversion_value_micros",
}
# Which base sums each metric needs.
_NEEDS: dict[str, tuple[str, ...]] = {
    **{m: (m,) for m in BASE_METRICS},
    "ctr": ("clicks", "impressions"),
    "cpc": ("spend", "clicks"),
    "cpm": ("spend", "impressions"),
    "cpa": ("spend", "conversions"),
    "roas": ("conversion_value", "spend"),
}
# Metric expressions over the base sums `s_<name>`; money leaves micros here.
# Python's reference in the tests mirrors these formulas operation by operation.
_METRIC: dict[str, str] = {
    "impressions": "{s_impressions}",
    "clicks": "{s_clicks}",
    "spend": "{s_spend} / 1000000",
    "conversions": "{s_conversions}",
    "conversion_value": "{s_conversion_value} / 1000000",
    "ctr": "{s_clicks} / NULLIF({s_impressions}, 0)",
    "cpc": "{s_spend} / 1000000 / NULLIF({s_clicks}, 0)",
    "cpm": "{s_spend} / 1000 / NULLIF({s_impressions}, 0)",
    "cpa": "{s_spend} / 1000000 / NULLIF({s_conversions}, 0)",
    "roas": "{s_conversion_value} / NULLIF({s_spend}, 0)",
}
# Raw columns behind each dimension or filter field (platform is the branch tag).
_RAW: dict[str, str] = {
    "date": "date",
    "week": "date",
    "month": "date",
    "account_id": "account_id",
    "campaign_id": "campaign_id",
    "campaign_name": "campaign_name",
    "ad_group_id": "ad_group_id",
    "ad_id": "ad_id",
    "currency": "currency",
}


@dataclass(frozen=True)
class Statement:
    sql: str
    params: list[QueryParam]
    # Output columns after the two bookkeeping columns `_total` and `_rn`.
    columns: list[str]


class _Dialect:
    def __init__(self, name: Dialect) -> None:
        self.name = name

    def ident(self, name: str) -> str:
        # Names come from the allow-lists only; quoting keeps words like `date` plain columns.
        return f"`{name}`" if self.name == "bigquery" else f'"{name}"'

    def param(self, name: str) -> str:
        return f"@{name}" if self.name == "bigquery" else f"${name}"

    def truncate(self, column: str, part: str) -> str:
        if self.name == "bigquery":
            unit = {"week": "ISOWEEK", "month": "MONTH"}[part]
            return f"DATE_TRUNC({column}, {unit})"
        return f"CAST(date_trunc('{part}', {column}) AS DATE)"

    def one_of(self, column: str, param: str) -> str:
        if self.name == "bigquery":
            return f"{column} IN UNNEST({param})"
        return f"list_contains({param}, {column})"


def build(spec: QuerySpec, tables: Sequence[tuple[str, str]], dialect: Dialect) -> Statement:
    """The statement for `spec` over `tables`: (platform, quoted table ref) pairs."""
    from shared.warehouse import QueryParam

    if not tables:
        raise ValueError("a query needs at least one table")
    d = _Dialect(dialect)
    q = d.ident
    params: list[QueryParam] = [
        QueryParam("date_from", spec.date_from, "DATE"),
        QueryParam("date_to", spec.date_to, "DATE"),
    ]

    sums = sorted({s for m in spec.metrics for s in _NEEDS[m]}, key=BASE_METRICS.index)
    raw = {_RAW[k] for k in spec.group_keys if k != "platform"}
    raw |= {_RAW[f.field] for f in spec.filters if f.field != "platform"}
    raw |= {_SUM_SOURCE[s] for s in sums}
    raw.add("date")
    raw_columns = ", ".join(q(c) for c in sorted(raw))

    branches = []
    for i, (platform, table) in enumerate(tables):
        name = f"platform_{i}"
        params.append(QueryParam(name, platform, "STRING"))
        branches.append(
            f"SELECT {d.param(name)} AS {q('platform')}, {raw_columns} FROM {table}"  # noqa: S608
            f" WHERE {q('date')} BETWEEN {d.param('date_from')} AND {d.param('date_to')}"
        )
    src = "\n    UNION ALL\n    ".join(branches)

    conditions = []
    for i, flt in enumerate(spec.filters):
        name = f"filter_{i}"
        column = q(flt.field)
        if flt.op == "in":
            params.append(QueryParam(name, list(flt.value), "ARRAY<STRING>"))
            conditions.append(d.one_of(column, d.param(name)))
        elif flt.op == "contains":
            params.append(QueryParam(name, flt.value, "STRING"))
            conditions.append(f"STRPOS({column}, {d.param(name)}) > 0")
        else:
            params.append(QueryParam(name, flt.value, "STRING"))
            conditions.append(f"{column} = {d.param(name)}")
    where = f"\n  WHERE {' AND '.join(conditions)}" if conditions else ""

    def key_expr(key: str) -> str:
        if key in ("week", "month"):
            return d.truncate(q("date"), key)
        return q(key)

    keys = spec.group_keys
    key_select = [f"{key_expr(k)} AS {q(k)}" for k in keys]
    sum_select = [f"SUM({q(_SUM_SOURCE[s])}) AS {q('s_' + s)}" for s in sums]
    group_by = f"\n  GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
    grouped = (
        f"SELECT {', '.join([*key_select, *sum_select])}\n  FROM src{where}{group_by}"  # noqa: S608
        "\n  HAVING COUNT(*) > 0"
    )

    refs = {f"s_{s}": q(f"s_{s}") for s in sums}
    metric_select = [f"{_METRIC[m].format(**refs)} AS {q(m)}" for m in spec.metrics]
    window = ", ".join(
        f"{q(k)} {'DESC' if desc else 'ASC'} NULLS LAST" for k, desc in spec.order_keys
    )
    # No group keys and no order: at most one detail row, nothing to order by.
    window = f"ORDER BY {window}" if window else ""
    params.append(QueryParam("row_cap", spec.limit + 1, "INT64"))

    key_cols = [q(k) for k in keys]
    metric_cols = [q(m) for m in spec.metrics]
    total_keys = [q("currency") if k == "currency" else f"NULL AS {q(k)}" for k in keys]
    total_group = f"\n  GROUP BY {q('currency')}" if spec.has_money else ""
    total_sums = ", ".join(
        [*([q("currency")] if spec.has_money else []), *(f"SUM({r}) AS {r}" for r in refs.values())]
    )
    # Totals carry no row number: one per currency, in currency order.
    total_order = [q("currency")] if spec.has_money else []
    sql = (
        f"WITH src AS (\n    {src}\n),\n"  # noqa: S608
        f"grouped AS (\n  {grouped}\n),\n"
        f"measured AS (\n  SELECT {', '.join([*key_cols, *metric_select])}\n  FROM grouped\n),\n"
        f"detail AS (\n  SELECT {', '.join([*key_cols, *metric_cols])},"
        f" ROW_NUMBER() OVER ({window}) AS {q('_rn')}\n  FROM measured\n),\n"
        f"total_sums AS (\n  SELECT {total_sums}\n  FROM grouped{total_group}\n"
        "  HAVING COUNT(*) > 0\n),\n"
        f"totals AS (\n  SELECT {', '.join([*total_keys, *metric_select])}\n  FROM total_sums\n)\n"
        f"SELECT 0 AS {q('_total')}, {q('_rn')}, {', '.join([*key_cols, *metric_cols])}\n"
        f"FROM detail WHERE {q('_rn')} <= {d.param('row_cap')}\n"
        "UNION ALL\n"
        f"SELECT 1 AS {q('_total')}, NULL AS {q('_rn')}, {', '.join([*key_cols, *metric_cols])}\n"
        "FROM totals\n"
        f"ORDER BY {', '.join([q('_total'), q('_rn'), *total_order])}"
    )
    return Statement(sql=sql, params=params, columns=spec.output_columns)
