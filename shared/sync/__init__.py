"""Scheduled sync: verified trigger, leased work, safe token refresh, idempotent loads.

    trigger.py   the Cloud Scheduler OIDC token check (401 before anything runs)
    leases.py    FOR UPDATE SKIP LOCKED leases that expire: invocations share the work
    refresh.py   single-flight token refresh under the connection's row lock
    backoff.py   exponential backoff with jitter, honouring Retry-After
    windows.py   per-account re-read windows in the account's timezone
    runs.py      the sync_runs record, the reschedule and the audit record
    runner.py    one invocation: lease, refresh, fetch, replace slices, within a budget

Everything runs as the worker role (`runtime.worker_db`).
"""
