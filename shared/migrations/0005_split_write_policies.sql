-- Write policies per command instead of FOR ALL. A FOR ALL policy also applies
-- to SELECT, where it is OR'ed with the read policy: every read then planned
-- both policies' helpers. Split, a read plans the read policy alone; what each
-- role may write is unchanged.

do $$
declare
  t text;
  admin_only text := $q$org_id = (select app.org_id()) and (select app.member_role()) = 'admin'$q$;
  client_writer text := $q$org_id = (select app.org_id())
    and ((select app.member_role()) = 'admin'
         or ((select app.member_role()) = 'editor'
             and client_id = any ((select app.assigned_clients())::uuid[])))$q$;
  rule text;
begin
  foreach t in array array['members', 'clients', 'client_assignments',
                           'connections', 'datasets', 'sync_runs'] loop
    if t in ('members', 'clients', 'client_assignments') then
      rule := admin_only;
      execute format('drop policy %I on public.%I',
        case t when 'client_assignments' then 'assignments_write' else t || '_write' end, t);
    else
      rule := client_writer;
      execute format('drop policy %I on public.%I', t || '_write', t);
    end if;
    execute format('create policy %I on public.%I for insert to cosma_app with check (%s)',
                   t || '_insert', t, rule);
    execute format('create policy %I on public.%I for update to cosma_app using (%s) with check (%s)',
                   t || '_update', t, rule, rule);
    execute format('create policy %I on public.%I for delete to cosma_app using (%s)',
                   t || '_delete', t, rule);
  end loop;
end
$$;
