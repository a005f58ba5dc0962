"""Clerk's objects, as far as the directory reads them: organizations and memberships.

The shapes are Clerk's (`@clerk/backend` `OrganizationJSON`,
`OrganizationMembershipJSON`, `DeletedObjectJSON`; the same objects its
Backend API lists): a webhook event is an envelope
`{"object": "event", "type", "data", "timestamp", "instance_id",
"event_attributes"}`, with `timestamp` and every `*_at` in milliseconds.

Only what the directory keeps is read: ids, the organization's name and its
`public_metadata.data_location`, the membership's role, the versions. Names,
e-mail addresses and the rest of `public_user_data`, and the request
attributes (client IP, user agent) Clerk sends along, are ignored here and
stored nowhere. Unknown fields are allowed: Clerk adds fields over time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import errors

CLERK_ID = r"^[A-Za-z0-9_-]{1,64}$"
ORGANIZATION_EVENTS = ("organization.created", "organization.updated", "organization.deleted")
MEMBERSHIP_EVENTS = (
    "organizationMembership.created",
    "organizationMembership.updated",
    "organizationMembership.deleted",
)
USER_EVENTS = ("user.deleted",)
HANDLED = (*ORGANIZATION_EVENTS, *MEMBERSHIP_EVENTS, *USER_EVENTS)
NAME_MAX = 200  # our organizations.name column


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    # `public_metadata.data_location` as Clerk holds it (None: not set).
    data_location: str | None
    version: int  # updated_at, ms


@dataclass(frozen=True)
class Membership:
    id: str  # orgmem_..., for the record only: our row is keyed by (organization, user)
    organization: Organization
    user_id: str
    role: str  # Clerk's role key, e.g. "org:admin"
    version: int  # updated_at, ms


@dataclass(frozen=True)
class Deleted:
    id: str


@dataclass(frozen=True)
class Event:
    type: str
    # The event's time (ms): the version of a deletion, whose object carries none.
    timestamp: int
    data: Organization | Membership | Deleted | None  # None: a type we do not handle


_MODELS: Any = None


def _models() -> Any:
    """The pydantic models, built on first use (pydantic loads with the first event)."""
    global _MODELS
    if _MODELS is None:
        from pydantic import BaseModel, ConfigDict, Field

        class Model(BaseModel):
            model_config = ConfigDict(extra="ignore")

        class OrganizationJSON(Model):
            id: str = Field(pattern=CLERK_ID)
            name: str = Field(min_length=1, max_length=1000)
            public_metadata: dict[str, Any] | None = None
            updated_at: int = Field(ge=0)

        class PublicUserDataJSON(Model):
            user_id: str = Field(pattern=CLERK_ID)

        class MembershipJSON(Model):
            id: str = Field(pattern=CLERK_ID)
            role: str = Field(min_length=1, max_length=64)
            organization: OrganizationJSON
            public_user_data: PublicUserDataJSON
            updated_at: int = Field(ge=0)

        class DeletedJSON(Model):
            id: str = Field(pattern=CLERK_ID)
            deleted: bool

        class EnvelopeJSON(Model):
            type: str = Field(min_length=1, max_length=100)
            data: dict[str, Any]
            timestamp: int | None = Field(default=None, ge=0)

        _MODELS = (EnvelopeJSON, OrganizationJSON, MembershipJSON, DeletedJSON)
    return _MODELS


def _validate(model: Any, data: Any) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Locations only: the payload holds names and e-mail addresses.
        problems = [
            {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise errors.ValidationFailed("The event is not a Clerk event we read.", problems) from None


def _ms(value: int) -> int:
    """Clerk's times are milliseconds; a value in seconds is scaled (it cannot be a
    date before 1973 in ms)."""
    return value * 1000 if 0 < value < 100_000_000_000 else value


def organization(data: Any) -> Organization:
    _, organization_json, _, _ = _models()
    parsed = _validate(organization_json, data)
    return _organization(parsed)


def _organization(parsed: Any) -> Organization:
    metadata = parsed.public_metadata or {}
    location = metadata.get("data_location")
    return Organization(
        id=parsed.id,
        name=parsed.name.strip()[:NAME_MAX] or parsed.id,
        data_location=location if isinstance(location, str) else None,
        version=_ms(parsed.updated_at),
    )


def membership(data: Any) -> Membership:
    _, _, membership_json, _ = _models()
    parsed = _validate(membership_json, data)
    return Membership(
        id=parsed.id,
        organization=_organization(parsed.organization),
        user_id=parsed.public_user_data.user_id,
        role=parsed.role.strip(),
        version=_ms(parsed.updated_at),
    )


def deleted(data: Any) -> Deleted:
    _, _, _, deleted_json = _models()
    return Deleted(_validate(deleted_json, data).id)


def parse(payload: Any, *, received_ms: int) -> Event:
    """A verified webhook body (parsed JSON) as an `Event`; `received_ms` stands in
    for an envelope without a timestamp."""
    envelope_json, *_ = _models()
    envelope = _validate(envelope_json, payload)
    timestamp = _ms(envelope.timestamp) if envelope.timestamp else received_ms
    kind = envelope.type
    data: Organization | Membership | Deleted | None = None
    if kind in ("organization.created", "organization.updated"):
        data = organization(envelope.data)
    elif kind in MEMBERSHIP_EVENTS:
        data = membership(envelope.data)
    elif kind in ("organization.deleted", "user.deleted"):
        data = deleted(envelope.data)
    return Event(kind, timestamp, data)
