-- Impersonation: Clerk's `act` claim names the person acting as the session's
-- user (support staff, an admin). Each audit record names both: `actor` stays
-- the user the session belongs to (the insert policy and RLS key on it), and
-- `impersonator` the person acting, '' when nobody is.
--
-- The chain trigger fills the column from the transaction's claims (`act.sub`,
-- which Principal.claims() sets), so every writer records it without passing
-- anything, and none can name someone else. The hash covers it only when it is
-- non-empty (concat_ws skips the null), so every record written before this
-- migration, and every record without impersonation, hashes exactly as before.
alter table public.audit_log add column impersonator text not null default '';

create function app.audit_canonical(
  org_id text, seq bigint, actor text, action text, resource text,
  outcome text, detail text, request_id text, at timestamptz, impersonator text
) returns bytea
language sql immutable parallel safe as $$
  select convert_to(concat_ws(chr(31), org_id, seq::text, actor, action, resource,
    outcome, detail, request_id, ((extract(epoch from at) * 1000000)::bigint)::text,
    nullif(impersonator, '')), 'UTF8')
$$;

create or replace function app.audit_chain() returns trigger
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
  new.impersonator := coalesce(
    nullif(current_setting('request.jwt.claims', true), '')::jsonb -> 'act' ->> 'sub', '');
  new.hash := sha256(coalesce(last_hash, ''::bytea) || app.audit_canonical(
    new.org_id, new.seq, new.actor, new.action, new.resource, new.outcome,
    new.detail, new.request_id, new.at, new.impersonator));
  return new;
end
$$;
