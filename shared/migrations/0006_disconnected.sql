-- Disconnecting deletes the token; revoking the grant at the provider is a
-- separate fact that can fail (or that a platform does not offer). The status
-- that said "revoked" for both is now "disconnected" (no token held), and
-- `revocation` records what the provider said, so a grant that still works is
-- never called revoked.
--
-- As the owner, under FORCE ROW LEVEL SECURITY, an UPDATE sees no rows: the
-- owner lifts FORCE for this transaction only, to rename the old status.
alter table public.connections drop constraint connections_status_check;
alter table public.connections drop constraint connections_check;
alter table public.connections no force row level security;
update public.connections set status = 'disconnected' where status = 'revoked';
alter table public.connections force row level security;
alter table public.connections add constraint connections_status_check
  check (status in ('active', 'reauth_required', 'disconnected', 'error'));
alter table public.connections add constraint connections_disconnected_holds_no_token
  check (status <> 'disconnected' or token_ciphertext is null);
alter table public.connections
  add column revocation text check (revocation in ('revoked', 'not_revoked')),
  add column revocation_reason text check (length(revocation_reason) <= 64),
  add column disconnected_at timestamptz;
