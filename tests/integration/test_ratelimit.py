"""Rate limits through the real request path, on the real Postgres buckets.

Each test gets its own client IP (an X-Forwarded-For from a random IPv6 /64)
and its own seeded users, so buckets never carry over between tests.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import errors as pg_errors
from werkzeug.test import Client

from cosma.server import PREFIXES, LocalServer, function_router
from shared import errors
from shared.ratelimit import Limit, RateLimiter
from shared.runtime import Runtime
from shared.settings import Settings
from tests.support.identity import TokenIssuer
from tests.support.seed import Seeder


def fresh_ip() -> str:
    return f"2001:db8:{secrets.randbits(16):x}:{secrets.randbits(16):x}::1"


def key() -> str:
    return f"test:{secrets.token_hex(8)}"


@pytest.fixture
def limited(settings: Settings, webhook_secret: str) -> Iterator[Callable[..., Client]]:
    """A client over a runtime with its own limits (the shared one has none),
    configured as deployed (the webhook's signing secret exists)."""
    made: list[Runtime] = []

    def make(ip: str = "3/3600s", user: str = "3/3600s", xff_entries: int = 1) -> Client:
        # As behind one proxy that appends the client's address (X-Forwarded-For).
        runtime = Runtime(
            settings.with_changes(
                rate_limit_ip=ip, rate_limit_user=user, trusted_xff_entries=xff_entries
            )
        )
        made.append(runtime)
        return Client(LocalServer(runtime))

    yield make
    for runtime in made:
        runtime.close()


def take(runtime: Runtime, key: str, limit: Limit) -> tuple[bool, int, int]:
    d = runtime.rate_limiter.take(key, limit)
    return d.allowed, d.retry_after_ms, d.remaining


# ---------------------------------------------------------------- the GCRA function


def test_burst_then_refusal_with_the_time_to_wait(runtime: Runtime) -> None:
    k = key()
    limit = Limit(rate=5, period_s=60, burst=3)  # one every 12 s, bursts of 3
    assert [take(runtime, k, limit)[::2] for _ in range(3)] == [(True, 2), (True, 1), (True, 0)]
    allowed, retry_ms, remaining = take(runtime, k, limit)
    assert (allowed, remaining) == (False, 0)
    assert 11_000 < retry_ms <= 12_000
    # A refusal consumes nothing: the wait does not grow while refused.
    assert take(runtime, k, limit)[1] <= retry_ms


def test_the_bucket_refills_at_the_rate(runtime: Runtime) -> None:
    k = key()
    limit = Limit(rate=20, period_s=1, burst=1)  # one every 50 ms
    assert take(runtime, k, limit)[0] is True
    assert take(runtime, k, limit)[0] is False
    time.sleep(0.06)
    assert take(runtime, k, limit)[0] is True


def test_keys_are_independent(runtime: Runtime) -> None:
    limit = Limit(rate=1, period_s=3600, burst=1)
    a, b = key(), key()
    assert take(runtime, a, limit)[0] is True
    assert take(runtime, a, limit)[0] is False
    assert take(runtime, b, limit)[0] is True


@pytest.mark.parametrize("args", [(0, 1000, 1), (1, 0, 1), (1, 1000, 0), (-1, 1000, 1)])
def test_nonsense_arguments_are_an_error_not_a_decision(pg, args: tuple[int, int, int]) -> None:
    with psycopg.connect(pg.app_url) as conn, pytest.raises(pg_errors.InvalidParameterValue):
        conn.execute("select * from app.rate_limit_take(%s, %s, %s, %s)", (key(), *args))


def test_the_app_role_reaches_buckets_only_through_the_function(pg) -> None:
    with psycopg.connect(pg.app_url) as conn, pytest.raises(pg_errors.InsufficientPrivilege):
        conn.execute("select * from public.rate_limit_buckets")


def test_expired_buckets_are_pruned(pg, runtime: Runtime) -> None:
    stale = key()
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute(
            "insert into rate_limit_buckets (key, tat) values (%s, now() - interval '1 hour')",
            (stale,),
        )
    limit = Limit(rate=1000, period_s=1, burst=1000)
    live = key()
    # About one call in a hundred prunes: 0.99**3000 is below 1e-13.
    for _ in range(3000):
        take(runtime, live, limit)
        with psycopg.connect(pg.admin_url) as conn:
            gone = conn.execute("select 1 from rate_limit_buckets where key = %s", (stale,))
            if gone.fetchone() is None:
                break
    else:
        pytest.fail("the expired bucket was never pruned")
    with psycopg.connect(pg.admin_url) as conn:
        assert conn.execute("select 1 from rate_limit_buckets where key = %s", (live,)).fetchone()


# ---------------------------------------------------------------- HTTP


def assert_429(response, limit: int, window: int) -> None:
    assert response.status_code == 429
    assert response.content_type == "application/problem+json"
    body = json.loads(response.get_data())
    assert body["status"] == 429 and body["type"] == "urn:cosma:problem:rate-limited"
    retry = int(response.headers["Retry-After"])
    assert retry >= 1
    # draft-ietf-httpapi-ratelimit-headers: RateLimit: "policy";r=<remaining>;t=<seconds>
    found = re.fullmatch(r'"default";r=(\d+);t=(\d+)', response.headers["RateLimit"])
    assert found and int(found[1]) == 0 and int(found[2]) == retry
    assert response.headers["RateLimit-Policy"] == f'"default";q={limit};w={window}'


def test_unauthenticated_traffic_is_limited_per_ip(limited) -> None:
    client = limited(ip="3/3600s")
    ip, other = fresh_ip(), fresh_ip()
    statuses = [
        client.get("/auth/session", headers={"X-Forwarded-For": ip}).status_code for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    assert_429(client.get("/auth/session", headers={"X-Forwarded-For": ip}), 3, 3600)
    assert client.get("/auth/session", headers={"X-Forwarded-For": other}).status_code == 401


def test_healthz_is_never_limited(limited) -> None:
    client = limited(ip="1/3600s")
    ip = fresh_ip()
    for _ in range(5):
        assert client.get("/healthz", headers={"X-Forwarded-For": ip}).status_code == 200


def test_failed_authentication_counts_against_the_ip(
    limited, seeder: Seeder, tokens: TokenIssuer
) -> None:
    client = limited(ip="3/3600s", user="100/3600s")
    ip = fresh_ip()
    forged = {"Authorization": "Bearer not-a-token", "X-Forwarded-For": ip}
    assert [client.get("/auth/session", headers=forged).status_code for _ in range(4)] == [
        401,
        401,
        401,
        429,
    ]
    # Refused IPs are refused before any verify, even with a good token...
    org = seeder.org()
    good = {**tokens.header(org.principal(org.user("admin"))), "X-Forwarded-For": ip}
    assert client.get("/auth/session", headers=good).status_code == 429
    # ...while the same user from another address is served.
    good["X-Forwarded-For"] = fresh_ip()
    assert client.get("/auth/session", headers=good).status_code == 200


def test_a_rotating_forwarded_for_cannot_escape_the_limit(limited) -> None:
    # Behind Google's load balancer (two trusted entries: the client as it saw it,
    # then itself), whatever a client writes to the left is its own claim.
    client = limited(ip="3/3600s", xff_entries=2)
    real, balancer = fresh_ip(), "130.211.0.1"
    statuses = [
        client.get(
            "/auth/session",
            headers={
                "Authorization": "Bearer not-a-token",
                "X-Forwarded-For": f"{fresh_ip()}, {real}, {balancer}",
            },
        ).status_code
        for _ in range(6)
    ]
    assert statuses == [401, 401, 401, 429, 429, 429]


def test_without_trusted_proxies_forwarded_for_is_ignored(limited) -> None:
    # Locally nothing appends the header: every entry is the client's own claim,
    # so rotating it changes nothing and the socket peer is counted.
    client = limited(ip="3/3600s", xff_entries=0)
    statuses = [
        client.get(
            "/auth/session",
            headers={"Authorization": "Bearer not-a-token", "X-Forwarded-For": fresh_ip()},
            environ_base={"REMOTE_ADDR": "192.0.2.77"},
        ).status_code
        for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]


def test_a_non_member_token_counts_as_a_failed_authentication(limited, tokens: TokenIssuer) -> None:
    client = limited(ip="2/3600s")
    ip = fresh_ip()
    stranger = {
        "Authorization": f"Bearer {tokens.mint('user_stranger', 'org_nowhere')}",
        "X-Forwarded-For": ip,
    }
    assert [client.get("/auth/session", headers=stranger).status_code for _ in range(3)] == [
        403,
        403,
        429,
    ]


def test_authenticated_traffic_is_limited_per_principal_not_per_ip(
    limited, seeder: Seeder, tokens: TokenIssuer
) -> None:
    client = limited(ip="2/3600s", user="3/3600s")
    org = seeder.org()
    editor, viewer = org.principal(org.user("editor")), org.principal(org.user("viewer"))
    ip = fresh_ip()  # one office, one NAT address
    statuses = [
        client.get(
            "/auth/session", headers={**tokens.header(editor), "X-Forwarded-For": fresh_ip()}
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]  # a new address does not reset the user
    response = client.get("/auth/session", headers={**tokens.header(editor), "X-Forwarded-For": ip})
    assert_429(response, 3, 3600)
    # Colleagues behind the same address have their own budget, beyond the IP limit.
    for _ in range(3):
        response = client.get(
            "/auth/session", headers={**tokens.header(viewer), "X-Forwarded-For": ip}
        )
        assert response.status_code == 200


def test_limits_off_cost_no_database_work(settings: Settings) -> None:
    runtime = Runtime(settings.with_changes(rate_limit_ip="", rate_limit_user=""))
    limiter = runtime.rate_limiter
    assert isinstance(limiter, RateLimiter)
    limiter.admit("/auth/session", fresh_ip(), "")
    limiter.failed_authentication(fresh_ip())
    assert runtime.db._pool is None  # no connection was ever opened
    runtime.close()


def _routes() -> list[tuple[str, str]]:
    found = []
    for name in PREFIXES:
        for route in function_router(name).routes:
            path = re.sub(r"\{[a-z_]+\}", "x1", route.pattern)
            found.append((route.method, path))
    return found


@pytest.mark.parametrize(("method", "path"), _routes())
def test_every_route_is_limited(limited, method: str, path: str) -> None:
    client = limited(ip="1/3600s")
    ip = fresh_ip()
    client.open(path, method=method, headers={"X-Forwarded-For": ip})
    response = client.open(path, method=method, headers={"X-Forwarded-For": ip})
    assert_429(response, 1, 3600)


def test_a_refusal_raises_the_error_tree(runtime: Runtime) -> None:
    limiter = RateLimiter(runtime.db, ip_limit=Limit(1, 3600, 1), user_limit=None)
    ip = fresh_ip()
    limiter.failed_authentication(ip)
    with pytest.raises(errors.TooManyRequests) as refused:
        limiter.failed_authentication(ip)
    assert refused.value.retry_after > 3000


def test_refused_scheduler_tokens_count_against_the_ip(limited) -> None:
    # The sync trigger verifies Google's OIDC token itself; a refusal there is a
    # failed authentication like any other.
    client = limited(ip="2/3600s")
    ip = fresh_ip()
    forged = {"Authorization": "Bearer not-a-google-token", "X-Forwarded-For": ip}
    assert [client.post("/sync", headers=forged).status_code for _ in range(3)] == [401, 401, 429]


def test_signed_webhooks_take_no_bucket_and_refused_ones_count_against_the_ip(
    limited, webhook_secret: str
) -> None:
    # Svix delivers bursts from shared addresses (an organization deleted with its
    # memberships): a verified delivery is not counted; a refused one is.
    from cosma import clerk_events
    from tests.support.clerk import Webhooks, new_id

    client = limited(ip="2/3600s")
    ip = fresh_ip()
    hooks = Webhooks(client, webhook_secret)
    for _ in range(4):
        event = clerk_events.event(
            "organization.created", clerk_events.organization(new_id("org"), "A")
        )
        assert hooks.post(event, headers={"X-Forwarded-For": ip}).status_code == 200
    forged = {
        "X-Forwarded-For": ip,
        "svix-id": "msg_x",
        "svix-timestamp": "1",
        "svix-signature": "v1,AAAA",
    }
    statuses = [
        client.post("/webhooks/clerk", data=b"{}", headers=forged).status_code for _ in range(3)
    ]
    assert statuses == [401, 401, 429]
