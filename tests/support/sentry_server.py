"""A local Sentry endpoint: receives real envelopes from sentry-sdk.

The SDK posts to `/api/<project>/envelope/`, gzip-compressed (brotli when the
`brotli` module is installed). `SentryServer` keeps every envelope
decompressed, byte for byte, so tests can search the exact bytes that would
have left the machine, and parses them into (item header, payload) pairs.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.support.servers import serve


class SentryServer:
    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        self.raw: list[bytes] = []
        self.lock = threading.Lock()
        self.url = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        encoding = request.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            data = gzip.decompress(body)
        elif encoding == "br":
            import brotli  # only when the SDK found it

            data = brotli.decompress(body)
        else:
            data = body
        with self.lock:
            self.raw.append(body)
            if request.path.endswith("/envelope/"):
                self.envelopes.append(data)
        return Response("{}", mimetype="application/json")(environ, start_response)

    def dsn(self, key: str = "publickey", project: int = 1) -> str:
        host = self.url.removeprefix("http://")
        return f"http://{key}@{host}/{project}"

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.envelopes) >= count:
                    return list(self.envelopes)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} envelope(s), got {len(self.envelopes)}")

    @staticmethod
    def items(envelope: bytes) -> list[tuple[dict[str, Any], Any]]:
        """Envelope items as (header, payload); JSON payloads parsed."""
        lines = envelope.split(b"\n")
        items: list[tuple[dict[str, Any], Any]] = []
        i = 1  # line 0 is the envelope header
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            header = json.loads(lines[i])
            payload = lines[i + 1] if i + 1 < len(lines) else b""
            i += 2
            try:
                items.append((header, json.loads(payload)))
            except ValueError:
                items.append((header, payload))
        return items

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            envelopes = list(self.envelopes)
        return [
            payload
            for envelope in envelopes
            for header, payload in self.items(envelope)
            if header.get("type") in ("event", "transaction")
        ]


@contextmanager
def sentry_server() -> Iterator[SentryServer]:
    server = SentryServer()
    with serve(server) as url:
        server.url = url
        yield server
