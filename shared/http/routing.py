"""Routes: what a function declares, and how a path finds its handler.

A route declares its method, path pattern, audit action and request models
(used to parse and to generate the OpenAPI document, so the two cannot
differ). Path parameters are opaque ids: nothing else reaches a handler
through the path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from shared import errors

if TYPE_CHECKING:
    # pydantic loads with the first model that needs it (~40 ms of cold start that
    # routes without a body or query model, like `GET /auth/session`, never pay).
    from pydantic import BaseModel

    from shared.http.context import Context
    from shared.runtime import Runtime

_PARAM = re.compile(r"\{([a-z_]+)\}")
_PARAM_VALUE = r"([A-Za-z0-9_-]{1,128})"

Handler = Callable[..., Response]
# A route's own answer to a failure (the OAuth callback redirects the browser);
# None means "the usual problem+json".
ErrorRenderer = Callable[["Context", errors.CosmaError], Response | None]


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    # The audit action; None for routes without a user principal to audit.
    action: str | None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    summary: str = ""
    # Also accept Clerk's same-site `__session` cookie when no Authorization header
    # is sent: only for a browser navigation that carries its own proof (the
    # OAuth callback's single-use state bound to the user who started the flow).
    session_cookie: bool = False
    on_error: ErrorRenderer | None = None
    # Declared by a peer router (see `Router`): no API admission.
    peer: bool = False
    regex: re.Pattern[str] = field(init=False)
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.names = tuple(_PARAM.findall(self.pattern))
        parts = _PARAM.split(self.pattern)  # literal, name, literal, name, ...
        self.regex = re.compile(
            "^"
            + "".join(_PARAM_VALUE if i % 2 else re.escape(part) for i, part in enumerate(parts))
            + "\\Z"  # not "$", which also matches before a trailing newline
        )


class Router:
    """Routes of one function; `handle` runs the request life cycle around them.

    A `peer` router plays an outside system on the local server (the local
    issuer's JWKS, the sandbox platform): its callers are our own adapters, not
    API clients, so it is not admitted through the API's rate limits, and it
    speaks its own protocol's content types (OAuth token requests are forms).
    Its routes keep that when added to another router.
    """

    def __init__(self, function: str, *, peer: bool = False) -> None:
        self.function = function
        self.peer = peer
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
        on_error: ErrorRenderer | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            doc = summary or (handler.__doc__ or "").strip().split("\n")[0]
            self.routes.append(
                Route(
                    method.upper(),
                    pattern,
                    handler,
                    action,
                    body,
                    query,
                    doc,
                    session_cookie,
                    on_error,
                    self.peer,
                )
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
        from shared.http import lifecycle

        if runtime is None:
            from shared.runtime import current

            runtime = current()
        return lifecycle.handle(self, request, runtime)
