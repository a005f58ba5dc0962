"""Our Clerk stand-ins against Clerk's own artifact: the `clerk-backend-api` SDK (7.x).

The objects the tests and `cosma dev-token` send as webhook payloads
(`cosma.clerk_events`) must be Clerk's `Organization`, `OrganizationMembership`
and `DeletedObject`; the local Backend API (`tests.support.clerk.BackendApi`)
must answer the list endpoints so that the SDK itself pages through them.
If Clerk's models change in a way our stand-ins miss, these fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clerk_backend_api import Clerk, models

from cosma import clerk_events
from shared import clerk_api
from shared.directory import events
from tests.support.clerk import BackendApi, new_id
from tests.support.servers import serve


def test_event_payloads_are_clerks_models() -> None:
    org = clerk_events.organization(new_id("org"), "Acme", data_location="EU")
    parsed_org = models.Organization.model_validate(org)
    assert parsed_org.public_metadata == {"data_location": "EU"}
    membership = clerk_events.membership(org, new_id("user"), "org:admin")
    parsed = models.OrganizationMembership.model_validate(membership)
    assert parsed.organization.id == org["id"]
    assert parsed.public_user_data is not None
    assert parsed.public_user_data.user_id == membership["public_user_data"]["user_id"]
    for kind in ("organization", "user"):
        deleted = models.DeletedObject.model_validate(clerk_events.deleted(kind, new_id(kind)))
        assert deleted.deleted is True
    # ... and what the directory reads of them.
    read = events.membership(membership)
    assert (read.organization.id, read.user_id, read.role) == (
        org["id"],
        membership["public_user_data"]["user_id"],
        "org:admin",
    )
    assert read.organization.data_location == "EU"
    assert read.version == membership["updated_at"]


def test_the_envelope_is_clerks() -> None:
    # `@clerk/backend` Webhook<EvtType, Data>: type, object 'event', data,
    # event_attributes.http_request; Clerk's docs add timestamp (ms) and instance_id.
    envelope = clerk_events.event("organization.created", clerk_events.organization("org_1", "A"))
    assert envelope["object"] == "event"
    assert set(envelope) == {
        "type",
        "object",
        "data",
        "event_attributes",
        "timestamp",
        "instance_id",
    }
    assert set(envelope["event_attributes"]["http_request"]) == {"client_ip", "user_agent"}
    assert envelope["timestamp"] > 10**12  # milliseconds


@pytest.fixture
def api() -> Iterator[tuple[BackendApi, str]]:
    fake = BackendApi()
    with serve(fake) as url:
        yield fake, f"{url}/v1"


def test_clerks_sdk_pages_through_our_backend_api(api: tuple[BackendApi, str]) -> None:
    fake, url = api
    orgs = [fake.add_org(created_at=1_700_000_000_000 + i) for i in range(5)]
    for i in range(3):
        fake.add_member(
            orgs[0]["id"], new_id("user"), "org:member", created_at=1_700_000_000_000 + i
        )
    sdk = Clerk(bearer_auth=fake.secret_key, server_url=url)
    first = sdk.organizations.list(limit=2, offset=0, order_by="+created_at")
    assert first.total_count == 5
    assert [o.id for o in first.data] == [o["id"] for o in orgs[:2]]
    last = sdk.organizations.list(limit=2, offset=4, order_by="+created_at")
    assert [o.id for o in last.data] == [orgs[4]["id"]]
    members = sdk.organization_memberships.list(organization_id=orgs[0]["id"], limit=2, offset=2)
    assert members.total_count == 3 and len(members.data) == 1
    assert isinstance(members.data[0], models.OrganizationMembership)
    wanted = fake.memberships[orgs[0]["id"]][1]["public_user_data"]["user_id"]
    only = sdk.organization_memberships.list(organization_id=orgs[0]["id"], user_id=[wanted])
    assert [m.public_user_data.user_id for m in only.data if m.public_user_data] == [wanted]
    one = sdk.organizations.get(organization_id=orgs[3]["id"])
    assert one.id == orgs[3]["id"]
    with pytest.raises(models.ClerkErrors):
        sdk.organizations.get(organization_id="org_missing")
    # Clerk answers a bad key 401, which the SDK raises as its generic API error.
    with pytest.raises(models.SDKError, match="Status 401"):
        Clerk(bearer_auth="sk_wrong", server_url=url).organizations.list()


def test_our_client_reads_what_the_sdk_reads(api: tuple[BackendApi, str]) -> None:
    fake, url = api
    orgs = [fake.add_org(created_at=1_700_000_000_000 + i) for i in range(7)]
    for i in range(5):
        fake.add_member(
            orgs[2]["id"], new_id("user"), "org:admin", created_at=1_700_000_000_000 + i
        )
    ours = clerk_api.ClerkBackend(url, fake.secret_key, page_size=3)
    sdk = Clerk(bearer_auth=fake.secret_key, server_url=url)
    assert [o["id"] for o in ours.organizations()] == [
        o.id for o in sdk.organizations.list(limit=100, order_by="+created_at").data
    ]
    assert [m["id"] for m in ours.memberships(orgs[2]["id"])] == [
        m.id
        for m in sdk.organization_memberships.list(
            organization_id=orgs[2]["id"], limit=100, order_by="+created_at"
        ).data
    ]
    assert ours.organization("org_missing") is None
    # Pages of three: 7 organizations in 3 requests, 5 memberships in 2.
    pages = [path for path, _ in fake.calls if path.endswith("/organizations")]
    assert len(pages) >= 3
    with pytest.raises(clerk_api.errors.UpstreamError):
        list(clerk_api.ClerkBackend(url, "sk_wrong").organizations())
