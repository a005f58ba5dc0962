"""What the request itself tells before any handler runs: the client's address,
the request id, the body's size.
"""

from __future__ import annotations

import re
import uuid

from werkzeug.wrappers import Request

from shared import errors

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id(request: Request) -> str:
    """The caller's `X-Request-Id` when well formed, else a new one."""
    given = request.headers.get("X-Request-Id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def client_ip(request: Request, trusted_entries: int = 0) -> str:
    """The client's address, as far as our own infrastructure vouches for it.

    `X-Forwarded-For` is whatever the client sent, with the entries our own
    proxies appended at its right end. Google's external Application Load
    Balancer appends two, `<client address>,<load balancer address>`, so with
    `trusted_entries=2` the client is the second entry from the right; anything
    left of it is the client's own claim and is never believed. With 0 (local
    runs, no proxy) or a header shorter than what our proxies append (a request
    that did not come through them), it is the socket peer.
    """
    if trusted_entries > 0:
        forwarded = [
            p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()
        ]
        if len(forwarded) >= trusted_entries:
            return forwarded[-trusted_entries]
    return request.remote_addr or ""


# How deep a JSON body may nest. Our models nest three levels at most; the
# parsers recurse once per level, so a body of 30,000 `[` must be refused
# before any of them runs.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def check_json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """400 for a body that nests deeper than `limit`, without recursing."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return  # cannot nest deeper than it has brackets: the common case, at once
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", body)):
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise errors.BadRequest(f"The body nests deeper than {limit} levels.")
        else:
            depth -= 1


def check_json_content_type(request: Request) -> None:
    """415 unless the body is declared JSON: a cross-site form (text/plain, form
    or multipart encoded, or with no type at all) never reaches a JSON route."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    ):
        raise errors.UnsupportedMediaType("The body must be sent as application/json.")


def check_body_size(request: Request, limit: int) -> None:
    """413 before anything reads a body larger than `limit`."""
    length = request.content_length
    if length is not None and length > limit:
        raise errors.PayloadTooLarge(f"The body may be at most {limit} bytes.")
    if length is None and request.method in ("POST", "PUT", "PATCH"):
        # Chunked bodies have no length: read one byte past the limit to decide.
        data = request.stream.read(limit + 1)
        if len(data) > limit:
            raise errors.PayloadTooLarge(f"The body may be at most {limit} bytes.")
        request._cached_data = data  # werkzeug's cache for get_data()


def trace(header: str, project: str) -> str:
    """`X-Cloud-Trace-Context: TRACE_ID/SPAN;o=1` or W3C `traceparent` to the trace field."""
    if not header:
        return ""
    if header.count("-") == 3 and "/" not in header:  # traceparent: 00-<trace>-<span>-<flags>
        trace_id = header.split("-")[1]
    else:
        trace_id = header.split("/", 1)[0]
    if not trace_id.isalnum() or len(trace_id) > 64:
        return ""
    return f"projects/{project}/traces/{trace_id}" if project else trace_id
