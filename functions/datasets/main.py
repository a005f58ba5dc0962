"""Cloud Function `datasets`: clients, their assignments, and one isolated warehouse
dataset per client per platform.

    POST   /clients                       create a client {name} (admin); 201
    GET    /clients                       the clients the caller sees, with their
                                          connections' platforms and status
    GET    /clients/{client_id}           one client (anyone who sees it)
    PATCH  /clients/{client_id}           rename {name} (admin)
    GET    /members                       user ids, roles, assigned clients (admin)
    GET    /clients/{client_id}/assignments            who has the client (admin)
    GET    /clients/{client_id}/assignments/{user_id}  one assignment (admin)
    PUT    /clients/{client_id}/assignments/{user_id}  assign (admin; idempotent) 204
    DELETE /clients/{client_id}/assignments/{user_id}  unassign (admin; idempotent) 204
    POST   /datasets                      provision (admin; idempotent)
    GET    /datasets?client_id=           the client's datasets (anyone who sees the client)
    DELETE /datasets/{client_id}/{platform}  drop one dataset and its rows (admin)
    DELETE /clients/{client_id}           erase the client: datasets, tokens, rows (admin)
    POST   /clients/{client_id}/export    the client's rows as Parquet objects, with a
                                          manifest and links that expire (admin)
    GET    /clients/{client_id}/exports/{export_id}/{name}
                                          download one object of an export (admin)
    GET    /audit                         the organization's audit records, hash chain
                                          included, page by page (admin)

Handlers parse, make one call into `shared.provisioning` or
`shared.directory.clients` (each authorizes in the caller's transaction
before acting, and before any warehouse call) and respond. Roles are not set
here: they come from Clerk (the `directory` function). The client routes live
with the erasure because the load balancer routes `/clients/*` by path only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import functions_framework
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from werkzeug.wrappers import Request, Response

from shared import audit, provisioning
from shared.directory import clients
from shared.http import Context, Router, json_response, no_content, validate
from shared.reporting.spec import PlatformName

router = Router("datasets")

# A platform name; whether this deployment serves it is checked by `provisioning`.
Platform = PlatformName


class ProvisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    client_id: uuid.UUID
    platform: Platform


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    client_id: uuid.UUID


class DropPath(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    client_id: uuid.UUID
    platform: Platform


# Printable text: no control characters (Postgres text cannot hold NUL either).
ClientName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]


class ClientRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    name: ClientName


class DownloadPath(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    client_id: uuid.UUID
    export_id: str = Field(pattern=r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}$")
    name: str = Field(pattern=r"^[a-z0-9_-]{1,128}$")


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    after_seq: int = Field(default=0, ge=0)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=1000, ge=1, le=10_000)


@router.route("POST", "/clients", action="clients.create", body=ClientRequest)
def create_client(ctx: Context) -> Response:
    """Create a client (admin); names are unique in the organization, whatever the case."""
    principal = ctx.principal()
    body = ctx.body(ClientRequest)
    created = clients.create_client(ctx.runtime, principal, ctx.audit, body.name)
    return json_response(created.public(), status=201)


@router.route("GET", "/clients", action="clients.list")
def list_clients(ctx: Context) -> Response:
    """The clients the caller may see, with their connections' platforms and status."""
    found = clients.list_clients(ctx.runtime, ctx.principal(), ctx.audit)
    return json_response({"clients": [c.public() for c in found]})


@router.route("GET", "/clients/{client_id}", action="clients.get")
def get_client(ctx: Context, client_id: str) -> Response:
    """One client, with its connections' platforms and status."""
    found = clients.get_client(ctx.runtime, ctx.principal(), ctx.audit, client_id)
    return json_response(found.public())


@router.route("PATCH", "/clients/{client_id}", action="clients.rename", body=ClientRequest)
def rename_client(ctx: Context, client_id: str) -> Response:
    """Rename a client (admin)."""
    principal = ctx.principal()
    body = ctx.body(ClientRequest)
    found = clients.rename_client(ctx.runtime, principal, ctx.audit, client_id, body.name)
    return json_response(found.public())


@router.route("GET", "/members", action="members.list")
def list_members(ctx: Context) -> Response:
    """The organization's members: user id, role (from Clerk), assigned clients (admin)."""
    members = clients.list_members(ctx.runtime, ctx.principal(), ctx.audit)
    return json_response({"members": members})


