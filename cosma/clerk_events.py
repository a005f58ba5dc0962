"""Clerk's webhook events, made and signed locally: Clerk's part of the directory, played here.

`cosma dev-token` creates organizations and members the way Clerk does in
production: it sends `organization.created` and
`organizationMembership.created` to the local server's `POST /webhooks/clerk`,
signed with the `svix` library under the local signing secret, so they take
the same path as Clerk's own. The objects have the shapes of Clerk's
`OrganizationJSON` and `OrganizationMembershipJSON` (held against the models
of Clerk's Python SDK in tests/integration/test_clerk_shapes.py).

The local signing secret: `CLERK_WEBHOOK_SECRET` when set, else
`<state>/secrets/clerk-webhook-secret`, created on first run (0600). Nothing
here is deployed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

SECRET_FILE = "clerk-webhook-secret"  # noqa: S105 (a file name, not a value)
ENV = "CLERK_WEBHOOK_SECRET"
INSTANCE_ID = "ins_local"


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- the secret


def new_secret() -> str:
    """A signing secret in Svix's form: `whsec_` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def ensure_secret(secrets_dir: Path) -> Path:
    """The local signing secret's file, created on first use (directory 0700, file 0600)."""
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = secrets_dir / SECRET_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path  # a concurrent first run wrote it
        with os.fdopen(fd, "w") as handle:
            handle.write(new_secret())
    return path


def local_secret_or_create(secrets_dir: Path) -> str:
    return ensure_secret(secrets_dir).read_text().strip()


def local_secret(secrets_dir: Path) -> str:
    """What the local server verifies with: the environment's, else the file's."""
    value = os.environ.get(ENV, "").strip()
    if value:
        return value
    path = secrets_dir / SECRET_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no webhook signing secret: start the local server (`make run`) once, or set {ENV}"
        )
    return path.read_text().strip()


# ---------------------------------------------------------------- Clerk's objects


def organization(
    org_id: str,
    name: str,
    *,
    data_location: str | None = None,
    created_at: int | None = None,
    updated_at: int | None = None,
) -> dict[str, Any]:
    """An `OrganizationJSON`."""
    updated = now_ms() if updated_at is None else updated_at
    metadata: dict[str, Any] = {} if data_location is None else {"data_location": data_location}
    return {
        "object": "organization",
        "id": org_id,
        "name": name,
        "slug": org_id.lower().replace("_", "-"),
        "image_url": "",
        "has_image": False,
        "members_count": 1,
        "pending_invitations_count": 0,
        "max_allowed_memberships": 0,
        "admin_delete_enabled": True,
        "public_metadata": metadata,
        "private_metadata": {},
        "created_by": "",
        "created_at": updated if created_at is None else created_at,
        "updated_at": updated,
    }


def membership(
    org: dict[str, Any],
    user_id: str,
    role: str,
    *,
    membership_id: str | None = None,
    created_at: int | None = None,
    updated_at: int | None = None,
) -> dict[str, Any]:
    """An `OrganizationMembershipJSON`, with the public user data Clerk sends (an
    identifier, names: the directory stores none of them)."""
    updated = now_ms() if updated_at is None else updated_at
    return {
        "object": "organization_membership",
        "id": membership_id or f"orgmem_{uuid.uuid4().hex[:24]}",
        "role": role,
        "role_name": role.removeprefix("org:").replace("_", " ").title(),
        "permissions": [],
        "public_metadata": {},
        "private_metadata": {},
        "organization": org,
        "public_user_data": {
            "user_id": user_id,
            "first_name": "Local",
            "last_name": "User",
            "profile_image_url": "",
            "image_url": "",
            "has_image": False,
            "identifier": f"{user_id}@example.invalid",
        },
        "created_at": updated if created_at is None else created_at,
        "updated_at": updated,
    }


def deleted(kind: str, object_id: str) -> dict[str, Any]:
    """A `DeletedObjectJSON` (what `organization.deleted` and `user.deleted` carry)."""
    return {"object": kind, "id": object_id, "deleted": True}


def event(kind: str, data: dict[str, Any], *, timestamp: int | None = None) -> dict[str, Any]:
    """The envelope Clerk sends: type, data, the event's time (ms), the instance."""
    return {
        "data": data,
        "event_attributes": {"http_request": {"client_ip": "127.0.0.1", "user_agent": "cosma"}},
        "instance_id": INSTANCE_ID,
        "object": "event",
        "timestamp": now_ms() if timestamp is None else timestamp,
        "type": kind,
    }


# ---------------------------------------------------------------- signing and sending


def signed(
    secret: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, str]:
    """The three Svix headers for `body`, signed by the `svix` library."""
    from svix.webhooks import Webhook

    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or dt.datetime.now(dt.UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": signature,
    }


def send(base_url: str, secret: str, payload: dict[str, Any], *, timeout: float = 10.0) -> int:
    """POST one signed event to `<base_url>/webhooks/clerk`; the status code."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", **signed(secret, body)}
    url = base_url.rstrip("/") + "/webhooks/clerk"
    if not url.startswith(("http://", "https://")):
        raise ValueError("the local server URL must be http(s)")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code)
