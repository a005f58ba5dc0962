"""Cloud Function `sync`: called by Cloud Scheduler with a Google-signed OIDC token.

    POST /sync   verify the token (401 and nothing runs otherwise), then sync the
                 due connections within the time budget and answer what was done

The route has no user principal, so no request audit record is written; each
connection run writes its own (actor "system:sync"). A refused token counts
against the caller's IP like any failed authentication.
"""

from __future__ import annotations

import functions_framework
from werkzeug.wrappers import Request, Response

from shared.http import Context, Router, json_response
from shared.sync import runner, trigger

router = Router("sync")


@router.route("POST", "/sync")
def sync_due(ctx: Context) -> Response:
    """Sync the due connections (Cloud Scheduler only)."""
    ctx.authorize_with(lambda header: trigger.verify(header, ctx.settings))(ctx.authorization())
    report = runner.run(ctx.runtime, owner=runner.new_owner(f"sync:{ctx.request_id}"))
    return json_response(report.public())


@functions_framework.http
def sync(request: Request) -> Response:
    return router.handle(request)
