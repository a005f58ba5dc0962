"""The log scan itself must catch what it is meant to catch."""

from __future__ import annotations

import logging

from tests.support import log_scan


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, message, args, None)


def test_scan_flags_a_known_secret_in_a_field() -> None:
    handler = log_scan.CaptureHandler()
    secret = log_scan.remember("rt-meta-Zx9_known-secret-value")
    record = _record("refreshed")
    record.fields = {"note": f"raw {secret}"}  # a field that escapes redaction patterns
    handler.emit(record)
    assert log_scan.leaks(handler.lines) != []


def test_scan_flags_jwt_and_fernet_shapes() -> None:
    jwt_like = "eyJhbGciOiJSUzI1NiJ9x.eyJzdWIiOiJ1c2VyIn0xx.c2lnbmF0dXJlMTIzNDU2"
    fernet_like = "gAAAAA" + "B" * 60
    assert log_scan.leaks([f'{{"message": "{jwt_like}"}}'], known=set())
    assert log_scan.leaks([f'{{"message": "{fernet_like}"}}'], known=set())
    assert log_scan.leaks(['{"message": "Authorization: Bearer abcdefghijklmnop"}'], known=set())


def test_redacted_lines_pass() -> None:
    handler = log_scan.CaptureHandler()
    handler.emit(
        _record("token %s", "eyJhbGciOiJSUzI1NiJ9x.eyJzdWIiOiJ1c2VyIn0xx.c2lnbmF0dXJlMTIz")
    )
    handler.emit(_record("Authorization: Bearer abcdefghijklmnopqrstu"))
    assert log_scan.leaks(handler.lines, known=set()) == []
