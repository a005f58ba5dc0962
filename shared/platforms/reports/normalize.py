"""Columns to the daily Arrow table, fast and exact.

Connectors append provider values to plain Python lists (one list per column,
no per-row dicts) and `DailyColumns.table()` builds `DAILY_SCHEMA` in one pass
per column. Money is converted from the provider's decimal text to integer
micros with string arithmetic (Decimal only for unusual spellings), never
through a float. Rows outside the requested account's date range are dropped
here, so a fetch can never hand the warehouse a row it would reject.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("cosma.reports")

_MICROS = Decimal(1_000_000)
_COLUMNS = (
    "date",
    "campaign_id",
    "campaign_name",
    "ad_group_id",
    "ad_id",
    "impressions",
    "clicks",
    "spend_micros",
    "conversions",
    "conversion_value_micros",
    "currency",
)


def micros(value: Any) -> int:
    """A money amount in currency units (text or number) as integer micros.

    "12.34" -> 12_340_000 exactly; more than six decimals round half-even;
    None and "" are 0. Floats are read through their shortest repr, which is
    the text the provider's JSON carried.
    """
    if value.__class__ is str:
        # The hot path: plain "123.45" text, up to six decimals.
        whole, _, frac = value.partition(".")
        if len(frac) <= 6 and whole.isdecimal() and (frac.isdecimal() or not frac):
            return int(whole + (frac + "000000")[:6])
    return _micros_slow(value)


def _micros_slow(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError("not an amount")
    if isinstance(value, int):
        return value * 1_000_000
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if not text:
        return 0
    try:
        exact = Decimal(text) * _MICROS
        return int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError("not an amount") from exc


def count(value: Any) -> int:
    """An integer metric that may arrive as text ("123"), a number, or be absent."""
    if value.__class__ is str and value.isdecimal():
        return int(value)
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    text = str(value)
    try:
        return int(text)
    except ValueError:
        return int(Decimal(text.replace(",", "")))


def number(value: Any) -> float:
    """A fractional metric (conversions)."""
    if value is None or value == "":
        return 0.0
    return float(value)


def micros_to_text(amount: int) -> str:
    """Inverse of `micros` for the local protocol servers: 12_340_000 -> "12.34"."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 1_000_000)
    text = f"{whole}.{frac:06d}".rstrip("0").rstrip(".")
    return sign + text


@dataclass
class DailyColumns:
    """Column lists for one account's slice. `date` holds ISO text ("2024-01-31")."""

    date: list[str] = field(default_factory=list)
    campaign_id: list[str] = field(default_factory=list)
    campaign_name: list[str | None] = field(default_factory=list)
    ad_group_id: list[str | None] = field(default_factory=list)
    ad_id: list[str | None] = field(default_factory=list)
    impressions: list[int] = field(default_factory=list)
    clicks: list[int] = field(default_factory=list)
    spend_micros: list[int] = field(default_factory=list)
    conversions: list[float] = field(default_factory=list)
    conversion_value_micros: list[int] = field(default_factory=list)
    # Per-row currency when the provider reports it; the account's otherwise.
    currency: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.date)

    def extend(self, other: DailyColumns) -> None:
        """Append another slice's rows (a connector that reads a range in parts)."""
        for name in _COLUMNS:
            getattr(self, name).extend(getattr(other, name))

    def table(
        self,
        account_id: str,
        currency: str,
        date_from: dt.date,
        date_to: dt.date,
        synced_at: dt.datetime | None = None,
    ) -> pa.Table:
        """`DAILY_SCHEMA`, only rows in [date_from, date_to], synced_at set (now by default)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from shared.warehouse import DAILY_SCHEMA

        n = len(self.date)
        if synced_at is None:
            synced_at = dt.datetime.now(dt.UTC)
        if self.currency and len(self.currency) != n:
            raise ValueError("currency column length differs")
        currencies = (
            pa.array(self.currency, pa.string())
            if self.currency
            else pa.repeat(pa.scalar(currency, pa.string()), n)
        )
        columns = [
            pa.array(self.date, pa.string()).cast(pa.date32()),
            pa.repeat(pa.scalar(account_id, pa.string()), n),
            pa.array(self.campaign_id, pa.string()),
            pa.array(self.campaign_name, pa.string()),
            pa.array(self.ad_group_id, pa.string()),
            pa.array(self.ad_id, pa.string()),
            pa.array(self.impressions, pa.int64()),
            pa.array(self.clicks, pa.int64()),
            pa.array(self.spend_micros, pa.int64()),
            pa.array(self.conversions, pa.float64()),
            pa.array(self.conversion_value_micros, pa.int64()),
            currencies,
            pa.repeat(pa.scalar(synced_at, pa.timestamp("us", tz="UTC")), n),
        ]
        table = pa.Table.from_arrays(columns, schema=DAILY_SCHEMA)
        if n:
            dates = table.column("date")
            low = pa.scalar(date_from, pa.date32())
            high = pa.scalar(date_to, pa.date32())
            keep = pc.and_(pc.greater_equal(dates, low), pc.less_equal(dates, high))
            kept = table.filter(keep)
            if kept.num_rows != n:
                log.warning(
                    "dropped rows outside the requested range",
                    extra={"fields": {"dropped": n - kept.num_rows}},
                )
            table = kept
        return table
