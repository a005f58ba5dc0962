"""Cloud Function `oauth`: connect, callback, disconnect and list ad-platform connections.

    POST   /oauth/{platform}/start   {client_id, account_ids | all_accounts}  editor/admin
    GET    /oauth/callback?code=&state=   the provider's redirect; 302 to the app
    DELETE /connections/{id}         revoke at the provider, delete the token  editor/admin
    GET    /connections?client_id=   the client's connections (no token material)
    GET    /connections/{id}/runs    the connection's sync runs, newest first, paginated
    POST   /connections/{id}/sync    make it due now (editor/admin; rate limited)

Handlers parse, make one call into `shared.connections` and respond.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import functions_framework
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from werkzeug.wrappers import Request, Response

from shared import connections, errors
from shared.http import Context, Router, json_response, redirect
from shared.sync import history

router = Router("oauth")

AccountId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    client_id: uuid.UUID
    # The ad accounts this client's connection may read; loading every account a
    # login reaches must be asked for explicitly (agency logins reach many clients).
    account_ids: list[AccountId] = Field(default_factory=list, max_length=200)
    all_accounts: bool = False

    @model_validator(mode="after")
    def _accounts_chosen(self) -> StartRequest:
        if bool(self.account_ids) == self.all_accounts:
            raise ValueError("give account_ids, or all_accounts=true, but not both")
        return self


_VSCHAR = r"^[\x20-\x7e]*$"


class CallbackQuery(BaseModel):
    # Providers append parameters of their own (Google: scope, authuser, prompt;
    # Microsoft: session_state); they are ignored, not refused.
    # RFC 6749 limits codes, states and errors to printable ASCII (VSCHAR).
    model_config = ConfigDict(extra="ignore", defer_build=True)
    code: str = Field(default="", max_length=4096, pattern=_VSCHAR)
    auth_code: str = Field(default="", max_length=4096, pattern=_VSCHAR)  # TikTok's name
    state: str = Field(default="", max_length=256, pattern=_VSCHAR)
    error: str = Field(default="", max_length=128, pattern=_VSCHAR)
    error_description: str = Field(default="", max_length=1024, pattern=_VSCHAR)


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    client_id: uuid.UUID


class RunsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    # The last run id of the previous page (`next_before` of its answer).
    before: uuid.UUID | None = None
    limit: int = Field(default=50, ge=1, le=200)


@router.route("POST", "/oauth/{platform}/start", action="oauth.start", body=StartRequest)
def start(ctx: Context, platform: str) -> Response:
    """Start connecting a platform: returns the provider's authorization URL."""
    principal = ctx.principal()
    body = ctx.body(StartRequest)
    started = connections.start(
        ctx.runtime, principal, ctx.audit, platform, str(body.client_id), list(body.account_ids)
    )
    return json_response(started.public())


def _callback_failed(ctx: Context, exc: errors.CosmaError) -> Response | None:
    """A browser sent back by the provider goes to the app with the reason, never a
    problem document; a caller asking for JSON gets the usual problem+json."""
    if ctx.wants_json():
        return None
    return redirect(ctx.settings.app_url, "/connections", {"status": "error", "reason": exc.slug})


# The provider redirects the browser here, so Clerk's same-site `__session`
# cookie stands in for the Authorization header: the single-use state, bound to
# the user who started the flow, is what keeps a forged callback from attaching
# anyone else's grant.
@router.route(
    "GET",
    "/oauth/callback",
    action="oauth.callback",
    query=CallbackQuery,
    session_cookie=True,
    on_error=_callback_failed,
)
def callback(ctx: Context) -> Response:
    """The provider's redirect: finish the connection and send the browser to the app.

    The redirect never carries the code or a token. A caller that asks for JSON
    (`Accept: application/json`, the frontend calling the API itself) gets JSON."""
    query = ctx.query(CallbackQuery)
    connected = connections.callback(
        ctx.runtime,
        ctx.principal(),
        ctx.audit,
        query.code or query.auth_code,
        query.state,
        query.error,
    )
    if ctx.wants_json():
        return json_response(connected.public())
    return redirect(
        ctx.settings.app_url,
        "/connections",
        {"status": "connected", "platform": connected.platform, "client_id": connected.client_id},
    )


@router.route("DELETE", "/connections/{connection_id}", action="oauth.disconnect")
def disconnect(ctx: Context, connection_id: str) -> Response:
    """Disconnect: revoke at the provider and delete the stored token."""
    done = connections.disconnect(ctx.runtime, ctx.principal(), ctx.audit, connection_id)
    return json_response(done.public())


@router.route("GET", "/connections", action="connections.list", query=ListQuery)
def list_connections(ctx: Context) -> Response:
    """The client's connections and their status."""
    principal = ctx.principal()
    query = ctx.query(ListQuery)
    rows = connections.list_connections(ctx.runtime, principal, ctx.audit, str(query.client_id))
    return json_response({"connections": rows})


@router.route(
    "GET", "/connections/{connection_id}/runs", action="connections.runs", query=RunsQuery
)
def connection_runs(ctx: Context, connection_id: str) -> Response:
    """The connection's sync runs, newest first: window, rows, outcome, error class."""
    principal = ctx.principal()
    query = ctx.query(RunsQuery)
    page = history.list_runs(
        ctx.runtime,
        principal,
        ctx.audit,
        connection_id,
        before=str(query.before) if query.before else None,
        limit=query.limit,
    )
    return json_response(page.public())


@router.route("POST", "/connections/{connection_id}/sync", action="connections.sync_now")
def sync_now(ctx: Context, connection_id: str) -> Response:
    """Make the connection due now; the next sync takes it (rate limited per connection)."""
    requested = history.request_sync(ctx.runtime, ctx.principal(), ctx.audit, connection_id)
    return json_response(requested.public(), status=202)


@functions_framework.http
def oauth(request: Request) -> Response:
    return router.handle(request)
