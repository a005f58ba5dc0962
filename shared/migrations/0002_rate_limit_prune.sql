-- Rate limits, second pass: the GCRA of 0001 was correct; what it lacked is
-- bounds. Every client IP ever seen left a row behind, and a zero rate or burst
-- divided by zero or denied everything. This keeps the same signature (and so
-- the same grants) and adds:
--   * argument checks (22023 invalid_parameter_value, a caller bug, not input);
--   * pruning: about one call in a hundred deletes up to 500 buckets whose
--     theoretical arrival time is over a minute in the past. Such a bucket is
--     indistinguishable from an absent one (greatest(tat, now) = now), so
--     deleting it never changes a decision; SKIP LOCKED keeps the pruner out
--     of the way of concurrent takes;
--   * a retry time that stays positive even if the row vanished in between.

create index if not exists rate_limit_buckets_tat_idx on public.rate_limit_buckets (tat);

create or replace function app.rate_limit_take(p_key text, p_rate integer, p_period_ms integer,
                                               p_burst integer)
returns table (allowed boolean, retry_after_ms bigint, remaining integer)
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  emission interval;
  tolerance interval;
  now_ts timestamptz := clock_timestamp();
  new_tat timestamptz;
  held_tat timestamptz;
begin
  if p_key is null or p_rate is null or p_rate < 1 or p_period_ms is null or p_period_ms < 1
     or p_burst is null or p_burst < 1 then
    raise exception 'rate_limit_take: invalid arguments' using errcode = 'invalid_parameter_value';
  end if;
  emission := make_interval(secs => p_period_ms / 1000.0 / p_rate);
  tolerance := make_interval(secs => p_period_ms / 1000.0 / p_rate * (p_burst - 1));

  if random() < 0.01 then
    delete from public.rate_limit_buckets
    where key in (select b.key from public.rate_limit_buckets b
                  where b.tat < now_ts - interval '1 minute'
                  limit 500 for update skip locked);
  end if;

  -- GCRA: a request is allowed when its arrival is no earlier than the bucket's
  -- theoretical arrival time minus the burst tolerance. The upsert locks the
  -- row, so concurrent takes on one key are serialized and each sees the last.
  insert into public.rate_limit_buckets as b (key, tat)
    values (p_key, now_ts + emission)
  on conflict (key) do update
    set tat = greatest(b.tat, now_ts) + emission
    where greatest(b.tat, now_ts) - tolerance <= now_ts
  returning b.tat into new_tat;

  if new_tat is not null then
    return query select true, 0::bigint,
      greatest(0, floor(extract(epoch from (now_ts + tolerance + emission - new_tat))
                        / extract(epoch from emission)))::integer;
  else
    select b.tat into held_tat from public.rate_limit_buckets b where b.key = p_key;
    return query select false,
      greatest(1, ceil(extract(epoch from (coalesce(held_tat, now_ts) - tolerance - now_ts))
                       * 1000))::bigint,
      0;
  end if;
end
$$;
