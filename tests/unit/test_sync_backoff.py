"""Backoff: exponential, capped, jittered, never below Retry-After (bounded)."""

from __future__ import annotations

import random

from shared.sync.backoff import BASE_S, CAP_S, delay_s


def test_doubles_per_failure_without_jitter() -> None:
    assert [delay_s(n, rng=lambda: 1.0) for n in range(1, 6)] == [60, 120, 240, 480, 960]


def test_capped() -> None:
    assert delay_s(50, rng=lambda: 1.0) == CAP_S
    assert delay_s(10**6, rng=lambda: 1.0) == CAP_S


def test_jitter_stays_within_half_to_full() -> None:
    rng = random.Random(3)
    samples = [delay_s(3, rng=rng.random) for _ in range(2000)]
    assert min(samples) >= 4 * BASE_S * 0.5 and max(samples) <= 4 * BASE_S
    assert max(samples) - min(samples) > BASE_S  # really spread


def test_retry_after_wins_when_longer() -> None:
    assert delay_s(1, 900, rng=lambda: 1.0) == 900
    assert delay_s(8, 5, rng=lambda: 1.0) == BASE_S * 128


def test_hostile_retry_after_is_bounded_to_a_day() -> None:
    assert delay_s(1, 10**9, rng=lambda: 1.0) == 24 * 3600


def test_a_broken_connection_is_tried_only_a_few_dozen_times_a_day() -> None:
    elapsed, tries = 0.0, 0
    while elapsed < 24 * 3600:
        tries += 1
        elapsed += delay_s(tries, rng=lambda: 0.0)  # the shortest waits
    assert tries < 30
