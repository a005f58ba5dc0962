-- "Sync now": when a member last asked for a connection to be synced at once,
-- so a repeated request within the cool-down is refused instead of hammering
-- the platform.
alter table public.connections add column sync_requested_at timestamptz;
