"""Clerk's side of the directory in tests: signed webhooks and a Backend API on loopback.

`Webhooks` posts Clerk-shaped events (built by `cosma.clerk_events`, the same
builders `cosma dev-token` uses) signed by the `svix` library itself, through
a werkzeug test client, so they take the whole HTTP path.

`BackendApi` is a WSGI app that speaks the list endpoints of Clerk's Backend
API the reconcile reads, with Clerk's paging (`limit`, `offset`,
`total_count`), `order_by=+created_at`, the `user_id` filter and bearer auth.
Its answers are checked against Clerk's own Python SDK
(tests/integration/test_clerk_shapes.py).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from cosma import clerk_events
from tests.support.seed import new_id

__all__ = ["BackendApi", "Webhooks", "clerk_events", "new_id"]


class Webhooks:
    def __init__(self, client: Client, secret: str) -> None:
        self.client = client
        self.secret = secret

    def post(
        self,
        payload: dict[str, Any] | bytes,
        *,
        secret: str | None = None,
        msg_id: str | None = None,
        at: dt.datetime | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        signed = clerk_events.signed(secret or self.secret, body, msg_id=msg_id, at=at)
        return self.client.post(
            "/webhooks/clerk",
            data=body,
            headers={"Content-Type": "application/json", **signed, **(headers or {})},
        )

    def send(self, kind: str, data: dict[str, Any], **kw: Any) -> Any:
        """One event of `kind`, asserting it was answered 200."""
        timestamp = kw.pop("timestamp", None)
        response = self.post(clerk_events.event(kind, data, timestamp=timestamp), **kw)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    # The usual pair: an organization and its first member.
    def member(
        self,
        org_id: str,
        user_id: str,
        role: str = "org:admin",
        *,
        updated_at: int | None = None,
        data_location: str | None = None,
    ) -> dict[str, Any]:
        org = clerk_events.organization(
            org_id, f"Agency {org_id[-6:]}", data_location=data_location
        )
        self.send("organization.created", org)
        membership = clerk_events.membership(org, user_id, role, updated_at=updated_at)
        self.send("organizationMembership.created", membership)
        return membership


def svix_secret() -> str:
    return clerk_events.new_secret()


class BackendApi:
    """Organizations and memberships held in memory, served as Clerk serves them."""

    def __init__(self, secret_key: str = "") -> None:
        self.secret_key = secret_key or f"sk_test_{uuid.uuid4().hex}"
        self.organizations: dict[str, dict[str, Any]] = {}
        self.memberships: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[tuple[str, dict[str, list[str]]]] = []
        # Called before answering a list page (org id or "", offset): lets a test
        # change the data while a list is being read, as real users would.
        self.before_page: Callable[[str, int], None] | None = None
        self.lock = threading.Lock()

    # ------------------------------------------------------------ data

    def add_org(self, org_id: str | None = None, **kw: Any) -> dict[str, Any]:
        org_id = org_id or new_id("org")
        org = clerk_events.organization(org_id, kw.pop("name", f"Agency {org_id[-6:]}"), **kw)
        self.organizations[org_id] = org
        self.memberships.setdefault(org_id, [])
        return org

    def add_member(self, org_id: str, user_id: str, role: str, **kw: Any) -> dict[str, Any]:
        member = clerk_events.membership(self.organizations[org_id], user_id, role, **kw)
        self.memberships[org_id].append(member)
        return member

    def remove_member(self, org_id: str, user_id: str) -> None:
        self.memberships[org_id] = [
            m for m in self.memberships[org_id] if m["public_user_data"]["user_id"] != user_id
        ]

    def remove_org(self, org_id: str) -> None:
        self.organizations.pop(org_id, None)
        self.memberships.pop(org_id, None)

    # ------------------------------------------------------------ HTTP

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.calls.append((request.path, request.args.to_dict(flat=False)))
        response = self._answer(request)
        return response(environ, start_response)

    @staticmethod
    def _json(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def _error(self, status: int, code: str) -> Response:
        # Clerk's error shape: {"errors": [{"message", "long_message", "code"}], "clerk_trace_id"}
        return self._json(
            {
                "errors": [{"message": code.replace("_", " "), "long_message": code, "code": code}],
                "clerk_trace_id": uuid.uuid4().hex,
            },
            status,
        )

    def _answer(self, request: Request) -> Response:
        if request.headers.get("Authorization", "") != f"Bearer {self.secret_key}":
            return self._error(401, "authentication_invalid")
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["v1"]:
            parts = parts[1:]
        if parts == ["organizations"]:
            return self._page(request, "", list(self.organizations.values()))
        if len(parts) == 2 and parts[0] == "organizations":
            org = self.organizations.get(parts[1])
            return self._json(org) if org else self._error(404, "resource_not_found")
        if len(parts) == 3 and parts[0] == "organizations" and parts[2] == "memberships":
            if parts[1] not in self.organizations:
                return self._error(404, "resource_not_found")
            items = list(self.memberships[parts[1]])
            users = request.args.getlist("user_id")
            if users:
                items = [m for m in items if m["public_user_data"]["user_id"] in users]
            return self._page(request, parts[1], items)
        return self._error(404, "resource_not_found")

    def _page(self, request: Request, org_id: str, items: list[dict[str, Any]]) -> Response:
        try:
            limit = int(request.args.get("limit", "10"))
            offset = int(request.args.get("offset", "0"))
        except ValueError:
            return self._error(422, "form_param_format_invalid")
        if not 1 <= limit <= 500 or offset < 0:
            return self._error(422, "form_param_value_invalid")
        if self.before_page is not None:
            self.before_page(org_id, offset)
            # The data may have changed: read it again, as a server would.
            items = (
                list(self.organizations.values())
                if not org_id
                else [
                    m
                    for m in self.memberships.get(org_id, [])
                    if not request.args.getlist("user_id")
                    or m["public_user_data"]["user_id"] in request.args.getlist("user_id")
                ]
            )
        order = request.args.get("order_by", "-created_at")
        items = sorted(
            items, key=lambda o: (o["created_at"], o["id"]), reverse=order.startswith("-")
        )
        return self._json({"data": items[offset : offset + limit], "total_count": len(items)})
