"""The client side of a soak run: every request sent, and every answer, recorded.

Each request carries a request id of ours (`X-Request-Id`), which the servers
use as theirs and write into its audit record, so the checks can join the two.
A record holds the id, the route (its pattern), which instance answered, when
the request started and ended, the status (and `Retry-After`), the statuses the
scenario expected, the organization and person it acted as, and what the
answer carried: every UUID and every organization tag (`zqNNxq`, which every
organization's names and user ids contain) found in its body.

One connection per request, so what happened is never ambiguous: a refused
connection was sent nowhere and goes to the next instance, as a load balancer
would send it (`failovers`); an error after the connection opened is an answer
lost (`lost`), the request possibly processed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TAG = re.compile(rb"zq(\d{2})xq")
TIMEOUT_S = 30.0


def tag(index: int) -> str:
    """The mark every name and id of organization `index` carries."""
    return f"zq{index:02d}xq"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    lost: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Recorder:
    """Appends records (one JSON object a line) to one file per process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a")
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self._handle.write(line + "\n")
            if time.monotonic() - self._last_flush > 1.0:
                self._handle.flush()
                self._last_flush = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._handle.flush()
            self._handle.close()


def read_records(folder: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        with path.open() as handle:
            for line in handle:
                line = line.strip()
                if line:
                    records.append(json.loads(line))
    return records


class Api:
    """Sends requests to the instances (round robin, failing over on a refused
    connection) and records each."""

    def __init__(self, bases: list[str], recorder: Recorder, proc: str) -> None:
        self.bases = bases
        self.recorder = recorder
        self.proc = proc
        self._counter = 0
        self._lock = threading.Lock()

    def _next(self) -> tuple[str, int]:
        with self._lock:
            self._counter += 1
            return f"{self.proc}-{self._counter:07d}-{secrets.token_hex(3)}", self._counter

    def call(
        self,
        method: str,
        path: str,
        *,
        route: str,
        expected: Iterable[int],
        org: str = "",
        user: str = "",
        kind: str = "load",
        token: str | None = None,
        body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        ip: str = "",
        server: int | None = None,
        extra: dict[str, Any] | None = None,
        check: Callable[[Answer], str] | None = None,
        annotate: Callable[[Answer], dict[str, Any]] | None = None,
        base: str = "",
    ) -> Answer:
        """One request, recorded. `check` may name a problem with a successful answer
        (recorded as `bad`), `annotate` adds fields read from it; `server` is the
        instance tried first (else round robin), `base` sends it elsewhere (the peer)."""
        rid, serial = self._next()
        sent_headers = {"X-Request-Id": rid, "Connection": "close", **(headers or {})}
        if token is not None:
            sent_headers["Authorization"] = f"Bearer {token}"
        if ip:
            sent_headers["X-Forwarded-For"] = ip
        payload = data
        if body is not None:
            payload = json.dumps(body).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        sent = path.encode() + b" " + (payload or b"")
        sent_ids = {m.decode() for m in UUID.findall(sent)}
        sent_tags = {int(m) for m in TAG.findall(sent)}
        # The instance to try first; a refused connection goes on to the next.
        first = serial % len(self.bases) if server is None else server
        failovers = 0
        started = time.time()
        answer = Answer(0, {}, b"", lost="refused")
        index = -1 if base else first
        if base:
            answer = _send(base, method, path, payload, sent_headers)
        else:
            for attempt in range(len(self.bases)):
                index = (first + attempt) % len(self.bases)
                answer = _send(self.bases[index], method, path, payload, sent_headers)
                if answer.lost != "refused":
                    break
                failovers += 1
        ended = time.time()
        record: dict[str, Any] = {
            "rid": rid,
            "proc": self.proc,
            "kind": kind,
            "org": org,
            "user": user,
            "method": method,
            "route": route,
            "server": index,
            "t0": round(started, 4),
            "t1": round(ended, 4),
            "status": answer.status,
            "expected": sorted(set(expected)),
            "lost": answer.lost,
            "failovers": failovers,
            "retry_after": answer.headers.get("retry-after"),
            "answer_rid": answer.headers.get("x-request-id"),
        }
        if extra:
            record.update(extra)
        if sent_ids:
            record["sent"] = sorted(sent_ids)
        if answer.body:
            if "json" not in answer.headers.get("content-type", ""):
                record["sha256"] = hashlib.sha256(answer.body).hexdigest()
            else:
                ids = {m.decode() for m in UUID.findall(answer.body)} - sent_ids
                tags = {int(m) for m in TAG.findall(answer.body)} - sent_tags
                record["ids"] = sorted(ids)
                record["tags"] = sorted(tags)
        if check is not None and answer.ok:
            problem = check(answer)
            if problem:
                record["bad"] = problem
        if annotate is not None and answer.ok:
            record.update(annotate(answer))
        self.recorder.write(record)
        return answer


def _send(
    base: str, method: str, path: str, payload: bytes | None, headers: dict[str, str]
) -> Answer:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=TIMEOUT_S)
    try:
        try:
            conn.connect()
        except ConnectionRefusedError:
            return Answer(0, {}, b"", lost="refused")
        except OSError as exc:
            return Answer(0, {}, b"", lost=f"connect:{type(exc).__name__}")
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return Answer(0, {}, b"", lost=type(exc).__name__)
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()
