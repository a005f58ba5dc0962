"""Rate-limit policy pieces that need no database: specs and bucket keys."""

from __future__ import annotations

import pytest

from shared.principal import Principal
from shared.ratelimit import Limit, ip_key, user_key
from shared.settings import Settings


def test_spec_parses_rate_period_and_burst() -> None:
    assert Limit.parse("60/60s:20") == Limit(60, 60, 20)
    assert Limit.parse(" 5 / 3600s ") == Limit(5, 3600, 5)  # burst defaults to the rate


def test_empty_spec_turns_the_policy_off() -> None:
    assert Limit.parse("") is None
    assert Limit.parse("   ") is None


@pytest.mark.parametrize("spec", ["60", "60/60", "x/60s", "0/60s", "60/0s", "60/60s:0", "-1/60s"])
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        Limit.parse(spec)


def test_default_settings_limit_both_ip_and_user() -> None:
    settings = Settings()
    assert Limit.parse(settings.rate_limit_ip) is not None
    assert Limit.parse(settings.rate_limit_user) is not None
    env = Settings.from_env({"COSMA_RATE_LIMIT_IP": "7/10s:2", "COSMA_RATE_LIMIT_USER": ""})
    assert Limit.parse(env.rate_limit_ip) == Limit(7, 10, 2)
    assert Limit.parse(env.rate_limit_user) is None


def test_ip_keys_are_normalised() -> None:
    assert ip_key("203.0.113.7") == "ip:203.0.113.7"
    assert ip_key(" 203.0.113.7 ") == "ip:203.0.113.7"
    # One IPv6 host usually owns a /64: every address in it shares one bucket.
    assert ip_key("2001:db8:1:2::1") == ip_key("2001:db8:1:2:ffff::9") == "ip:2001:db8:1:2::/64"
    assert ip_key("2001:db8:1:3::1") != ip_key("2001:db8:1:2::1")
    assert ip_key("::ffff:203.0.113.7") == "ip:203.0.113.7"


@pytest.mark.parametrize("junk", ["", "unknown", "1.2.3.4.5", "x" * 500, "203.0.113.7, 10.0.0.1"])
def test_unparseable_ips_share_one_bounded_key(junk: str) -> None:
    # A forged X-Forwarded-For must neither mint fresh buckets nor overflow the key column.
    assert ip_key(junk) == "ip:invalid"


def test_user_key_is_per_organization_and_user() -> None:
    a = Principal(user_id="user_1", org_id="org_a", role="admin")
    b = Principal(user_id="user_1", org_id="org_b", role="admin")
    assert user_key(a) == "user:org_a:user_1"
    assert user_key(a) != user_key(b)
