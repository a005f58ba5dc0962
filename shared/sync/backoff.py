"""Backoff: how long a failing connection rests before the next try.

Exponential in the number of consecutive failures, capped, with jitter so a
provider outage does not bring every connection back in the same second, and
never shorter than the provider's Retry-After. With the defaults a broken
connection is tried at most a few dozen times a day while it keeps failing:

    failures   1     2     3     4     5     6     7     8     9+
    base (s)   60    120   240   480   960   1920  3840  7680  ... capped at 6 h
    delay      base * uniform(0.5, 1.0), then max(delay, retry_after)
"""

from __future__ import annotations

import random
from collections.abc import Callable

BASE_S = 60.0
CAP_S = 6 * 3600.0


def delay_s(
    failures: int,
    retry_after: float | None = None,
    *,
    rng: Callable[[], float] = random.random,
    base_s: float = BASE_S,
    cap_s: float = CAP_S,
) -> float:
    """Seconds to wait after the `failures`-th consecutive failure (failures >= 1)."""
    exponent = min(max(failures, 1) - 1, 30)
    delay = min(cap_s, base_s * 2.0**exponent) * (0.5 + 0.5 * rng())
    if retry_after is not None and retry_after > delay:
        # Honour the provider, but a hostile or broken Retry-After cannot park a
        # connection for more than a day.
        delay = min(float(retry_after), 24 * 3600.0)
    return delay
