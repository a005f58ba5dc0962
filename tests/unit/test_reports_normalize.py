"""Exact money, metric parsing and the daily table the connectors build."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import errors
from shared.errors import ProviderUnavailable
from shared.platform_names import CLOUD_PLATFORMS
from shared.platforms.registry import Registry
from shared.platforms.reports.base import check_range, provider_data
from shared.platforms.reports.normalize import DailyColumns, count, micros, micros_to_text
from shared.platforms.transport import retry_after_seconds
from shared.settings import Settings
from shared.warehouse import DAILY_SCHEMA
from shared.warehouse.schema import conform


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.34", 12_340_000),
        ("0.01", 10_000),
        ("0.000001", 1),
        ("1234567.891234", 1_234_567_891_234),
        ("-3.5", -3_500_000),
        ("7", 7_000_000),
        ("0.1", 100_000),
        ("1e-6", 1),
        ("0.0000005", 0),  # half-even: exactly half rounds to even (0)
        ("0.0000015", 2),
        (".5", 500_000),
        ("", 0),
        (None, 0),
        (3, 3_000_000),
        (0.1, 100_000),  # a JSON double read through its shortest repr
        (1234.56, 1_234_560_000),
    ],
)
def test_micros_is_exact(text: object, expected: int) -> None:
    assert micros(text) == expected


def test_micros_refuses_garbage() -> None:
    for bad in ("abc", "1.2.3", "NaN-ish", True):
        with pytest.raises(ValueError):
            micros(bad)


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_micros_round_trips_decimal_text(amount: int) -> None:
    assert micros(micros_to_text(amount)) == amount


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False))
def test_micros_matches_decimal(value: Decimal) -> None:
    assert micros(str(value)) == int(value * 1_000_000)


def test_float_sum_would_be_wrong_but_micros_is_not() -> None:
    # 0.1 + 0.2 in floats is 0.30000000000000004; summing micros stays exact.
    assert sum(micros(x) for x in ("0.1", "0.2")) == micros("0.3")


def test_counts_accept_text_and_numbers() -> None:
    assert [count("12"), count(12), count(None), count(""), count("1,234")] == [12, 12, 0, 0, 1234]


def _columns(dates: list[str]) -> DailyColumns:
    cols = DailyColumns()
    for i, day in enumerate(dates):
        cols.date.append(day)
        cols.campaign_id.append("c1")
        cols.campaign_name.append(None)
        cols.ad_group_id.append("g1")
        cols.ad_id.append(f"a{i}")
        cols.impressions.append(10)
        cols.clicks.append(1)
        cols.spend_micros.append(micros("1.5"))
        cols.conversions.append(0.5)
        cols.conversion_value_micros.append(0)
    return cols


def test_table_has_the_daily_schema_and_passes_the_warehouse_check() -> None:
    synced = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    table = _columns(["2024-04-01", "2024-04-02"]).table(
        "acct", "EUR", dt.date(2024, 4, 1), dt.date(2024, 4, 2), synced
    )
    assert table.schema == DAILY_SCHEMA
    assert table.column("currency").to_pylist() == ["EUR", "EUR"]
    assert table.column("synced_at").to_pylist() == [synced, synced]
    assert table.column("spend_micros").to_pylist() == [1_500_000, 1_500_000]
    conform(table, "acct", dt.date(2024, 4, 1), dt.date(2024, 4, 2))


def test_rows_outside_the_range_are_dropped() -> None:
    table = _columns(["2024-03-31", "2024-04-01", "2024-04-03"]).table(
        "acct", "USD", dt.date(2024, 4, 1), dt.date(2024, 4, 2)
    )
    assert table.column("date").to_pylist() == [dt.date(2024, 4, 1)]


def test_empty_columns_give_an_empty_table() -> None:
    table = DailyColumns().table("acct", "USD", dt.date(2024, 4, 1), dt.date(2024, 4, 2))
    assert table.num_rows == 0 and table.schema == DAILY_SCHEMA


def test_a_malformed_date_is_the_providers_fault() -> None:
    with pytest.raises(ProviderUnavailable), provider_data("meta"):
        _columns(["not-a-date"]).table("a", "USD", dt.date(2024, 1, 1), dt.date(2024, 1, 2))


def test_an_inverted_range_is_refused() -> None:
    with pytest.raises(errors.ValidationFailed):
        check_range(dt.date(2024, 1, 2), dt.date(2024, 1, 1))


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0", 0.0), (None, 60.0), ("soon", 60.0), ("999999", 3600.0)],
)
def test_retry_after_seconds(header: str | None, expected: float) -> None:
    assert retry_after_seconds(header) == expected


def test_retry_after_http_date() -> None:
    now = dt.datetime(2024, 1, 1, 0, 0, 0, tzinfo=dt.UTC).timestamp()
    assert retry_after_seconds("Mon, 01 Jan 2024 00:00:30 GMT", now=now) == 30.0


def test_every_platform_has_a_connector_with_documented_windows() -> None:
    platforms = Registry.from_settings(Settings())
    for platform in CLOUD_PLATFORMS:
        connector = platforms.connector(platform)
        assert connector.platform == platform
        assert 0 < connector.lookback_days < connector.retention_days
    assert platforms.connector("google_ads").lookback_days == 14
    assert platforms.connector("meta").lookback_days == 28
    with pytest.raises(errors.NotFound):
        platforms.connector("myspace")


def test_table_build_is_columnar() -> None:
    # A large slice builds in one pass per column (no per-row dicts).
    n = 50_000
    cols = _columns(["2024-04-01"] * n)
    table = cols.table("acct", "USD", dt.date(2024, 4, 1), dt.date(2024, 4, 1))
    assert table.num_rows == n
    assert isinstance(table.column("date"), pa.ChunkedArray)
