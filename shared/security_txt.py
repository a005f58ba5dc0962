"""`/.well-known/security.txt` (RFC 9116): where to report a vulnerability.

`Expires` is computed from `REVIEWED`, the day someone last checked these
fields, and stays under a year after it, as RFC 9116 recommends. A test fails
when fewer than 30 days are left: reviewing the fields and moving `REVIEWED`
is the yearly chore that keeps the file valid.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

REVIEWED = date(2026, 11, 29)
CONTACT = "mailto:security@cosma.app"
POLICY = "https://cosma.app/security"
PREFERRED_LANGUAGES = "en"
PATH = "/.well-known/security.txt"


def expires() -> datetime:
    return datetime.combine(REVIEWED, time(), tzinfo=UTC) + timedelta(days=364)


def render(public_url: str) -> str:
    """The file for a server reachable at `public_url` (its Canonical URI)."""
    fields = [
        ("Contact", CONTACT),
        ("Expires", expires().strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("Policy", POLICY),
        ("Preferred-Languages", PREFERRED_LANGUAGES),
        ("Canonical", public_url.rstrip("/") + PATH),
    ]
    return "".join(f"{name}: {value}\n" for name, value in fields)
