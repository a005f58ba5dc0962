-- Tenancy schema: every tenant table has RLS enabled AND forced.
--
-- Roles (created by the migration runner): cosma_owner owns everything and is
-- used only here; cosma_app serves requests (owns nothing, no BYPASSRLS);
-- cosma_worker runs background jobs with only the grants they need.
--
-- Each request sets `request.jwt.claims` with set_config(..., true), as Supabase
-- does. The policies read only the user (`sub`) and the organization (`o.id`,
-- or v1 `org_id`) from the claims; the role and the assigned clients come from
-- our own members and client_assignments rows. Helpers are always called as
-- `(select ...)` so the planner evaluates them once per statement.

create schema if not exists app;
grant usage on schema app to cosma_app, cosma_worker;

create function app.claims() returns jsonb
language sql stable parallel safe as $$
  select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;

-- PL/pgSQL parses the claims once per call; the SQL form parsed them twice.
create function app.user_id() returns text
language plpgsql stable parallel safe as $$
begin
  return nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub';
end
$$;

create function app.org_id() returns text
language plpgsql stable parallel safe as $$
declare
  c jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
begin
  return coalesce(c -> 'o' ->> 'id', c ->> 'org_id');
end
$$;

-- ---------------------------------------------------------------- tables

create table public.organizations (
  id          text primary key check (id ~ '^[A-Za-z0-9_-]{1,64}$'),
  name        text not null check (length(name) between 1 and 200),
  location    text not null default 'US' check (location in ('US', 'EU')),
  created_at  timestamptz not null default now()
);

create table public.members (
  org_id      text not null references public.organizations (id) on delete cascade,
  user_id     text not null check (user_id ~ '^[A-Za-z0-9_-]{1,64}$'),
  role        text not null check (role in ('admin', 'editor', 'viewer')),
  created_at  timestamptz not null default now(),
  primary key (org_id, user_id)
);

create table public.clients (
  id          uuid primary key default gen_random_uuid(),
  org_id      text not null references public.organizations (id) on delete cascade,
  name        text not null check (length(name) between 1 and 200),
  created_at  timestamptz not null default now(),
  unique (org_id, id)
);
create index clients_org_id_idx on public.clients (org_id);

create table public.client_assignments (
  org_id      text not null,
  client_id   uuid not null,
  user_id     text not null,
  created_at  timestamptz not null default now(),
  primary key (org_id, client_id, user_id),
  foreign key (org_id, client_id) references public.clients (org_id, id) on delete cascade,
  foreign key (org_id, user_id) references public.members (org_id, user_id) on delete cascade
);
create index client_assignments_user_idx on public.client_assignments (org_id, user_id, client_id);

create table public.connections (
  id                   uuid primary key default gen_random_uuid(),
  org_id               text not null,
  client_id            uuid not null,
  platform             text not null check (platform ~ '^[a-z_]{2,32}$'),
  external_account_id  text check (length(external_account_id) <= 128),
  status               text not null default 'active'
                       check (status in ('active', 'reauth_required', 'revoked', 'error')),
  scopes               text[] not null default '{}',
  scopes_flagged       boolean not null default false,
  token_ciphertext     bytea,
  key_version          text,
  access_token_expires_at timestamptz,
  created_by           text not null,
  created_at           timestamptz not null default now(),
  updated_at           timestamptz not null default now(),
  -- Sync scheduling, owned by the worker.
  next_sync_at         timestamptz not null default now(),
  lease_owner          text,
  lease_until          timestamptz,
  failures             integer not null default 0,
  backoff_until        timestamptz,
  last_refresh_at      timestamptz,
  last_synced_at       timestamptz,
  health               text,
  foreign key (org_id, client_id) references public.clients (org_id, id) on delete cascade,
  -- A revoked connection holds no token: disconnect deletes it immediately.
  check (status <> 'revoked' or token_ciphertext is null)
);
create index connections_org_client_idx on public.connections (org_id, client_id);
create index connections_due_idx on public.connections (next_sync_at) where status = 'active';

