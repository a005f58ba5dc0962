"""The HTTP layer every function shares.

`Router.handle(request, runtime)` is the whole request life cycle:

1. a request id (the caller's `X-Request-Id` when well formed, else a new one)
   bound to every log line;
2. CORS: preflight answered here; only allow-listed origins get CORS headers;
3. the body size limit (413) before anything reads the body;
4. routing (404, 405), then the handler with a `Context`;
5. errors from the `shared.errors` tree rendered as problem+json in one place;
   anything else logged with its trace and answered with a plain 500;
6. security headers and the request id on every response, and one access
   log line (path only: query strings can carry OAuth codes).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from werkzeug.wrappers import Request, Response

from shared import errors, logs, observability

if TYPE_CHECKING:
    # pydantic loads with the first model that needs it (~40 ms of cold start that
    # routes without a body or query model, like `GET /auth/session`, never pay).
    from pydantic import BaseModel

    from shared.principal import Principal
    from shared.runtime import Runtime

log = logging.getLogger("cosma.http")

PROBLEM_JSON = "application/problem+json"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_PARAM = re.compile(r"\{([a-z_]+)\}")
# Path parameters are opaque ids: nothing else may reach a handler through the path.
_PARAM_VALUE = r"([A-Za-z0-9_-]{1,128})"

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-site",
}
CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-Request-Id"
CORS_EXPOSE_HEADERS = "X-Request-Id, Retry-After, RateLimit, RateLimit-Policy"

M = TypeVar("M", bound="BaseModel")
Handler = Callable[..., Response]


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    action: str | None
    # Declared request models: used to parse (`ctx.body()`, `ctx.query()`) and to
    # generate the OpenAPI document, so the spec and the parsing cannot differ.
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    summary: str = ""
    # Also accept Clerk's same-site `__session` cookie when no Authorization header
    # is sent: only for a browser navigation that carries its own proof (the
    # OAuth callback's single-use state bound to the user who started the flow).
    session_cookie: bool = False
    regex: re.Pattern[str] = field(init=False)
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.names = tuple(_PARAM.findall(self.pattern))
        parts = _PARAM.split(self.pattern)  # literal, name, literal, name, ...
        self.regex = re.compile(
            "^"
            + "".join(_PARAM_VALUE if i % 2 else re.escape(part) for i, part in enumerate(parts))
            + "$"
        )


class Context:
    """What a handler gets: the request, the runtime and lazy access to the caller."""

    def __init__(self, request: Request, runtime: Runtime, request_id: str, route: Route) -> None:
        self.request = request
        self.runtime = runtime
        self.request_id = request_id
        self.route = route
        self._principal: Principal | None = None
        self.audited = False

    @property
    def settings(self) -> Any:
        return self.runtime.settings

    def principal(self) -> Principal:
        """The verified caller; raises Unauthorized (401) or Forbidden (403)."""
        if self._principal is None:
            header = self.request.headers.get("Authorization", "")
            if not header.strip() and self.route.session_cookie:
                cookie = self.request.cookies.get("__session", "").strip()
                header = f"Bearer {cookie}" if cookie else ""
            self._principal = self.runtime.authenticate(header, client_ip=client_ip(self.request))
        return self._principal

    @property
    def known_principal(self) -> Principal | None:
        return self._principal

    def json(self) -> Any:
        body = self.request.get_data(cache=True)
        if not body:
            raise errors.BadRequest("A JSON body is required.")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.BadRequest("The body is not valid JSON.") from exc

    def model(self, model: type[M]) -> M:
        """Parse the JSON body into `model`: 400 if not JSON, 422 if invalid."""
        return validate(model, self.json())

    def query_model(self, model: type[M]) -> M:
        return validate(model, {k: v for k, v in self.request.args.items()})

    def body(self) -> Any:
        """The JSON body parsed into the route's declared `body` model."""
        if self.route.body is None:
            raise TypeError("route declares no body model")
        return self.model(self.route.body)

    def query(self) -> Any:
        """The query string parsed into the route's declared `query` model."""
        if self.route.query is None:
            raise TypeError("route declares no query model")
        return self.query_model(self.route.query)

    def audit(self, *, resource: str, outcome: str = "ok", detail: str = "") -> None:
        """This request's one audit record, on its own (see `Runtime.audit`)."""
        self.runtime.audit(self, resource=resource, outcome=outcome, detail=detail)

    def tenant(self) -> Any:
        """One transaction with the caller's claims set; see `shared.db`."""
        return self.runtime.db.tenant(self.principal(), request_id=self.request_id, ctx=self)


