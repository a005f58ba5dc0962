"""The floor under every Cosma function: what reaching Postgres costs by itself.

functions-framework, psycopg and psycopg_pool, and per request one transaction
that inserts one row and commits durably: the shape of the audit record every
Cosma route writes, with none of Cosma's code (no token, no authorization, no
hash chain). `bench_serving` reports it beside the functions, against the same
hello-world, so the part of each ratio that is ours can be read off.
"""

import os
import threading

import functions_framework

_pool = None
_lock = threading.Lock()


def _get_pool():  # type: ignore[no-untyped-def]
    global _pool
    if _pool is None:
        with _lock:  # several threads may take their first request at once
            if _pool is None:
                # Imported on the first request, as the functions import their
                # database layer; a pool of the same size as theirs (one connection
                # open at first, COSMA_DB_POOL_MAX at most), so threads share it alike.
                from psycopg_pool import ConnectionPool

                size = int(os.environ.get("COSMA_DB_POOL_MAX", "4"))
                _pool = ConnectionPool(
                    os.environ["DATABASE_URL"], min_size=1, max_size=size, open=True
                )
    return _pool


@functions_framework.http
def floor(request):  # type: ignore[no-untyped-def]
    with _get_pool().connection() as conn:  # a transaction: BEGIN ... COMMIT
        conn.execute("insert into public.bench_floor (path) values (%s)", (request.path,))
    return "ok"
