-- Sync: the next taker of an expired lease closes the crashed run's 'running'
-- rows by connection (shared/sync/leases.py), and the connection status reads a
-- connection's latest runs; both look sync_runs up by connection. The same
-- index serves the cascade when a connection is deleted.
create index sync_runs_connection_idx on public.sync_runs (connection_id, started_at desc);
