"""The one exception tree. `shared.http` renders it as problem+json in one place.

    CosmaError                      500  anything we raise on purpose
    ├── BadRequest                  400  malformed JSON, unreadable input
    │   └── InvalidState            400  an OAuth connect link that cannot be used (fixed)
    ├── Unauthorized                401  any authentication failure (fixed)
    │   └── TokenRefused            401  why a token was refused, for the log only
    ├── Forbidden                   403  authenticated, but no organization or no right
    ├── NotFound                    404  missing, or not yours (no existence leak)
    ├── MethodNotAllowed            405
    ├── Conflict                    409
    ├── Gone                        410  an export's download link past its expiry
    ├── PayloadTooLarge             413
    ├── UnsupportedMediaType        415  a body that is not JSON
    ├── ValidationFailed            422  pydantic errors, without the offending values
    ├── TooManyRequests             429  carries retry_after
    ├── UpstreamError               502  a provider answered with an error
    │   └── ProviderError           502  the ad platforms' errors, mapped once per platform
    │       ├── InvalidGrant        502  the refresh token or code is dead: reconnect
    │       ├── AccessDenied        400  the user refused consent at the provider
    │       ├── PermissionDenied    502  the token works but may not read this account
    │       ├── AccessTokenRejected 502  the access token was refused (the grant may live)
    │       ├── RateLimited         503  429 or a platform quota; carries retry_after
    │       ├── ReportTooLarge      502  a report query too large or slow: ask for less
    │       └── ProviderUnavailable 503  5xx, timeouts, connection errors: retry later
    ├── Unavailable                 503  a dependency is down (database, JWKS, warehouse)
    ├── InvalidToken                500  a stored token cannot be sealed or opened (fixed)
    ├── NotActive                   500  a leased connection was disconnected meanwhile
    ├── LeaseLost                   500  another sync run holds the connection now
    └── LoadRefused                 500  a sync's warehouse load failed (its error class)

Outside the tree, one signal that is no error: `DryRunRollback`, raised at the
end of a dry run's transaction to undo it (the directory's reconcile).

Fixed-message errors (`InvalidState`, `Unauthorized`, `InvalidToken`)
take no message at all: the caller must not learn which check failed, and a
message passed by mistake cannot leak through them.

Adapters translate library errors into these once, with `raise ... from exc`.
Messages are written for the caller: they never carry a token, a key, SQL or
a stack trace; the providers' messages name the platform and the kind of
failure, never the provider's raw body (it can echo what we sent).
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


class _Fixed(CosmaError):
    """An error whose message is its class's own, whatever happened."""

    message = ""

    def __init__(self, **extra: Any) -> None:
        super().__init__(self.message, **extra)


class BadRequest(CosmaError):
    status, slug, title = 400, "bad-request", "Bad request"


class InvalidState(_Fixed, BadRequest):
    """One answer for every state that cannot be used: unknown, forged, expired,
    used, or another user's."""

    slug, title = "invalid-state", "Invalid or expired connect link"
    message = "This connect link is invalid or has expired; start again."


class Unauthorized(_Fixed):
    status, slug, title = 401, "unauthorized", "Authentication required"
    message = "The request could not be authenticated."


class TokenRefused(Unauthorized):
    """A refused token with its reason: the reason is logged where this is caught
    and never rendered (the answer is `Unauthorized`'s fixed message)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class Forbidden(CosmaError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(CosmaError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(CosmaError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(CosmaError):
    status, slug, title = 409, "conflict", "Conflict"


class Gone(CosmaError):
    status, slug, title = 410, "gone", "Gone"


class PayloadTooLarge(CosmaError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(CosmaError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


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


class ProviderError(UpstreamError):
    """An ad platform's error, mapped once where its answer is read."""


class InvalidGrant(ProviderError):
    slug, title = "invalid-grant", "The provider refused the grant"


class AccessDenied(ProviderError):
    status, slug, title = 400, "access-denied", "Access was denied at the provider"


class PermissionDenied(ProviderError):
    slug, title = "permission-denied", "The provider denied access to the account"


class AccessTokenRejected(ProviderError):
    """The provider refused the access token (HTTP 401 or the platform's own code).

    Not `InvalidGrant`: the refresh token may be fine. The sync engine refreshes
    the access token once and retries; a second refusal is treated as a dead grant.
    """

    slug, title = "access-token-rejected", "The provider refused the access token"


class RateLimited(ProviderError):
    """A provider's 429 or quota. Answered 503 with its Retry-After: the caller did
    nothing wrong, and it can come back when the provider lets us."""

    status, slug, title = 503, "provider-rate-limited", "The provider is rate limiting us"

    def __init__(self, detail: str | None = None, retry_after: float = 60.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ReportTooLarge(ProviderError):
    """The provider refused a report as too large or too slow for one request (Meta's
    error 100, subcode 1504018): the connector asks again for less, not the same."""

    slug, title = "report-too-large", "The provider refused a report as too large"


class ProviderUnavailable(ProviderError):
    status, slug, title = 503, "provider-unavailable", "The provider is unavailable"


class Unavailable(CosmaError):
    status, slug, title = 503, "unavailable", "Service unavailable"


class InvalidToken(_Fixed):
    """One opaque error for every failure to seal or open a stored token."""

    slug, title = "credential-unreadable", "Stored credential unreadable"
    message = "A stored credential could not be read."


class NotActive(CosmaError):
    """The connection was disconnected or marked for reauthorization after it was leased."""

    slug, title = "connection-not-active", "The connection is no longer active"


class LeaseLost(CosmaError):
    """Another run holds the connection's lease now (ours expired)."""

    slug, title = "lease-lost", "The connection's lease was lost"


class LoadRefused(CosmaError):
    """A sync's warehouse load failed; `error_class` names how, for the run's record."""

    slug, title = "load-refused", "The warehouse load failed"

    def __init__(self, error_class: str) -> None:
        super().__init__()
        self.error_class = error_class


class DryRunRollback(Exception):
    """Raised at the end of a dry run's transaction to undo it; caught by its raiser."""
