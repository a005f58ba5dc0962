"""Redaction of secrets and personal data from free text.

Used on every log line and on everything sent to Sentry. Patterns are broad on
purpose: a false positive costs a log detail, a false negative leaks a token.
"""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization headers and bearer tokens.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    # JWTs (three base64url segments, header starting with eyJ).
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[jwt]"),
    # Fernet tokens (version byte 0x80 -> "gAAAAA").
    (re.compile(r"gAAAAA[A-Za-z0-9_=-]{20,}"), "[fernet]"),
    # key=value pairs whose key names a secret (query strings, form bodies, reprs).
    (
        re.compile(
            r"(?i)\b(access_token|refresh_token|id_token|client_secret|code_verifier|"
            r"password|secret|api_key|apikey|token|code|state|authorization|cookie|dsn)"
            r"(['\"]?\s*[:=]\s*['\"]?)[^\s'\",&;}]+"
        ),
        r"\1\2[redacted]",
    ),
    # Email addresses.
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
    # IPv4 addresses.
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "[ip]"),
)


def _scoped(pattern: str) -> str:
    """A pattern with its leading global flag made local, so patterns can be joined."""
    return f"(?i:{pattern[4:]})" if pattern.startswith("(?i)") else f"(?:{pattern})"


# Any of the patterns, in one pass: most lines (an access line, a status) hold
# none, and one search is much cheaper than every substitution in turn.
_ANY = re.compile("|".join(_scoped(p.pattern) for p, _ in _PATTERNS))


def redact(text: str) -> str:
    """Return `text` with tokens, secrets, emails and IP addresses replaced."""
    if not _ANY.search(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