create table public.datasets (
  org_id      text not null,
  client_id   uuid not null,
  platform    text not null check (platform ~ '^[a-z_]{2,32}$'),
  dataset_id  text not null unique check (dataset_id ~ '^[A-Za-z0-9_]+$' and length(dataset_id) <= 1024),
  location    text not null check (location in ('US', 'EU')),
  status      text not null default 'ready' check (status in ('provisioning', 'ready', 'erasing')),
  created_at  timestamptz not null default now(),
  primary key (client_id, platform),
  foreign key (org_id, client_id) references public.clients (org_id, id) on delete cascade
);
create index datasets_org_client_idx on public.datasets (org_id, client_id);

create table public.oauth_states (
  state_hash     bytea primary key,
  org_id         text not null,
  user_id        text not null,
  client_id      uuid not null,
  platform       text not null,
  code_verifier  text,
  redirect_uri   text not null,
  created_at     timestamptz not null default now(),
  expires_at     timestamptz not null,
  used_at        timestamptz,
  foreign key (org_id, client_id) references public.clients (org_id, id) on delete cascade
);
create index oauth_states_org_user_idx on public.oauth_states (org_id, user_id);

create table public.sync_runs (
  id             uuid primary key default gen_random_uuid(),
  org_id         text not null,
  client_id      uuid not null,
  connection_id  uuid not null references public.connections (id) on delete cascade,
  window_start   date,
  window_end     date,
  rows_loaded    bigint not null default 0,
  started_at     timestamptz not null default now(),
  finished_at    timestamptz,
  duration_ms    integer,
  outcome        text not null default 'running'
                 check (outcome in ('running', 'ok', 'partial', 'failed', 'reauth_required')),
  error_class    text,
  foreign key (org_id, client_id) references public.clients (org_id, id) on delete cascade
);
create index sync_runs_org_client_idx on public.sync_runs (org_id, client_id, started_at desc);

create table public.rate_limit_buckets (
  key   text primary key check (length(key) <= 200),
  tat   timestamptz not null
);

create table public.audit_log (
  id          bigint generated always as identity primary key,
  org_id      text not null,
  seq         bigint not null,
  actor       text not null,
  action      text not null,
  resource    text not null default '',
  outcome     text not null,
  detail      text not null default '',
  request_id  text not null default '',
  at          timestamptz not null default now(),
  prev_hash   bytea,
  hash        bytea not null,
  unique (org_id, seq)
);

-- ---------------------------------------------------------------- helpers
-- Security definer: they read members and assignments regardless of the
-- caller's visibility, but only for the caller's own (user, organization).
-- PL/pgSQL rather than SQL: a security-definer SQL function cannot be inlined
-- and would be planned on every call; PL/pgSQL keeps its plan per session.

create function app.member_role() returns text
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  c jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  result text;
begin
  select m.role into result from public.members m
  where m.org_id = coalesce(c -> 'o' ->> 'id', c ->> 'org_id') and m.user_id = c ->> 'sub';
  return result;
end
$$;

create function app.assigned_clients() returns uuid[]
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  c jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  result uuid[];
begin
  select coalesce(array_agg(a.client_id), '{}') into result
  from public.client_assignments a
  where a.org_id = coalesce(c -> 'o' ->> 'id', c ->> 'org_id') and a.user_id = c ->> 'sub';
  return result;
end
$$;

revoke all on function app.member_role(), app.assigned_clients() from public;
grant execute on function app.claims(), app.user_id(), app.org_id(),
  app.member_role(), app.assigned_clients() to cosma_app, cosma_worker;

-- ---------------------------------------------------------------- audit chain
-- Each record's hash covers its fields and the previous record of the same
-- organization; the per-organization advisory lock orders concurrent inserts.

create function app.audit_canonical(
  org_id text, seq bigint, actor text, action text, resource text,
  outcome text, detail text, request_id text, at timestamptz
) returns bytea
language sql immutable parallel safe as $$
  select convert_to(concat_ws(chr(31), org_id, seq::text, actor, action, resource,
    outcome, detail, request_id, ((extract(epoch from at) * 1000000)::bigint)::text), 'UTF8')
$$;

create function app.audit_chain() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  last_seq bigint;
  last_hash bytea;
