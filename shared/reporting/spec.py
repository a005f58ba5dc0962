"""The reporting query spec: what a caller may ask of `POST /query`.

Invariants (the SQL builder relies on them; tests prove them):

- every name that can reach SQL text (platform, metric, dimension, filter
  field, order key) is a member of a fixed allow-list below; anything else is
  a 422 before any SQL is built;
- every free string (filter values) is bounded in length and count and is
  valid UTF-8 without NUL, and only ever travels as a query parameter;
- the date range is non-empty, ordered and at most three years long;
- unknown fields are rejected (`extra="forbid"`).

Money: spend and conversion value are stored in micros per row currency. Any
money metric (including the ratios that divide by money) makes `currency` an
implicit grouping key, so amounts in different currencies are never summed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shared.platform_names import CLOUD_PLATFORMS, NAME_PATTERN

MAX_LIMIT = 10_000
MAX_YEARS = 3

# A platform name. Its form is checked here; whether this deployment serves it is
# the registry's answer (`Runtime.platforms.check`, in the service), because the
# local bootstrap serves one platform more than the cloud (the sandbox). The
# document lists the deployed platforms (`shared.platform_names`).
PlatformName = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN),
    WithJsonSchema({"type": "string", "enum": list(CLOUD_PLATFORMS)}),
]
Metric = Literal[
    "impressions",
    "clicks",
    "spend",
    "conversions",
    "conversion_value",
    "ctr",
    "cpc",
    "cpm",
    "cpa",
    "roas",
]
Dimension = Literal[
    "date",
    "week",
    "month",
    "platform",
    "account_id",
    "campaign_id",
    "campaign_name",
    "ad_group_id",
    "ad_id",
]
FilterField = Literal[
    "platform", "account_id", "campaign_id", "campaign_name", "ad_group_id", "ad_id", "currency"
]
Operator = Literal["eq", "in", "contains"]

BASE_METRICS: tuple[str, ...] = (
    "impressions",
    "clicks",
    "spend",
    "conversions",
    "conversion_value",
)
DERIVED_METRICS: tuple[str, ...] = ("ctr", "cpc", "cpm", "cpa", "roas")
# Metrics whose value is an amount of money, or a ratio with money on one side
# only for roas (value / spend): all are computed within one currency.
MONEY_METRICS: frozenset[str] = frozenset(
    {"spend", "conversion_value", "cpc", "cpm", "cpa", "roas"}
)

_MAX_VALUE_CHARS = 256
_MAX_IN_VALUES = 100
_MAX_FILTERS = 20


def _clean_text(value: str) -> str:
    # NUL and lone surrogates (possible in JSON "\ud800") would fail in the
    # warehouse driver, not here: refuse them as input instead of a 500 later.
    if "\x00" in value:
        raise ValueError("must not contain NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8") from None
    return value


FilterValue = Annotated[str, Field(min_length=1, max_length=_MAX_VALUE_CHARS)]


class Filter(BaseModel):
    """`field op value`: eq and contains take one string, in takes a list."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    field: FilterField
    op: Operator
    value: (
        FilterValue | Annotated[list[FilterValue], Field(min_length=1, max_length=_MAX_IN_VALUES)]
    )

    @field_validator("value")
    @classmethod
    def _text(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            return [_clean_text(v) for v in value]
        return _clean_text(value)

    @model_validator(mode="after")
    def _shape(self) -> Filter:
        if (self.op == "in") != isinstance(self.value, list):
            raise ValueError("'in' takes a list of values; 'eq' and 'contains' take one value")
        return self


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


class QuerySpec(BaseModel):
    """A validated reporting query over one client's datasets."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    client_id: uuid.UUID
    platforms: Annotated[list[PlatformName], Field(min_length=1, max_length=8)]
    date_from: dt.date
    date_to: dt.date
    metrics: Annotated[list[Metric], Field(min_length=1, max_length=10)]
    dimensions: Annotated[list[Dimension], Field(max_length=9)] = []
    filters: Annotated[list[Filter], Field(max_length=_MAX_FILTERS)] = []
    # Keys from the requested dimensions, metrics or currency; "-key" sorts descending.
    order_by: Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=12)] = []
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 1_000

    @field_validator("platforms", "metrics", "dimensions")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("must not repeat an entry")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> QuerySpec:
        if self.date_from > self.date_to:
            raise ValueError("date_from must not be after date_to")
        if self.date_to > _add_years(self.date_from, MAX_YEARS):
            raise ValueError(f"the date range may span at most {MAX_YEARS} years")
        keys = set(self.output_columns)
        seen: set[str] = set()
        for item in self.order_by:
            key = item[1:] if item.startswith("-") else item
            if key not in keys:
                raise ValueError("order_by keys must be requested dimensions or metrics")
            if key in seen:
                raise ValueError("order_by must not repeat a key")
            seen.add(key)
        return self

    # ------------------------------------------------------------ derived views

    @property
    def has_money(self) -> bool:
        return any(m in MONEY_METRICS for m in self.metrics)

    @property
    def group_keys(self) -> list[str]:
        """Dimensions, then `currency` when a money metric is asked."""
        return [*self.dimensions, *(["currency"] if self.has_money else [])]

    @property
    def output_columns(self) -> list[str]:
        return [*self.group_keys, *self.metrics]

    @property
    def order_keys(self) -> list[tuple[str, bool]]:
        """(key, descending) pairs: the requested order, then every group key so
        that ties resolve the same way on every warehouse and in every run."""
        keys = [(item.lstrip("-"), item.startswith("-")) for item in self.order_by]
        named = {k for k, _ in keys}
        return keys + [(k, False) for k in self.group_keys if k not in named]

    def sha256(self) -> str:
        """A hash of the canonical JSON of the spec: what the audit log keeps.

        The spec holds filter values (which may be names a customer typed); only
        this digest is recorded, never the spec itself.
        """
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
