-- The directory: organizations, members and roles come from Clerk.
--
-- Clerk is the source of truth for who belongs to which organization with
-- which role; its webhooks (and a daily reconcile against its Backend API) are
-- applied by the `directory` function as `cosma_directory`, a role that owns
-- nothing, has no BYPASSRLS and reaches one organization at a time: each event
-- runs under the claims of its organization (`sub` = 'clerk'), like a request.
--
-- The app role loses its writes on members and organizations: roles are set in
-- Clerk, never through our API, and no admin of ours can promote anyone.
-- Clients get unique names per organization, case-insensitively.

grant usage on schema app to cosma_directory;
grant execute on function app.claims(), app.user_id(), app.org_id() to cosma_directory;

-- ---------------------------------------------------------------- organizations
-- A deleted Clerk organization is suspended at once: its members are removed
-- (every request 403, RLS shows nothing), its tokens deleted (sync skips it),
-- and its clients erased one by one; `suspended_at` says an erasure is owed.
alter table public.organizations add column suspended_at timestamptz;

-- ---------------------------------------------------------------- clients
-- Names unique per organization, case-insensitively. Clients made before this
-- rule (local runs creating "Acme" twice) keep their oldest name; the others
-- get their id's first characters appended.
with ranked as (
  select id, row_number() over (partition by org_id, lower(name) order by created_at, id) as n
  from public.clients
)
update public.clients c
   set name = left(c.name, 189) || ' (' || left(c.id::text, 8) || ')'
  from ranked r
 where r.id = c.id and r.n > 1;
create unique index clients_org_name_idx on public.clients (org_id, lower(name));

-- ---------------------------------------------------------------- directory state
-- What the directory has applied, per Clerk object: the newest version seen
-- (Clerk's `updated_at` in ms, or the time of a deletion) and whether it is a
-- tombstone. Svix delivers out of order: an event older than this is stale,
-- and a tombstone keeps a late `created` from bringing a deleted object back.
--   organization  key = org id
--   membership    key = org id || '/' || user id (a removed user may be added again)
--   user          key = user id (a deleted user never comes back)
create table public.directory_objects (
  kind         text not null check (kind in ('organization', 'membership', 'user')),
  key          text not null check (length(key) between 1 and 200),
  org_id       text check (org_id ~ '^[A-Za-z0-9_-]{1,64}$'),
  version      bigint not null check (version >= 0),
  deleted      boolean not null default false,
  recorded_at  timestamptz not null default now(),
  primary key (kind, key),
  check ((kind = 'user') = (org_id is null))
);
create index directory_objects_org_idx on public.directory_objects (org_id);

-- Svix delivers at least once: each `svix-id` is applied once, recorded in the
-- transaction that applies it. Rows older than the retention are pruned; an
-- event redelivered after that is still stale by `updated_at`.
create table public.directory_deliveries (
  svix_id      text primary key check (length(svix_id) between 1 and 200),
  received_at  timestamptz not null default now()
);
create index directory_deliveries_received_idx on public.directory_deliveries (received_at);

alter table public.directory_objects enable row level security;
alter table public.directory_objects force row level security;
alter table public.directory_deliveries enable row level security;
alter table public.directory_deliveries force row level security;

-- ---------------------------------------------------------------- the directory role
-- One organization at a time: the event's, from the claims.
create policy directory_all on public.organizations for all to cosma_directory
  using (id = (select app.org_id())) with check (id = (select app.org_id()));
create policy directory_all on public.members for all to cosma_directory
  using (org_id = (select app.org_id())) with check (org_id = (select app.org_id()));
-- Erasing a deleted organization's clients, the same work as DELETE /clients/{id}.
create policy directory_read on public.clients for select to cosma_directory
  using (org_id = (select app.org_id()));
create policy directory_delete on public.clients for delete to cosma_directory
  using (org_id = (select app.org_id()));
create policy directory_read on public.connections for select to cosma_directory
  using (org_id = (select app.org_id()));
create policy directory_update on public.connections for update to cosma_directory
  using (org_id = (select app.org_id())) with check (org_id = (select app.org_id()));
create policy directory_read on public.datasets for select to cosma_directory
  using (org_id = (select app.org_id()));
create policy directory_insert on public.audit_log for insert to cosma_directory
  with check (org_id = (select app.org_id()) and actor = 'clerk');
create policy directory_all on public.directory_objects for all to cosma_directory
  using (org_id = (select app.org_id()) or org_id is null)
  with check (org_id = (select app.org_id()) or (kind = 'user' and org_id is null));
create policy directory_all on public.directory_deliveries for all to cosma_directory
  using (true) with check (true);

grant select, insert, update on public.organizations to cosma_directory;
grant select, insert, update, delete on public.members to cosma_directory;
grant select, delete on public.clients to cosma_directory;
grant select, update on public.connections to cosma_directory;
grant select on public.datasets to cosma_directory;
grant insert on public.audit_log to cosma_directory;
grant select, insert, update on public.directory_objects to cosma_directory;
grant select, insert, delete on public.directory_deliveries to cosma_directory;

-- Across organizations, the directory learns ids only, through these two:
-- which organizations we hold (reconcile compares them with Clerk's), and
-- which organizations a deleted user belonged to.
create policy owner_read on public.organizations for select to cosma_owner using (true);

create function app.directory_organizations()
returns table (id text, suspended boolean)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return query select o.id, o.suspended_at is not null from public.organizations o order by o.id;
end
$$;

create function app.directory_user_organizations(p_user_id text)
returns setof text
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return query select m.org_id from public.members m where m.user_id = p_user_id order by m.org_id;
end
$$;

revoke all on function app.directory_organizations(), app.directory_user_organizations(text)
  from public;
grant execute on function app.directory_organizations(), app.directory_user_organizations(text)
  to cosma_directory;

-- ---------------------------------------------------------------- the app role
-- Members and organizations are Clerk's: the app reads them, never writes them.
drop policy members_insert on public.members;
drop policy members_update on public.members;
drop policy members_delete on public.members;
revoke insert, update, delete on public.members from cosma_app;
drop policy org_update on public.organizations;
revoke update on public.organizations from cosma_app;
