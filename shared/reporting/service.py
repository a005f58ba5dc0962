"""`run_query`: authorize, resolve the client's datasets, run one statement, audit.

Order of events (each step's failure stops the ones after it):

0. every platform asked for must be one this deployment serves
   (`Runtime.platforms`), else 422, as for any other unknown name;
1. one read in the caller's claims (one statement, one round trip): the
   client's organization, checked by `require_found(..., "read", ...)` (404
   for a client of another organization, an unassigned one, or none), and the
   client's datasets for the requested platforms with their location (where
   they were created: the organization's), all read under RLS. A platform
   without a ready dataset is a 404 naming the platform: an empty answer would
   look like "no spend" when the truth is "never connected";
2. the statement from `shared.reporting.sql`, on the warehouse, with the
   bytes-billed cap, the timeout and job labels (org, client) from settings;
3. a second short transaction (one round trip, `RequestAudit.record_alone`) writes the one
   audit record: the client and a hash of the spec (never filter values). The
   Postgres connection is not held while the warehouse works (a BigQuery job
   can take seconds; the pool is small and sits behind a transaction-mode
   pooler). If step 2 fails, the
   HTTP layer writes the failure record instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql as psql

from shared import errors
from shared.policy import require_found
from shared.reporting import sql
from shared.reporting.spec import QuerySpec
from shared.warehouse.ids import label_value

if TYPE_CHECKING:
    from shared.audit import RequestAudit
    from shared.principal import Principal
    from shared.runtime import Runtime

# Authorization and the datasets in one statement and one round trip: the
# client's organization (for `require_found`), then its datasets for the asked
# platforms with their location (each dataset was created in its organization's
# location, and provisioning refuses to move one), all read under the caller's RLS.
_PLAN = (
    "select c.org_id, d.platform, d.dataset_id, d.status, d.location"
    " from clients c"
    " left join datasets d on d.client_id = c.id and d.platform = any({platforms})"
    " where c.id = {client}"
)


@dataclass(frozen=True)
class Plan:
    """What step 1 resolved: where to read, in which location."""

    client_id: str
    location: str
    tables: list[tuple[str, str]]  # (platform, dataset id), in the spec's platform order


@dataclass(frozen=True)
class Report:
    columns: list[str]
    rows: list[list[Any]]
    totals: list[dict[str, Any]]
    truncated: bool
    bytes_processed: int | None

    def public(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "rows": self.rows,
            "totals": self.totals,
            "truncated": self.truncated,
            "bytes_processed": self.bytes_processed,
        }


def plan(runtime: Runtime, principal: Principal, spec: QuerySpec) -> Plan:
    """Authorize, then find the datasets; see step 1 in the module docstring."""
    for platform in spec.platforms:
        runtime.platforms.check(platform, field="platforms")
    client_id = str(spec.client_id)
    statement = psql.SQL(_PLAN).format(
        platforms=psql.Literal(list(spec.platforms)), client=psql.Literal(client_id)
    )
    rows = runtime.db.read_once(principal.claims(), statement)
    require_found(principal, "read", client_id, rows[0][0] if rows else None)
    found = {
        platform: (dataset_id, location)
        for _, platform, dataset_id, status, location in rows
        if status == "ready"
    }
    missing = [p for p in spec.platforms if p not in found]
    if missing:
        raise errors.NotFound(f"The client has no dataset for platform {missing[0]}.")
    locations = {location for _, location in found.values()}
    if len(locations) != 1:  # one organization, one location: never expected
        raise errors.Conflict("The client's datasets are in more than one location.")
    return Plan(
        client_id=client_id,
        location=locations.pop(),
        tables=[(p, found[p][0]) for p in spec.platforms],
    )


def execute(runtime: Runtime, principal: Principal, spec: QuerySpec, where: Plan) -> Report:
    """Run the statement for `spec` over the planned datasets and shape the answer."""
    warehouse = runtime.warehouse
    settings = runtime.settings
    statement = sql.build(
        spec,
        [(platform, warehouse.table_ref(dataset_id)) for platform, dataset_id in where.tables],
        warehouse.dialect,
    )
    result = warehouse.query(
        statement.sql,
        statement.params,
        location=where.location,
        labels={
            "org": label_value(principal.org_id),
            "client": where.client_id,
            "env": label_value(settings.env.lower()),
            "cosma_op": "query",
        },
        max_bytes_billed=settings.bytes_billed_cap,
        timeout_s=settings.query_timeout_s,
        datasets=[dataset_id for _, dataset_id in where.tables],
    )
    return _shape(spec, statement.columns, result.rows, result.bytes_processed)


def _shape(
    spec: QuerySpec, columns: list[str], rows: list[tuple[Any, ...]], bytes_processed: int | None
) -> Report:
    detail: list[list[Any]] = []
    totals: list[dict[str, Any]] = []
    total_columns = [*(["currency"] if spec.has_money else []), *spec.metrics]
    at = {c: i for i, c in enumerate(columns, start=2)}
    for row in rows:
        if len(row) != len(columns) + 2:
            raise ValueError("a result row does not match the statement's columns")
        if row[0] != 0:
            totals.append({c: _plain(row[at[c]]) for c in total_columns})
        elif len(detail) <= spec.limit:  # one row past the limit tells `truncated`
            detail.append([_plain(v) for v in row[2:]])
    truncated = len(detail) > spec.limit
    return Report(columns, detail[: spec.limit], totals, truncated, bytes_processed)


_PLAIN = frozenset({int, float, str, bool, type(None)})


def _plain(value: Any) -> Any:
    # DuckDB sums BIGINT into HUGEINT and BigQuery may hand back Decimal: JSON wants
    # plain ints and floats (dates are rendered ISO by the JSON encoder). The exact
    # type test first: this runs for every cell of every answer.
    if type(value) in _PLAIN or isinstance(value, int | float | str):
        return value
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def run_query(
    runtime: Runtime, principal: Principal, spec: QuerySpec, audit: RequestAudit
) -> Report:
    """The whole query: authorize and plan, run, audit (the request's one record)."""
    where = plan(runtime, principal, spec)
    report = execute(runtime, principal, spec, where)
    audit.record_alone(
        principal, resource=f"client:{where.client_id}", detail=f"spec_sha256={spec.sha256()}"
    )
    return report
