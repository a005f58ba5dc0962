"""The log-output scan: every line the suite logs, checked for secrets.

Fixtures that mint secrets (session tokens, authorization codes, refresh and
access tokens, Fernet keys) `remember` them; the session-wide capture in
`tests/conftest.py` formats every record exactly as production does
(`shared.logs.JsonFormatter`) and, when the session ends, fails the run if any
remembered secret, or anything shaped like a JWT, a bearer credential or a
Fernet token, appears in any line.
"""

from __future__ import annotations

import logging
import re
import threading

from shared.logs import JsonFormatter

_SECRETS: set[str] = set()
_lock = threading.Lock()

SHAPES = (
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # JWT
    re.compile(r"(?i)bearer\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"gAAAAA[A-Za-z0-9_=-]{40,}"),  # Fernet token
)


def remember(secret: str) -> str:
    """Register a secret the logs must never contain; returns it unchanged."""
    if len(secret) >= 8:
        with _lock:
            _SECRETS.add(secret)
    return secret


class CaptureHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a broken record must not break the suite
            return
        with _lock:
            self.lines.append(line)


def leaks(lines: list[str], known: set[str] | None = None) -> list[str]:
    """Lines (shortened, secret masked) that hold a known secret or a secret's shape."""
    with _lock:
        secrets = set(_SECRETS if known is None else known)
    found = []
    for line in lines:
        hit = next((s for s in secrets if s in line), None)
        if hit is None:
            match = next((m for p in SHAPES if (m := p.search(line))), None)
            hit = match.group(0) if match else None
        if hit is not None:
            found.append(line.replace(hit, "<SECRET>")[:300])
    return found
