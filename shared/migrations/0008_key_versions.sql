-- Key rotation: when each token key version first sealed a token, by any
-- instance or by the rotation command (shared/retirement.py). An older version
-- may be retired only a grace period after a newer one first sealed: every
-- instance re-reads its keyring at least that often before sealing. The row is
-- written with the database's clock, the one clock every instance and the
-- command share, so none of their own clocks matters.
create table public.key_versions (
  version        text primary key check (version ~ '^[1-9][0-9]{0,8}$'),
  primary_since  timestamptz not null default clock_timestamp()
);

alter table public.key_versions enable row level security;
alter table public.key_versions force row level security;

-- Both roles seal tokens (oauth as the app, sync and the rotation as the worker);
-- only the rotation command, as the worker, reads the record back.
create policy key_versions_insert on public.key_versions for insert to cosma_app, cosma_worker
  with check (true);
create policy key_versions_read on public.key_versions for select to cosma_worker using (true);

-- The version column only: primary_since is always the database's own now, so
-- no writer can backdate it and shorten the grace. No update, no delete.
grant insert (version) on public.key_versions to cosma_app, cosma_worker;
grant select on public.key_versions to cosma_worker;
