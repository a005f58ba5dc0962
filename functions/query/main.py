"""Cloud Function `query`: validated reporting queries over a client's datasets.

    POST /query    a `QuerySpec` (see shared.reporting.spec) -> columns, rows, totals

The handler parses the spec (422 on anything outside the allow-lists) and makes
one call into `shared.reporting`, which authorizes before any warehouse call
and writes the audit record (a hash of the spec, never its filter values).
"""

from __future__ import annotations

import functions_framework
from werkzeug.wrappers import Request, Response

from shared.http import Context, Router, json_response
from shared.reporting import QuerySpec, run_query

router = Router("query")


@router.route("POST", "/query", action="query.run", body=QuerySpec)
def query_report(ctx: Context) -> Response:
    """Run a reporting query over a client's datasets."""
    principal = ctx.principal()
    spec = ctx.body(QuerySpec)
    report = run_query(ctx.runtime, principal, spec, ctx.audit)
    return json_response(report.public())


@functions_framework.http
def query(request: Request) -> Response:
    return router.handle(request)
