"""Cloud Function `directory`: Clerk's organizations and members into ours.

    POST /webhooks/clerk        Clerk's events through Svix: verified with the `svix`
                                library (401 otherwise), applied once per `svix-id`
    POST /directory/reconcile   Cloud Scheduler's OIDC token only: compare with Clerk's
                                Backend API and apply what differs

Neither route has a user principal, so no request record is written by the
HTTP layer: each applied change writes its own (actor `clerk`) in the
organization it changed. A refused signature or token counts against the
caller's IP like any failed authentication.
"""

from __future__ import annotations

import functions_framework
from werkzeug.wrappers import Request, Response

from shared import errors
from shared.directory import reconcile as reconciliation
from shared.directory import webhook
from shared.http import Context, Router, json_response

router = Router("directory")


@router.route("POST", "/webhooks/clerk")
def clerk_webhook(ctx: Context) -> Response:
    """Clerk's webhook: organizations, memberships and user deletion."""
    body = ctx.request.get_data(cache=True)
    headers = {name: ctx.request.headers.get(name, "") for name in webhook.SVIX_HEADERS}
    try:
        verified = webhook.verify(ctx.runtime, body, headers)
    except errors.Unauthorized:
        # The signature is this route's credential: a refusal (missing or wrong)
        # counts against the IP like a bad token; a good one costs no bucket.
        ctx.runtime.rate_limiter.failed_authentication(ctx.client_ip)
        raise
    return json_response(webhook.receive(ctx.runtime, verified).public())


@router.route("POST", "/directory/reconcile")
def reconcile(ctx: Context) -> Response:
    """Reconcile with Clerk's Backend API (Cloud Scheduler only)."""
    ctx.authorize_with(lambda header: reconciliation.verify_scheduler(header, ctx.runtime))(
        ctx.authorization()
    )
    summary = reconciliation.run(ctx.runtime, request_id=ctx.request_id)
    return json_response(summary.public())


@functions_framework.http
def directory(request: Request) -> Response:
    return router.handle(request)
