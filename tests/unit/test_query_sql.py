"""The SQL builder: identifiers only from the allow-lists, values only as parameters,
the dialect differences in one place. (It runs against DuckDB and the BigQuery
recording server in tests/integration/test_query*.py.)"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.reporting.spec import QuerySpec
from shared.reporting.sql import build

DUCK_TABLES = [
    ("meta", '"cosma_test_00000000000000000000000000000001_meta".main.ad_performance_daily'),
    ("tiktok", '"cosma_test_00000000000000000000000000000001_tiktok".main.ad_performance_daily'),
]
BQ_TABLES = [
    ("meta", "`p.cosma_test_00000000000000000000000000000001_meta.ad_performance_daily`"),
    ("tiktok", "`p.cosma_test_00000000000000000000000000000001_tiktok.ad_performance_daily`"),
]
ALLOWED_IDENTIFIERS = {
    # Columns of the daily table, dimensions, metrics, and the builder's own names.
    "date", "week", "month", "platform", "account_id", "campaign_id", "campaign_name",
    "ad_group_id", "ad_id", "currency", "impressions", "clicks", "spend_micros", "conversions",
    "conversion_value_micros", "spend", "conversion_value", "ctr", "cpc", "cpm", "cpa", "roas",
    "s_impressions", "s_clicks", "s_spend", "s_conversions", "s_conversion_value", "_rn",
    "_total",
}  # fmt: skip


def spec(**overrides: Any) -> QuerySpec:
    data: dict[str, Any] = {
        "client_id": str(uuid.uuid4()),
        "platforms": ["meta", "tiktok"],
        "date_from": "2024-01-01",
        "date_to": "2024-03-31",
        "metrics": ["clicks", "spend", "roas"],
        "dimensions": ["week", "platform", "campaign_name"],
        "filters": [
            {"field": "campaign_name", "op": "contains", "value": "'; drop table x; --"},
            {"field": "account_id", "op": "in", "value": ['" or 1=1 --', "a"]},
            {"field": "platform", "op": "eq", "value": "meta"},
        ],
        "order_by": ["-spend"],
        "limit": 25,
    }
    data.update(overrides)
    return QuerySpec.model_validate(data)


def quoted_identifiers(sql: str, quote: str) -> set[str]:
    return set(re.findall(f"{quote}([^{quote}]*){quote}", sql))


def test_duckdb_identifiers_come_only_from_the_allow_lists() -> None:
    statement = build(spec(), DUCK_TABLES, "duckdb")
    table_ids = {t.split('"')[1] for _, t in DUCK_TABLES}
    assert quoted_identifiers(statement.sql, '"') <= ALLOWED_IDENTIFIERS | table_ids
    assert "'" not in statement.sql.replace("'week'", "").replace("'month'", "")


def test_bigquery_identifiers_come_only_from_the_allow_lists() -> None:
    statement = build(spec(), BQ_TABLES, "bigquery")
    table_refs = {t.strip("`") for _, t in BQ_TABLES}
    assert quoted_identifiers(statement.sql, "`") <= ALLOWED_IDENTIFIERS | table_refs
    assert "'" not in statement.sql and '"' not in statement.sql


def test_values_travel_as_typed_parameters() -> None:
    statement = build(spec(), BQ_TABLES, "bigquery")
    params = {p.name: (p.resolved_type(), p.value) for p in statement.params}
    assert params == {
        "date_from": ("DATE", dt.date(2024, 1, 1)),
        "date_to": ("DATE", dt.date(2024, 3, 31)),
        "platform_0": ("STRING", "meta"),
        "platform_1": ("STRING", "tiktok"),
        "filter_0": ("STRING", "'; drop table x; --"),
        "filter_1": ("ARRAY<STRING>", ['" or 1=1 --', "a"]),
        "filter_2": ("STRING", "meta"),
        "row_cap": ("INT64", 26),
    }
    for name in params:
        assert f"@{name}" in statement.sql
    assert "drop table" not in statement.sql and "1=1" not in statement.sql


def test_dialect_differences() -> None:
    bq = build(spec(), BQ_TABLES, "bigquery").sql
    duck = build(spec(), DUCK_TABLES, "duckdb").sql
    assert "DATE_TRUNC(`date`, ISOWEEK)" in bq and "`account_id` IN UNNEST(@filter_1)" in bq
    assert "CAST(date_trunc('week', \"date\") AS DATE)" in duck
    assert 'list_contains($filter_1, "account_id")' in duck
    assert "$" not in bq and "@" not in duck
    month = build(spec(dimensions=["month"], order_by=[]), BQ_TABLES, "bigquery").sql
    assert "DATE_TRUNC(`date`, MONTH)" in month


def test_every_platform_is_one_union_branch_with_the_date_range() -> None:
    sql = build(spec(), BQ_TABLES, "bigquery").sql
    assert sql.count("UNION ALL") == 2  # two platform branches + detail/totals
    for i, (_, table) in enumerate(BQ_TABLES):
        assert (
            f"SELECT @platform_{i} AS `platform`, `account_id`, `campaign_name`, `clicks`,"
            f" `conversion_value_micros`, `currency`, `date`, `spend_micros` FROM {table}"
            " WHERE `date` BETWEEN @date_from AND @date_to"
        ) in sql


def test_money_groups_by_currency_and_totals_per_currency() -> None:
    statement = build(spec(), DUCK_TABLES, "duckdb")
    assert statement.columns == [
        "week",
        "platform",
        "campaign_name",
        "currency",
        "clicks",
        "spend",
        "roas",
    ]
    assert "GROUP BY 1, 2, 3, 4" in statement.sql
    assert 'FROM grouped\n  GROUP BY "currency"' in statement.sql
    plain = build(spec(metrics=["clicks", "ctr"], order_by=[]), DUCK_TABLES, "duckdb")
    assert "currency" not in plain.sql


def test_divisions_are_guarded_against_zero() -> None:
    sql = build(
        spec(metrics=["ctr", "cpc", "cpm", "cpa", "roas"], order_by=[]), BQ_TABLES, "bigquery"
    ).sql
    divisions = re.findall(r"/ (\S+)", sql)
    assert divisions and all(d.startswith(("NULLIF(", "1000000", "1000")) for d in divisions)


def test_order_is_total_with_nulls_last() -> None:
    sql = build(spec(), BQ_TABLES, "bigquery").sql
    assert (
        "ROW_NUMBER() OVER (ORDER BY `spend` DESC NULLS LAST, `week` ASC NULLS LAST,"
        " `platform` ASC NULLS LAST, `campaign_name` ASC NULLS LAST, `currency` ASC NULLS LAST)"
    ) in sql


TEXT = st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(TEXT, min_size=3, max_size=3),
    others=st.lists(TEXT, min_size=3, max_size=3),
    dialect=st.sampled_from(["duckdb", "bigquery"]),
)
def test_the_sql_text_does_not_depend_on_filter_values(
    values: list[str], others: list[str], dialect: Any
) -> None:
    def with_values(v: list[str]) -> QuerySpec:
        return spec(
            filters=[
                {"field": "campaign_name", "op": "contains", "value": v[0]},
                {"field": "ad_id", "op": "in", "value": [v[1], v[2]]},
                {"field": "currency", "op": "eq", "value": v[2]},
            ]
        )

    tables = BQ_TABLES if dialect == "bigquery" else DUCK_TABLES
    one, two = (
        build(with_values(values), tables, dialect),
        build(with_values(others), tables, dialect),
    )
    assert one.sql == two.sql
    assert [p.value for p in one.params if p.name.startswith("filter_")] == [
        values[0],
        [values[1], values[2]],
        values[2],
    ]


def test_no_group_keys_and_no_order_gives_a_plain_window() -> None:
    sql = build(spec(metrics=["clicks"], dimensions=[], order_by=[]), BQ_TABLES, "bigquery").sql
    assert "ROW_NUMBER() OVER () AS `_rn`" in sql and "GROUP BY" not in sql
