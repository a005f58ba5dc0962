"""`POST /webhooks/clerk`: Clerk's events, verified as Svix verifies them, applied once.

Verification (`verify`): Clerk sends through Svix, so a request carries
`svix-id`, `svix-timestamp` and `svix-signature`. `svix.webhooks.Webhook` is a
thin wrapper that renames those headers to Standard Webhooks' `webhook-*` and
calls `standardwebhooks.Webhook`, Svix's own reference implementation of the
scheme; we call that directly with the same renaming, because importing `svix`
loads its whole API client (pydantic models, httpx: ~0.8 s of a cold start).
The tests sign with `svix` itself and hold the two to the same decisions. It
checks the timestamp is within five minutes and that one of the header's
space-separated `v1,<base64>` signatures is the HMAC-SHA256 of
`{id}.{timestamp}.{body}` under the signing secret. The secret
(`clerk-webhook-secret`, from the secrets port) may hold two secrets
separated by whitespace during a rotation: either one verifies. Any failure
is the one fixed `Unauthorized` (401) and nothing runs; a missing or
malformed secret is `Unavailable` (503), so Svix retries.

Application (`receive`): events of the handled types are applied in one
transaction that also records the `svix-id`; a replayed id answers 200 and
changes nothing, and an id is recorded only with the work it stands for (a
failure rolls both back, and Svix's retry is applied). Other event types
answer 200 and are ignored. A deleted organization's clients are erased
after the event committed (`shared.directory.erasure`).
"""

from __future__ import annotations

import binascii
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.directory import erasure, events, store

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("cosma.directory")

SECRET_NAME = "clerk-webhook-secret"  # noqa: S105 (a secret's name, not a value)
SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")
_SVIX_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


@dataclass(frozen=True)
class Verified:
    svix_id: str
    payload: Any


@dataclass(frozen=True)
class Receipt:
    status: str  # applied | stale | replayed | ignored
    type: str

    def public(self) -> dict[str, str]:
        return {"status": self.status, "type": self.type}


def signing_secrets(runtime: Runtime) -> list[Any]:
    """The configured signing secrets as verifiers (at most two, the newest first)."""
    from standardwebhooks.webhooks import Webhook

    values = runtime.secrets.get(SECRET_NAME).replace(",", " ").split()
    if not values or len(values) > 2:
        raise errors.Unavailable("The webhook signing secret is misconfigured.")
    try:
        return [Webhook(value) for value in values]
    except Exception as exc:
        # Bad base64, or svix's own error for an empty key: a deployment fault, and
        # the message must not carry the value.
        raise errors.Unavailable("The webhook signing secret is misconfigured.") from exc


def verify(runtime: Runtime, body: bytes, headers: Mapping[str, str]) -> Verified:
    """The verified event, or the fixed Unauthorized."""
    from standardwebhooks.webhooks import WebhookVerificationError

    verifiers = signing_secrets(runtime)
    wanted = {name: headers.get(name, "") for name in SVIX_HEADERS}
    # What svix.webhooks.Webhook.verify passes on: the same values, Standard names.
    standard = {f"webhook-{name.removeprefix('svix-')}": value for name, value in wanted.items()}
    for verifier in verifiers:
        try:
            verifier.verify(body, standard, json_parse=False)
        except (WebhookVerificationError, ValueError, TypeError, binascii.Error):
            # the library's own refusals, and what a malformed header makes it raise
            # (an entry without a comma, bad base64, a body that is not UTF-8).
            continue
        break
    else:
        log.warning("webhook signature refused")
        raise errors.Unauthorized()
    svix_id = wanted["svix-id"]
    if not _SVIX_ID.match(svix_id):
        raise errors.BadRequest("The svix-id header is malformed.")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise errors.BadRequest("The body is not valid JSON.") from exc
    return Verified(svix_id, payload)


def receive(runtime: Runtime, verified: Verified) -> Receipt:
    """Apply a verified event once; see the module docstring."""
    event = events.parse(verified.payload, received_ms=int(runtime.clock() * 1000))
    if event.data is None:
        log.info("clerk event ignored", extra={"fields": {"type": event.type}})
        return Receipt("ignored", event.type)
    with store.transaction(runtime, request_id=verified.svix_id, via="webhook") as tx:
        if not tx.first_delivery(verified.svix_id):
            log.info("clerk event replayed", extra={"fields": {"type": event.type}})
            return Receipt("replayed", event.type)
        changes = store.apply(tx, event)
    status = "stale" if all(c.status == "stale" for c in changes) else "applied"
    log.info(
        "clerk event %s",
        status,
        extra={"fields": {"type": event.type, "org_ids": sorted({c.org_id for c in changes})}},
    )
    settle(runtime, changes, request_id=verified.svix_id, via="webhook")
    return Receipt(status, event.type)


def settle(runtime: Runtime, changes: list[store.Change], *, request_id: str, via: str) -> None:
    """After the commit: this instance forgets the memberships it changed, and a
    deleted organization's clients are erased (what the budget leaves, the
    reconcile finishes; the event itself stands)."""
    for change in changes:
        for user_id in change.users:
            runtime.forget_membership(user_id, change.org_id)
    deadline = runtime.clock() + runtime.settings.directory_erase_budget_s
    for change in changes:
        if not change.erase:
            continue
        try:
            erasure.erase_clients(
                runtime, change.org_id, deadline=deadline, request_id=request_id, via=via
            )
        except errors.CosmaError as exc:
            log.warning("erasure of a deleted organization deferred: %s", exc.slug)
