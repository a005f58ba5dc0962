"""Sentry: initialised once per instance when a DSN is configured, and nothing
leaves the process without passing our scrubber.

`send_default_pii=False` is not enough on its own: Sentry still sends the
email given to `set_user`, JSON request bodies (Flask integration, which is
what functions-framework runs on), and frame local variables whose names are
outside its denylist. So every event, transaction and breadcrumb goes through
`scrub_event` / `scrub_breadcrumb`, which:

- drop the request body, cookies, WSGI environ and query string, and the
  Authorization, Cookie, forwarding and any token- or secret-named header;
- drop every frame's local variables (and local variables are never
  collected: `include_local_variables=False`);
- keep only the opaque user id (no email, IP address or username);
- replace the value of any key that names a secret (token, code, state,
  client secret, password, email, ...) with "[Filtered]";
- pass every remaining string through `shared.redact.redact` (bearer tokens,
  JWTs, Fernet tokens, key=value secrets, emails, IPv4 addresses).

Invariants: with no DSN configured, `sentry_sdk` is never imported (it costs
~240 ms of cold start) and `capture_exception` is a no-op. The DSN comes from
settings (local runs) or from the secrets port by name (the cloud).
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from shared import errors
from shared.redact import redact

if TYPE_CHECKING:
    from shared.secrets import Secrets
    from shared.settings import Settings

__all__ = ["capture_exception", "init_sentry", "scrub_breadcrumb", "scrub_event", "shutdown"]

log = logging.getLogger("cosma.observability")

FILTERED = "[Filtered]"
# Keys whose values are dropped wherever they occur (compared lower-case, "-" as "_").
_SENSITIVE_NAMES = frozenset(
    {
        "code",
        "state",
        "email",
        "username",
        "ip_address",
        "remote_addr",
        "x_forwarded_for",
        "x_real_ip",
        "forwarded",
        "dsn",
        "vars",
        "code_verifier",
        "http.query",
        "http.fragment",
    }
)
_SENSITIVE_PARTS = (
    "authorization",
    "cookie",
    "token",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "credential",
    "signature",
    "fernet",
    "private_key",
)
_REQUEST_DROP = ("data", "cookies", "env", "query_string")
_OPAQUE = re.compile(r"[A-Za-z0-9._~+/=-]{20,}")
_STRUCTURAL = frozenset(
    {
        "abs_path",
        "filename",
        "module",
        "function",
        "package",
        "context_line",
        "pre_context",
        "post_context",
        "type",
        "platform",
        "event_id",
        "trace_id",
        "span_id",
        "parent_span_id",
        "release",
        "environment",
        "server_name",
        "modules",
        "sdk",
        "name",
        "version",
        "request_id",
    }
)

_lock = threading.Lock()
_enabled = False


def _sensitive(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name in _SENSITIVE_NAMES or any(part in name for part in _SENSITIVE_PARTS)


def _opaque(match: re.Match[str]) -> str:
    run = match.group(0)
    has_digit = any(c.isdigit() for c in run)
    has_alpha = any(c.isalpha() for c in run)
    return "[token]" if has_digit and has_alpha else run


def _scrub(value: Any, key: str = "") -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = redact(value)
        # Free text (messages, exception values) may hold a provider's opaque token
        # that no pattern knows: long mixed runs of token characters go too.
        # Code locations and ids are structure, not free text, and stay readable.
        return text if key in _STRUCTURAL else _OPAQUE.sub(_opaque, text)
    if isinstance(value, dict):
        return {
            k: (FILTERED if isinstance(k, str) and _sensitive(k) else _scrub(v, str(k)))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, key) for v in value]
    return value


def _strip_query(url: Any) -> Any:
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return FILTERED
    return urlunsplit(parts._replace(query="", fragment=""))


def scrub_event(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """The event Sentry may send: see the module docstring for what goes."""
    request = event.get("request")
    if isinstance(request, dict):
        for name in _REQUEST_DROP:
            request.pop(name, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if not _sensitive(str(k))}
        if "url" in request:
            request["url"] = _strip_query(request["url"])
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if "id" in user else {}
    scrubbed: dict[str, Any] = _scrub(event)
    return scrubbed


def scrub_breadcrumb(crumb: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    data = crumb.get("data")
    if isinstance(data, dict) and "url" in data:
        data["url"] = _strip_query(data["url"])
    scrubbed: dict[str, Any] = _scrub(crumb)
    return scrubbed


def init_sentry(settings: Settings, secrets: Callable[[], Secrets] | None = None) -> bool:
    """Initialise Sentry once per process; False (and nothing imported) without a DSN."""
    global _enabled
    with _lock:
        if _enabled:
            return True
        dsn = settings.sentry_dsn.strip()
        if not dsn and settings.sentry_dsn_secret and secrets is not None:
            try:
                dsn = secrets().get(settings.sentry_dsn_secret).strip()
            except errors.CosmaError:
                # Monitoring must not take requests down with it.
                log.warning("the Sentry DSN secret is unavailable; Sentry stays off")
                return False
        if not dsn:
            return False
        import sentry_sdk
        from sentry_sdk.integrations.logging import LoggingIntegration

        try:
            with warnings.catch_warnings():
                # Newer SDKs call send_default_pii deprecated in favour of data_collection;
                # the option still holds, and older SDKs in our range only know it.
                warnings.filterwarnings("ignore", "The send_default_pii option", DeprecationWarning)
                sentry_sdk.init(
                    dsn=dsn,
                    environment=settings.env,
                    release=settings.release or None,
                    send_default_pii=False,
                    include_local_variables=False,
                    max_request_body_size="never",
                    max_breadcrumbs=50,
                    # Sentry types events as TypedDicts; ours are the same dicts.
                    before_send=cast(Any, scrub_event),
                    before_send_transaction=cast(Any, scrub_event),
                    before_breadcrumb=cast(Any, scrub_breadcrumb),
                    # Log records become breadcrumbs only: unexpected errors are
                    # captured once, explicitly, by the HTTP layer.
                    integrations=[LoggingIntegration(level=logging.INFO, event_level=None)],
                )
        except Exception:  # a malformed DSN: say so without echoing it
            log.warning("the Sentry DSN is not valid; Sentry stays off")
            return False
        _enabled = True
        return True


def capture_exception(
    exc: BaseException | None = None, *, request_id: str = "", function: str = ""
) -> None:
    """Send the current (or given) exception to Sentry; a no-op when Sentry is off."""
    if not _enabled:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        if request_id:
            scope.set_tag("request_id", request_id)
        if function:
            scope.set_tag("function", function)
        sentry_sdk.capture_exception(exc)


def shutdown(timeout: float = 2.0) -> None:
    """Flush and stop Sentry (tests, and instance shutdown)."""
    global _enabled
    with _lock:
        if not _enabled:
            return
        import sentry_sdk

        client = sentry_sdk.get_client()
        client.flush(timeout=timeout)
        client.close(timeout=timeout)
        _enabled = False
