"""Reporting queries over a client's datasets: the spec, its SQL, the service.

    from shared.reporting import QuerySpec, run_query

`spec` validates what a caller may ask, `sql` turns a spec into one statement
for BigQuery or DuckDB, `service` authorizes, runs it and audits.
"""

from shared.reporting.service import Report, run_query
from shared.reporting.spec import QuerySpec

__all__ = ["QuerySpec", "Report", "run_query"]
