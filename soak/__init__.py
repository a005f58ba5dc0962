"""The soak: the whole system under mixed load and scheduled faults, then its promises checked.

    python -m soak [--seconds 180]          (`make soak`, `make soak SOAK_SECONDS=600`)

One run, on a fresh state folder:

1. an embedded Postgres, a peer process (the sandbox platform's OAuth provider
   and report API, the local issuer's JWKS, Google's OIDC signing keys, and a
   control route that switches the provider's faults), and four API server
   processes on one database, as four instances of the system;
2. twenty organizations, each with admins, editors and viewers (signed Clerk
   webhooks) and five clients (`POST /clients`), every client connected to the
   sandbox platform through the real OAuth flow;
3. a mixed load from several client processes for the set duration, while the
   faults run on their schedule (`soak.faults`) and Cloud Scheduler's sync
   trigger is played against the servers;
4. the checks (`soak.checks`): one line per invariant with its figure, from the
   database, the warehouse and every request and answer the client processes
   recorded; the exit status is non-zero when any invariant fails.

Nothing here is deployed, and nothing in `shared` imports it.
"""