def validate(model: type[M], data: Any) -> M:
    from pydantic import ValidationError as PydanticValidationError

    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        # Locations and messages only: the input may hold a secret.
        problems = [
            {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise errors.ValidationFailed(errors=problems) from None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # orjson: several times faster than the stdlib on report rows; dates as ISO 8601,
    # NaN as null (valid JSON), anything else it does not know as its str().
    import orjson

    return Response(
        orjson.dumps(body, default=str),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def problem_response(exc: errors.CosmaError, request_id: str, instance: str = "") -> Response:
    body: dict[str, Any] = {
        "type": f"urn:cosma:problem:{exc.slug}",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "request_id": request_id,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in exc.extra.items() if v is not None})
    response = Response(json.dumps(body, default=str), status=exc.status, content_type=PROBLEM_JSON)
    if isinstance(exc, errors.TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
        response.headers["RateLimit"] = f'"default";r={exc.remaining};t={exc.retry_after}'
        if exc.limit:
            response.headers["RateLimit-Policy"] = f'"default";q={exc.limit};w={exc.window}'
    return response


def client_ip(request: Request) -> str:
    # Behind Google's load balancer the client is the second-to-last X-Forwarded-For
    # entry; locally it is the socket peer.
    forwarded = [
        p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()
    ]
    if len(forwarded) >= 2:
        return forwarded[-2]
    if forwarded:
        return forwarded[-1]
    return request.remote_addr or ""


class Router:
    """Routes of one function, and the request life cycle around them."""

    def __init__(self, function: str) -> None:
        self.function = function
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        pattern: str,
        *,
        action: str | None = None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        summary: str = "",
        session_cookie: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            doc = summary or (handler.__doc__ or "").strip().split("\n")[0]
            self.routes.append(
                Route(method.upper(), pattern, handler, action, body, query, doc, session_cookie)
            )
            return handler

        return register

    def add(self, other: Router) -> None:
        self.routes.extend(other.routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route in self.routes:
            found = route.regex.match(path)
            if not found:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, dict(zip(route.names, found.groups(), strict=True))
            allowed.append(route.method)
        if allowed:
            raise errors.MethodNotAllowed(f"Allowed: {', '.join(sorted(set(allowed)))}.")
        raise errors.NotFound("No such resource.")

    def methods_for(self, path: str) -> list[str]:
        return sorted({r.method for r in self.routes if r.regex.match(path)})

    def handle(self, request: Request, runtime: Runtime | None = None) -> Response:
        if runtime is None:
            from shared.runtime import current

            runtime = current()
        settings = runtime.settings
        request_id = request.headers.get("X-Request-Id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex
        trace = logs.trace_from_header(
            request.headers.get("X-Cloud-Trace-Context", "")
            or request.headers.get("traceparent", ""),
            settings.gcp_project,
        )
        started = time.perf_counter()
        with logs.bind(request_id, trace, self.function):
            origin = request.headers.get("Origin", "")
            origin_ok = bool(origin) and origin in settings.allowed_origins
            if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
                response = self._preflight(request, origin_ok)
            else:
                response = self._dispatch(request, runtime, request_id)
            finish(response, request_id, origin if origin_ok else "")
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

    def _preflight(self, request: Request, origin_ok: bool) -> Response:
        response = Response(status=204)
        if origin_ok:
            methods = self.methods_for(request.path) or ["GET", "POST", "DELETE"]
            response.headers["Access-Control-Allow-Methods"] = ", ".join([*methods, "OPTIONS"])
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    def _dispatch(self, request: Request, runtime: Runtime, request_id: str) -> Response:
        ctx: Context | None = None
        try:
            _check_body_size(request, runtime.settings.max_body_bytes)
            route, params = self.match(request.method, request.path)
            ctx = Context(request, runtime, request_id, route)
            runtime.before_request(ctx)
            response = route.handler(ctx, **params)
        except errors.CosmaError as exc:
            if exc.status >= 500:
                log.warning("request failed: %s", exc.slug)
            response = problem_response(exc, request_id, request.path)
        except Exception:
            log.exception("unhandled error")
            observability.capture_exception(request_id=request_id, function=self.function)
            response = problem_response(errors.CosmaError(), request_id, request.path)
        if ctx is None:
            return response
        try:
            runtime.after_request(ctx, response.status_code)
        except Exception:
            # No audit record, no answer: data leaves only with its record written.
            log.exception("could not write the request's audit record")
            if response.status_code < 400:
                unavailable = errors.Unavailable("The request could not be recorded.")
                return problem_response(unavailable, request_id, request.path)
        return response


def _check_body_size(request: Request, limit: int) -> None:
    length = request.content_length
    if length is not None and length > limit:
        raise errors.PayloadTooLarge(f"The body may be at most {limit} bytes.")
    if length is None and request.method in ("POST", "PUT", "PATCH"):
        # Chunked bodies have no length: read one byte past the limit to decide.
        data = request.stream.read(limit + 1)
        if len(data) > limit:
            raise errors.PayloadTooLarge(f"The body may be at most {limit} bytes.")
        request._cached_data = data  # werkzeug's cache for get_data()


def finish(response: Response, request_id: str, allowed_origin: str) -> Response:
    """Headers every response carries, whatever produced it."""
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    headers["Cache-Control"] = "no-store"
    headers["X-Request-Id"] = request_id
    if allowed_origin:
        headers["Access-Control-Allow-Origin"] = allowed_origin
        headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    headers.add("Vary", "Origin")
    return response
