"""The one exception tree. `shared.http` renders it as problem+json in one place.

    CosmaError                 500  anything we raise on purpose
    ├── BadRequest             400  malformed JSON, unreadable input
    ├── Unauthorized           401  any authentication failure (one fixed message)
    ├── Forbidden              403  authenticated, but no organization or no right
    ├── NotFound               404  missing, or not yours (no existence leak)
    ├── MethodNotAllowed       405
    ├── Conflict               409
    ├── PayloadTooLarge        413
    ├── ValidationFailed       422  pydantic errors, without the offending values
    ├── TooManyRequests        429  carries retry_after
    ├── UpstreamError          502  a provider answered with an error
    └── Unavailable            503  a dependency is down (database, JWKS, warehouse)

Adapters translate library errors into these once, with `raise ... from exc`.
Messages are written for the caller: they never carry a token, a key, SQL or
a stack trace.
"""

from __future__ import annotations

from typing import Any


class CosmaError(Exception):
    status = 500
    slug = "internal"
    title = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)


class BadRequest(CosmaError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(CosmaError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        # One fixed message: the caller must not learn which check failed.
        super().__init__("The request could not be authenticated.", **extra)


class Forbidden(CosmaError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(CosmaError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(CosmaError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(CosmaError):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(CosmaError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class ValidationFailed(CosmaError):
    status, slug, title = 422, "validation", "Validation failed"

    def __init__(self, detail: str | None = None, errors: list[dict[str, Any]] | None = None):
        super().__init__(detail or "The request did not pass validation.", errors=errors or [])


class TooManyRequests(CosmaError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, retry_after: int, limit: int = 0, remaining: int = 0, window: int = 0):
        super().__init__("Rate limit exceeded; retry later.")
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining
        self.window = window


class UpstreamError(CosmaError):
    status, slug, title = 502, "upstream", "Upstream provider error"


class Unavailable(CosmaError):
    status, slug, title = 503, "unavailable", "Service unavailable"
