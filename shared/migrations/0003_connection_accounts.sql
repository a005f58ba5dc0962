-- A connection pulls only the ad accounts chosen for its client: an agency's
-- login often reaches every client's accounts, and loading them all into one
-- client's dataset would leak between clients. Empty means "every account the
-- grant reaches", which the connect flow allows only when asked explicitly.
alter table public.connections add column account_ids text[] not null default '{}';
alter table public.oauth_states add column account_ids text[] not null default '{}';
alter table public.connections add constraint connections_account_ids_max
  check (cardinality(account_ids) <= 200);
