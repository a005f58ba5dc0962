"""The HTTP layer: routing, the request life cycle, rendering.

The only part of `shared` that knows werkzeug and the request `Context`.
Handlers (functions/<name>/main.py) parse with their route's models, make
one call into a service with typed values and the request's audit sink, and
render the domain result with `json_response` and friends.

    routing     Route, Router: declarations and matching
    lifecycle   request id, CORS, body limit, admission, errors, the audit record
    context     Context: the handler's view of one request
    edge        client address, request id, body size
    render      JSON, problem+json, redirects, security headers
    openapi     the OpenAPI document, generated from the routes' models
"""

from shared.http.context import Context, validate
from shared.http.render import (
    PROBLEM_JSON,
    json_response,
    no_content,
    problem_response,
    redirect,
)
from shared.http.routing import Route, Router

__all__ = [
    "PROBLEM_JSON",
    "Context",
    "Route",
    "Router",
    "json_response",
    "no_content",
    "problem_response",
    "redirect",
    "validate",
]