@router.route("GET", "/clients/{client_id}/assignments", action="assignments.list")
def list_assignments(ctx: Context, client_id: str) -> Response:
    """Who is assigned the client (admin)."""
    found = clients.list_assignments(ctx.runtime, ctx.principal(), ctx.audit, client_id)
    return json_response({"assignments": found})


@router.route("GET", "/clients/{client_id}/assignments/{user_id}", action="assignments.get")
def get_assignment(ctx: Context, client_id: str, user_id: str) -> Response:
    """One assignment (admin); 404 when the member is not assigned the client."""
    found = clients.get_assignment(ctx.runtime, ctx.principal(), ctx.audit, client_id, user_id)
    return json_response(found)


@router.route("PUT", "/clients/{client_id}/assignments/{user_id}", action="assignments.put")
def assign(ctx: Context, client_id: str, user_id: str) -> Response:
    """Assign the client to a member (admin; idempotent)."""
    clients.assign(ctx.runtime, ctx.principal(), ctx.audit, client_id, user_id)
    return no_content()


@router.route("DELETE", "/clients/{client_id}/assignments/{user_id}", action="assignments.delete")
def unassign(ctx: Context, client_id: str, user_id: str) -> Response:
    """Take the client from a member (admin; idempotent)."""
    clients.unassign(ctx.runtime, ctx.principal(), ctx.audit, client_id, user_id)
    return no_content()


@router.route("POST", "/datasets", action="datasets.provision", body=ProvisionRequest)
def provision(ctx: Context) -> Response:
    """Provision the dataset of a client and platform."""
    principal = ctx.principal()
    body = ctx.body(ProvisionRequest)
    record = provisioning.provision(
        ctx.runtime, principal, ctx.audit, str(body.client_id), body.platform
    )
    return json_response(record.public())


@router.route("GET", "/datasets", action="datasets.list", query=ListQuery)
def list_datasets(ctx: Context) -> Response:
    """List the datasets of a client."""
    principal = ctx.principal()
    query = ctx.query(ListQuery)
    records = provisioning.list_datasets(ctx.runtime, principal, ctx.audit, str(query.client_id))
    return json_response({"datasets": [r.public() for r in records]})


@router.route("DELETE", "/datasets/{client_id}/{platform}", action="datasets.drop")
def drop(ctx: Context, client_id: str, platform: str) -> Response:
    """Drop the dataset of a client and platform, with its rows."""
    principal = ctx.principal()
    path = validate(DropPath, {"client_id": client_id, "platform": platform})
    provisioning.drop(ctx.runtime, principal, ctx.audit, str(path.client_id), path.platform)
    return no_content()


@router.route("DELETE", "/clients/{client_id}", action="clients.erase")
def erase(ctx: Context, client_id: str) -> Response:
    """Erase a client: its datasets, its tokens and its rows; the audit trail stays."""
    erasure = provisioning.erase_client(ctx.runtime, ctx.principal(), ctx.audit, client_id)
    return json_response(erasure.public())


@router.route("POST", "/clients/{client_id}/export", action="clients.export")
def export(ctx: Context, client_id: str) -> Response:
    """Export a client's rows as Parquet objects, with a manifest and download links."""
    done = provisioning.export_client(ctx.runtime, ctx.principal(), ctx.audit, client_id)
    return json_response(done.public(ctx.runtime.settings.public_url))


@router.route(
    "GET", "/clients/{client_id}/exports/{export_id}/{name}", action="clients.export_download"
)
def export_download(ctx: Context, client_id: str, export_id: str, name: str) -> Response:
    """Download one object of an export until its link expires."""
    path = validate(DownloadPath, {"client_id": client_id, "export_id": export_id, "name": name})
    download = provisioning.export_download(
        ctx.runtime, ctx.principal(), ctx.audit, str(path.client_id), path.export_id, path.name
    )
    # Streamed in pieces: an export never sits whole in this function's memory.
    return Response(
        download.chunks,
        mimetype=download.content_type,
        headers={
            "Content-Length": str(download.size),
            "Content-Disposition": f'attachment; filename="{download.name}"',
        },
        direct_passthrough=True,
    )


@router.route("GET", "/audit", action="audit.export", query=AuditQuery)
def audit_export(ctx: Context) -> Response:
    """The organization's audit records (admin), with the hash chain to verify them."""
    principal = ctx.principal()
    page = ctx.query(AuditQuery)
    body = audit.export_page(ctx.runtime.db, principal, ctx.audit, **page.model_dump())
    return json_response(body)


@functions_framework.http
def datasets(request: Request) -> Response:
    return router.handle(request)