begin
  perform pg_advisory_xact_lock(hashtextextended('cosma.audit:' || new.org_id, 0));
  select a.seq, a.hash into last_seq, last_hash
    from public.audit_log a where a.org_id = new.org_id order by a.seq desc limit 1;
  new.seq := coalesce(last_seq, 0) + 1;
  new.prev_hash := last_hash;
  new.at := clock_timestamp();
  new.hash := sha256(coalesce(last_hash, ''::bytea) || app.audit_canonical(
    new.org_id, new.seq, new.actor, new.action, new.resource, new.outcome,
    new.detail, new.request_id, new.at));
  return new;
end
$$;

create function app.audit_immutable() returns trigger
language plpgsql as $$
begin
  raise exception 'audit_log is append-only' using errcode = 'insufficient_privilege';
end
$$;

create trigger audit_log_chain before insert on public.audit_log
  for each row execute function app.audit_chain();
create trigger audit_log_no_update before update or delete on public.audit_log
  for each row execute function app.audit_immutable();
create trigger audit_log_no_truncate before truncate on public.audit_log
  for each statement execute function app.audit_immutable();

-- ---------------------------------------------------------------- RLS

do $$
declare t text;
begin
  foreach t in array array['organizations', 'members', 'clients', 'client_assignments',
    'connections', 'datasets', 'oauth_states', 'sync_runs', 'rate_limit_buckets', 'audit_log']
  loop
    execute format('alter table public.%I enable row level security', t);
    execute format('alter table public.%I force row level security', t);
  end loop;
end
$$;

-- The owner's security-definer helpers read these tables; FORCE applies to the
-- owner too, so it gets explicit policies and nothing else does.
create policy owner_read on public.members for select to cosma_owner using (true);
create policy owner_read on public.client_assignments for select to cosma_owner using (true);
create policy owner_all on public.audit_log for all to cosma_owner using (true) with check (true);
create policy owner_all on public.rate_limit_buckets for all to cosma_owner using (true) with check (true);

-- Organizations: members see their own organization; admins may rename it.
create policy org_read on public.organizations for select to cosma_app
  using (id = (select app.org_id()) and (select app.member_role()) is not null);
create policy org_update on public.organizations for update to cosma_app
  using (id = (select app.org_id()) and (select app.member_role()) = 'admin')
  with check (id = (select app.org_id()));

-- Members: admins see and manage everyone in their organization, others see themselves.
create policy members_read on public.members for select to cosma_app
  using (org_id = (select app.org_id())
         and ((select app.member_role()) = 'admin' or user_id = (select app.user_id())));
create policy members_write on public.members for all to cosma_app
  using (org_id = (select app.org_id()) and (select app.member_role()) = 'admin')
  with check (org_id = (select app.org_id()) and (select app.member_role()) = 'admin');

-- Clients: admins reach every client of their organization, editors and viewers
-- only assigned ones; only admins create, rename or delete clients.
create policy clients_read on public.clients for select to cosma_app
  using (org_id = (select app.org_id())
         and ((select app.member_role()) = 'admin' or id = any ((select app.assigned_clients())::uuid[])));
create policy clients_write on public.clients for all to cosma_app
  using (org_id = (select app.org_id()) and (select app.member_role()) = 'admin')
  with check (org_id = (select app.org_id()) and (select app.member_role()) = 'admin');

create policy assignments_read on public.client_assignments for select to cosma_app
  using (org_id = (select app.org_id())
         and ((select app.member_role()) = 'admin' or user_id = (select app.user_id())));
create policy assignments_write on public.client_assignments for all to cosma_app
  using (org_id = (select app.org_id()) and (select app.member_role()) = 'admin')
  with check (org_id = (select app.org_id()) and (select app.member_role()) = 'admin');

