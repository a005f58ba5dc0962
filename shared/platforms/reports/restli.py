"""Rest.li 2.0 query encoding, as LinkedIn's official client encodes it.

    query({"q": "search", "search": {"status": {"values": ["ACTIVE"]}}, "pageSize": 100})
    -> "pageSize=100&q=search&search=(status:(values:List(ACTIVE)))"

Lists are `List(a,b)`, records `(key:value,...)`; strings are percent-encoded
with nothing kept safe (a URN's colons become %3A, a comma in a value %2C), so a
value can never open a list or a record; keys are sorted, at every level. This
is linkedin-api-client 0.3.0's encoder (`linkedin_api.clients.restli.utils.
encoder.param_encode`), and tests/conformance/ holds the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

__all__ = ["encode", "query"]


def query(params: Mapping[str, Any]) -> str:
    """A query string of Rest.li-encoded parameters (no leading "?")."""
    encoded = {quote(key, safe=""): encode(value) for key, value in params.items()}
    return "&".join(f"{key}={encoded[key]}" for key in sorted(encoded))


def encode(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value, safe="")
    if isinstance(value, list | tuple):
        return f"List({','.join(encode(item) for item in value)})"
    if isinstance(value, Mapping):
        pairs = ",".join(f"{encode(k)}:{encode(v)}" for k, v in sorted(value.items()))
        return f"({pairs})"
    return str(value)
