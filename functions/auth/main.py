"""Cloud Function `auth`: who the caller is, as Cosma sees them."""

from __future__ import annotations

import functions_framework
from werkzeug.wrappers import Request, Response

from shared import security_txt
from shared.http import Context, Router, json_response

router = Router("auth")


@router.route("GET", "/auth/session", action="auth.session")
def session(ctx: Context) -> Response:
    # The principal only: user, organization, role and assigned clients; never the token.
    return json_response(ctx.principal().public())


@router.route("GET", security_txt.PATH)
def security_txt_file(ctx: Context) -> Response:
    """RFC 9116 security.txt (the load balancer sends /.well-known/* here)."""
    return Response(security_txt.render(ctx.settings.public_url), mimetype="text/plain")


@functions_framework.http
def auth(request: Request) -> Response:
    return router.handle(request)
