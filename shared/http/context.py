"""What a handler gets: the request, the runtime, the caller, and the request's audit.

A handler parses with the models its route declares (`ctx.body(Model)`,
`ctx.query(Model)`: typed, and refused if the route declared another model,
so the OpenAPI document and the parsing cannot differ), resolves the caller
once (`ctx.principal()`), and passes typed values and `ctx.audit` to one
service call. Nothing below this layer sees a `Context`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from werkzeug.wrappers import Request

from shared import errors
from shared.audit import RequestAudit
from shared.http import edge

if TYPE_CHECKING:
    from pydantic import BaseModel

    from shared.http.routing import Route
    from shared.principal import Principal
    from shared.runtime import Runtime
    from shared.settings import Settings

M = TypeVar("M", bound="BaseModel")
T = TypeVar("T")


class Context:
    def __init__(self, request: Request, runtime: Runtime, request_id: str, route: Route) -> None:
        self.request = request
        self.runtime = runtime
        self.request_id = request_id
        self.route = route
        self.client_ip = edge.client_ip(request, runtime.settings.trusted_xff_entries)
        # The request's one audit record: written by the service with its work, or
        # by the life cycle afterwards (see `shared.http.lifecycle`).
        self.audit = RequestAudit(lambda: runtime.db, action=route.action, request_id=request_id)
        self._principal: Principal | None = None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    # ------------------------------------------------------------ the caller

    def principal(self) -> Principal:
        """The verified caller; raises Unauthorized (401) or Forbidden (403)."""
        if self._principal is None:
            header = self.request.headers.get("Authorization", "")
            if not header.strip() and self.route.session_cookie:
                cookie = self.request.cookies.get("__session", "").strip()
                header = f"Bearer {cookie}" if cookie else ""
            self._principal = self.authorize_with(
                lambda value: self.runtime.authenticator.authenticate(value)
            )(header)
            self.runtime.rate_limiter.authenticated(self._principal)
        return self._principal

    @property
    def known_principal(self) -> Principal | None:
        return self._principal

    def authorize_with(self, verify: Callable[[str], T]) -> Callable[[str], T]:
        """`verify` of an Authorization header value, with a refused token counted
        against the client IP (a request with no header at all was already counted
        before routing); over the limit the refusal becomes a 429. For the Clerk
        session and for routes with a token of their own (the sync trigger's)."""

        def checked(authorization: str) -> T:
            try:
                return verify(authorization)
            except (errors.Unauthorized, errors.Forbidden):
                if authorization.strip():
                    self.runtime.rate_limiter.failed_authentication(self.client_ip)
                raise

        return checked

    def authorization(self) -> str:
        return self.request.headers.get("Authorization", "")

    # ------------------------------------------------------------ parsing

    def body(self, model: type[M]) -> M:
        """The JSON body parsed into the route's declared `body` model: 400 if not
        JSON, 422 if invalid."""
        if self.route.body is not model:
            raise TypeError(f"route {self.route.pattern} declares no body model {model.__name__}")
        return validate(model, self._json())

    def query(self, model: type[M]) -> M:
        """The query string parsed into the route's declared `query` model (422 if invalid)."""
        if self.route.query is not model:
            raise TypeError(f"route {self.route.pattern} declares no query model {model.__name__}")
        return validate(model, {k: v for k, v in self.request.args.items()})

    def wants_json(self) -> bool:
        return "application/json" in self.request.headers.get("Accept", "")

    def _json(self) -> Any:
        body = self.request.get_data(cache=True)
        if not body:
            raise errors.BadRequest("A JSON body is required.")
        edge.check_json_depth(body)
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.BadRequest("The body is not valid JSON.") from exc


def validate(model: type[M], data: Any) -> M:
    """`model` from `data`, or ValidationFailed with locations and messages only
    (the input may hold a secret)."""
    from pydantic import ValidationError as PydanticValidationError

    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        problems = [
            {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise errors.ValidationFailed(errors=problems) from None