-- Client-scoped tables: read where the client is visible; write as admin or as an
-- editor on an assigned client. A viewer's write fails here, in the database.
do $$
declare t text;
begin
  foreach t in array array['connections', 'datasets', 'sync_runs'] loop
    execute format($f$
      create policy %1$s_read on public.%1$I for select to cosma_app
        using (org_id = (select app.org_id())
               and ((select app.member_role()) = 'admin'
                    or client_id = any ((select app.assigned_clients())::uuid[])))
    $f$, t);
    execute format($f$
      create policy %1$s_write on public.%1$I for all to cosma_app
        using (org_id = (select app.org_id())
               and ((select app.member_role()) = 'admin'
                    or ((select app.member_role()) = 'editor'
                        and client_id = any ((select app.assigned_clients())::uuid[]))))
        with check (org_id = (select app.org_id())
               and ((select app.member_role()) = 'admin'
                    or ((select app.member_role()) = 'editor'
                        and client_id = any ((select app.assigned_clients())::uuid[]))))
    $f$, t);
  end loop;
end
$$;

-- OAuth states belong to the user who started the flow.
create policy oauth_states_own on public.oauth_states for all to cosma_app
  using (org_id = (select app.org_id()) and user_id = (select app.user_id()))
  with check (org_id = (select app.org_id()) and user_id = (select app.user_id())
              and (select app.member_role()) in ('admin', 'editor')
              and ((select app.member_role()) = 'admin'
                   or client_id = any ((select app.assigned_clients())::uuid[])));

-- Audit: everyone writes their own organization's records as themselves; admins read.
create policy audit_insert on public.audit_log for insert to cosma_app
  with check (org_id = (select app.org_id()) and actor = (select app.user_id()));
create policy audit_read on public.audit_log for select to cosma_app
  using (org_id = (select app.org_id()) and (select app.member_role()) = 'admin');

-- The worker serves every organization: the scheduler, not a user, is its caller.
create policy worker_all on public.connections for all to cosma_worker using (true) with check (true);
create policy worker_all on public.sync_runs for all to cosma_worker using (true) with check (true);
create policy worker_read on public.datasets for select to cosma_worker using (true);
create policy worker_read on public.organizations for select to cosma_worker using (true);
create policy worker_read on public.clients for select to cosma_worker using (true);
create policy worker_insert on public.audit_log for insert to cosma_worker with check (true);

-- ---------------------------------------------------------------- grants

grant select, insert, update, delete on public.members, public.clients,
  public.client_assignments, public.connections, public.datasets, public.oauth_states,
  public.sync_runs to cosma_app;
grant select, update on public.organizations to cosma_app;
grant select, insert on public.audit_log to cosma_app;

grant select on public.organizations, public.clients, public.datasets to cosma_worker;
grant select, update on public.connections to cosma_worker;
grant select, insert, update on public.sync_runs to cosma_worker;
grant insert on public.audit_log to cosma_worker;

-- ---------------------------------------------------------------- rate limits
-- GCRA in one atomic statement, shared by every instance. Only this function
-- touches the table; callers never see other keys.

create function app.rate_limit_take(p_key text, p_rate integer, p_period_ms integer,
                                    p_burst integer)
returns table (allowed boolean, retry_after_ms bigint, remaining integer)
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  emission interval := make_interval(secs => p_period_ms / 1000.0 / p_rate);
  tolerance interval := make_interval(secs => p_period_ms / 1000.0 / p_rate * (p_burst - 1));
  now_ts timestamptz := clock_timestamp();
  new_tat timestamptz;
begin
  insert into public.rate_limit_buckets as b (key, tat)
    values (p_key, now_ts + emission)
  on conflict (key) do update
    set tat = greatest(b.tat, now_ts) + emission
    where greatest(b.tat, now_ts) + emission - tolerance - emission <= now_ts
  returning b.tat into new_tat;
  if new_tat is not null then
    return query select true, 0::bigint,
      greatest(0, floor(extract(epoch from (now_ts + tolerance + emission - new_tat))
                        / extract(epoch from emission)))::integer;
  else
    return query select false,
      ceil(extract(epoch from ((select b.tat from public.rate_limit_buckets b where b.key = p_key)
                               - tolerance - now_ts)) * 1000)::bigint,
      0;
  end if;
end
$$;
revoke all on function app.rate_limit_take(text, integer, integer, integer) from public;
grant execute on function app.rate_limit_take(text, integer, integer, integer) to cosma_app, cosma_worker;
