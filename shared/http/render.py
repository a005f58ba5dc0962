"""Responses: JSON, problem+json, redirects, and the headers every answer carries.

This is the one place an error of the `shared.errors` tree becomes an HTTP
answer (`problem_response`); a route that answers its failures another way
(the OAuth callback's redirect) still goes through the same life cycle, so
its audit record is the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from shared import errors

PROBLEM_JSON = "application/problem+json"

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


def no_content() -> Response:
    return Response(status=204)


def redirect(base_url: str, path: str, params: Mapping[str, str]) -> Response:
    """A 302 to `base_url` + `path` with `params` as its query (never a secret)."""
    target = f"{base_url.rstrip('/')}{path}?{urlencode(dict(params))}"
    return Response(status=302, headers={"Location": target})


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
    elif isinstance(exc, errors.RateLimited):
        response.headers["Retry-After"] = str(_whole_seconds(exc.retry_after))
    return response


def _whole_seconds(value: float, most: int = 86_400) -> int:
    """A provider's wait as Retry-After takes it: whole seconds, at least one, and at
    most a day whatever the provider said (it may say nonsense: NaN, infinity)."""
    if not math.isfinite(value):
        return most
    return min(max(math.ceil(value), 1), most)


def preflight(methods: list[str], origin_ok: bool) -> Response:
    response = Response(status=204)
    if origin_ok:
        response.headers["Access-Control-Allow-Methods"] = ", ".join([*methods, "OPTIONS"])
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return response


_SECURITY_KEYS = frozenset(name.lower() for name in SECURITY_HEADERS)
_SECURITY_LIST = list(SECURITY_HEADERS.items())
# Set here whatever the handler set: removed first, then added once.
_OURS = frozenset({"cache-control", "x-request-id"})


def finish(response: Response, request_id: str, allowed_origin: str) -> Response:
    """Headers every response carries, whatever produced it.

    One pass over the headers the handler set (werkzeug's case-insensitive
    lookups cost more than the rest of a small answer): a security header the
    handler chose is kept, every other one added.
    """
    headers = response.headers
    present = {name.lower() for name, _ in headers}
    for name in present & _OURS:
        del headers[name]
    if present.isdisjoint(_SECURITY_KEYS):
        headers.extend(_SECURITY_LIST)
    else:
        headers.extend((k, v) for k, v in _SECURITY_LIST if k.lower() not in present)
    headers.extend((("Cache-Control", "no-store"), ("X-Request-Id", request_id)))
    if allowed_origin:
        headers["Access-Control-Allow-Origin"] = allowed_origin
        headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    headers.add("Vary", "Origin")
    return response
