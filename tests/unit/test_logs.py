"""Structured logs: Cloud Logging fields, request ids, and nothing secret."""

from __future__ import annotations

import io
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import logs
from shared import redact as redact_module
from shared.http import edge
from shared.redact import redact

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEyMyJ9.c2lnbmF0dXJlc2lnbmF0dXJl"


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("cosma.test.logs")
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, stream


def test_json_line_with_trace_and_request_id(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    trace = edge.trace("105445aa7843bc8bf206b12000100000/1;o=1", "proj")
    with logs.bind("req-12345678", trace, "oauth"):
        logger.info("hello %s", "world")
    entry = json.loads(stream.getvalue())
    assert entry["severity"] == "INFO"
    assert entry["message"] == "hello world"
    assert (
        entry["logging.googleapis.com/trace"]
        == "projects/proj/traces/105445aa7843bc8bf206b12000100000"
    )
    assert entry["logging.googleapis.com/labels"] == {
        "request_id": "req-12345678",
        "function": "oauth",
    }


def test_traceparent_header() -> None:
    header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert edge.trace(header, "p") == "projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    "secret",
    [
        f"Authorization: Bearer {JWT}",
        "refresh_token=1//0gAbCdEfGhIjKlMnOp",
        "client_secret: 'GOCSPX-abcdefghijkl'",
        "mail jane.doe@agency.example now",
        "gAAAAABnX7s2xQ-fernet-ciphertext-abcdefghijklmnop==",
        "from 203.0.113.7",
        "code=4/0AX4XfWh-authorization-code&state=abc",
    ],
)
def test_secrets_never_reach_a_line(
    captured: tuple[logging.Logger, io.StringIO], secret: str
) -> None:
    logger, stream = captured
    logger.info("value %s", secret)
    try:
        raise ValueError(secret)
    except ValueError:
        logger.exception("failed")
    out = stream.getvalue()
    for needle in (
        JWT,
        "1//0gAbCdEfGhIjKlMnOp",
        "GOCSPX-abcdefghijkl",
        "jane.doe@agency.example",
        "gAAAAABnX7s2xQ",
        "203.0.113.7",
        "4/0AX4XfWh-authorization-code",
    ):
        assert needle not in out


def test_redact_keeps_ordinary_text() -> None:
    assert redact("synced 120 rows for campaign 42") == "synced 120 rows for campaign 42"


@settings(max_examples=500, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("aeBrtokn=:. @gAxX_-/019\"'&" + "eyJ" + "ABCDEFGHIJ")),
        max_size=80,
    )
)
def test_the_one_pass_check_never_skips_what_a_pattern_would_replace(text: str) -> None:
    # `redact` skips its substitutions when one search finds no pattern: the result
    # must be what every substitution in turn gives.
    expected = text
    for pattern, replacement in redact_module._PATTERNS:
        expected = pattern.sub(replacement, expected)
    assert redact(text) == expected
