"""The directory: organizations and members from Clerk; clients and assignments by API.

    events.py     Clerk's objects as the directory reads them (ids, role, versions)
    store.py      applying them as `cosma_directory`: ordering, tombstones, roles, audit
    webhook.py    `POST /webhooks/clerk`: svix verification, once per `svix-id`
    erasure.py    a deleted organization's clients, through `provisioning.erase`
    reconcile.py  the daily comparison with Clerk's Backend API
    clients.py    clients, members and assignments for admins (the app role, RLS)

Clerk is the source of truth for organizations, memberships and roles; our
rows follow it. Clients and their assignments are ours, set by admins.

Import the submodules themselves (`from shared.directory import webhook`):
nothing is re-exported here, so a function loads only what its routes use.
"""
