"""Structured JSON logs that Cloud Logging understands.

One JSON object per line on stdout with `severity`, `message`, the trace as
`logging.googleapis.com/trace` and labels (request id, function). Every line
passes through `shared.redact`, so a token or an email that reaches a log call
by mistake still never reaches the log.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.redact import redact

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


@dataclass(frozen=True)
class _Bound:
    request_id: str = ""
    trace: str = ""
    function: str = ""


_EMPTY = _Bound()
_context: contextvars.ContextVar[_Bound | None] = contextvars.ContextVar(
    "cosma_log_context", default=None
)


@contextmanager
def bind(request_id: str = "", trace: str = "", function: str = "") -> Iterator[None]:
    token = _context.set(_Bound(request_id, trace, function))
    try:
        yield
    finally:
        _context.reset(token)


def current_request_id() -> str:
    return (_context.get() or _EMPTY).request_id


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = _context.get() or _EMPTY
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": redact(record.getMessage()),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({k: _clean(v) for k, v in fields.items()})
        if record.exc_info:
            entry["stack_trace"] = redact("".join(traceback.format_exception(*record.exc_info)))
        if ctx.trace:
            entry["logging.googleapis.com/trace"] = ctx.trace
        labels = {
            k: v for k, v in (("request_id", ctx.request_id), ("function", ctx.function)) if v
        }
        if labels:
            entry["logging.googleapis.com/labels"] = labels
        return json.dumps(entry, default=str)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Install the JSON handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_cosma", False):
            root.setLevel(level)
            return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler._cosma = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
