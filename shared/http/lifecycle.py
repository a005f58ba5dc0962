"""The request life cycle every function shares (`Router.handle`).

1. a request id (the caller's `X-Request-Id` when well formed, else a new one)
   bound to every log line;
2. CORS: preflight answered here; only allow-listed origins get CORS headers;
3. the body size limit (413) before anything reads the body;
4. routing (404, 405), then admission (Sentry on first use, the rate limit of
   unauthenticated traffic, 415 for a JSON route sent anything but JSON; a
   peer router, which plays an outside system locally, is not admitted), then
   the handler with a `Context`;
5. errors from the `shared.errors` tree rendered as problem+json in one place
   (or by the route's own `on_error`, as the OAuth callback redirects);
   anything else logged with its trace and answered with a plain 500;
6. the request's audit record: every audited route leaves exactly one. The
   service wrote it with its work (`ctx.audit`), or it is written here with
   the outcome. If it cannot be written, a successful answer becomes a 503:
   no record, no answer;
7. security headers and the request id on every response, and one access
   log line (path only: query strings can carry OAuth codes).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from shared import audit, errors, logs, observability
from shared.http import edge, render
from shared.http.context import Context

if TYPE_CHECKING:
    from shared.http.routing import Router
    from shared.runtime import Runtime

log = logging.getLogger("cosma.http")


def handle(router: Router, request: Request, runtime: Runtime) -> Response:
    settings = runtime.settings
    request_id = edge.request_id(request)
    trace = edge.trace(
        request.headers.get("X-Cloud-Trace-Context", "") or request.headers.get("traceparent", ""),
        settings.gcp_project,
    )
    started = time.perf_counter()
    with logs.bind(request_id, trace, router.function):
        origin = request.headers.get("Origin", "")
        origin_ok = bool(origin) and origin in settings.allowed_origins
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            methods = router.methods_for(request.path) or ["GET", "POST", "DELETE"]
            response = render.preflight(methods, origin_ok)
        else:
            response = _dispatch(router, request, runtime, request_id)
        render.finish(response, request_id, origin if origin_ok else "")
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "fields": {
                    "httpRequest": {
                        "requestMethod": request.method,
                        "requestUrl": request.path,
                        "status": response.status_code,
                        "latency": f"{time.perf_counter() - started:.6f}s",
                    }
                }
            },
        )
        return response


def _dispatch(router: Router, request: Request, runtime: Runtime, request_id: str) -> Response:
    ctx: Context | None = None
    failure: errors.CosmaError | None = None
    admitted = False
    try:
        edge.check_body_size(request, runtime.settings.max_body_bytes)
        route, params = router.match(request.method, request.path)
        ctx = Context(request, runtime, request_id, route)
        if not route.peer:
            _admit(ctx)
        admitted = True
        response = route.handler(ctx, **params)
    except errors.CosmaError as exc:
        failure = exc
        if exc.status >= 500:
            log.warning("request failed: %s", exc.slug)
        # A route's own failure rendering is for its handler's errors; a refusal
        # before it (the rate limit, with its Retry-After) is always problem+json.
        response = _render_failure(ctx if admitted else None, exc, request_id, request.path)
    except Exception:
        log.exception("unhandled error")
        observability.capture_exception(request_id=request_id, function=router.function)
        failure = errors.CosmaError()
        response = render.problem_response(failure, request_id, request.path)
    if ctx is None:
        return response
    try:
        _record_outcome(ctx, response.status_code, failure)
    except Exception:
        # No audit record, no answer: data leaves only with its record written.
        log.exception("could not write the request's audit record")
        if response.status_code < 400:
            unavailable = errors.Unavailable("The request could not be recorded.")
            return render.problem_response(unavailable, request_id, request.path)
    return response


def _admit(ctx: Context) -> None:
    """After routing, before the handler: Sentry on first use, the rate limit of
    traffic without an Authorization header (the rest is counted once
    authenticated), and a JSON route's content type (415 before any body is read)."""
    runtime = ctx.runtime
    runtime.sentry_enabled  # noqa: B018 (initialises once)
    runtime.rate_limiter.admit(ctx.request.path, ctx.client_ip, ctx.authorization())
    if ctx.route.body is not None:
        edge.check_json_content_type(ctx.request)


def _render_failure(
    ctx: Context | None, exc: errors.CosmaError, request_id: str, path: str
) -> Response:
    if ctx is not None and ctx.route.on_error is not None:
        own = ctx.route.on_error(ctx, exc)
        if own is not None:
            return own
    return render.problem_response(exc, request_id, path)


def _record_outcome(ctx: Context, status: int, failure: errors.CosmaError | None) -> None:
    """The route's one record, when the work did not write it: who asked, what
    for, and how it ended (the error's own status when a route rendered its
    failure another way)."""
    principal = ctx.known_principal
    if ctx.route.action is None or principal is None or ctx.audit.written:
        return
    ctx.audit.record_alone(
        principal,
        resource=ctx.request.path,
        outcome=audit.outcome_for(failure.status if failure is not None else status),
        detail=f"error={failure.slug}" if failure is not None else "",
    )
