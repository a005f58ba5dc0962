"""A local Secret Manager speaking the v1 REST API the real client calls.

Only what `SecretManagerSecrets` uses: access a version (a number or
"latest") and list a secret's versions (with `filter=state:ENABLED`). Errors
are Google's JSON error bodies, so the client raises its own exceptions
(NotFound, PermissionDenied, ...) exactly as against the real service.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import google_crc32c
from werkzeug.wrappers import Request, Response

from tests.support.servers import Recorder, serve

_ACCESS = re.compile(r"^/v1/projects/([^/]+)/secrets/([^/]+)/versions/([^/:]+):access$")
_LIST = re.compile(r"^/v1/projects/([^/]+)/secrets/([^/]+)/versions$")


@dataclass
class _Version:
    number: int
    data: bytes
    state: str = "ENABLED"


@dataclass
class FakeSecretManager:
    project: str = "cosma-test"
    secrets: dict[str, list[_Version]] = field(default_factory=dict)
    deny: bool = False  # answer 403 to everything
    corrupt_crc: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, data: bytes, state: str = "ENABLED") -> str:
        with self.lock:
            versions = self.secrets.setdefault(name, [])
            version = _Version(len(versions) + 1, data, state)
            versions.append(version)
            return str(version.number)

    def set_state(self, name: str, version: str, state: str) -> None:
        with self.lock:
            self.secrets[name][int(version) - 1].state = state

    # ------------------------------------------------------------ WSGI

    def handle(self, request: Request) -> Response:
        if self.deny:
            return _error(403, "PERMISSION_DENIED", "Permission denied on resource.")
        if request.method != "GET":
            return _error(405, "UNIMPLEMENTED", "Only GET is served here.")
        if m := _ACCESS.match(request.path):
            return self._access(*m.groups())
        if m := _LIST.match(request.path):
            return self._list(*m.groups(), request.args.get("filter", ""))
        return _error(404, "NOT_FOUND", "No such method.")

    def _access(self, project: str, name: str, version: str) -> Response:
        with self.lock:
            versions = self.secrets.get(name, []) if project == self.project else []
            enabled = [v for v in versions if v.state == "ENABLED"]
            if version == "latest":
                chosen = enabled[-1] if enabled else None
            else:
                chosen = next((v for v in versions if str(v.number) == version), None)
        path = f"projects/{project}/secrets/{name}/versions/{version}"
        if chosen is None:
            return _error(404, "NOT_FOUND", f"Secret [{path}] not found or has no versions.")
        if chosen.state != "ENABLED":
            return _error(400, "FAILED_PRECONDITION", f"{path} is in {chosen.state} state.")
        crc = google_crc32c.value(chosen.data) ^ (1 if self.corrupt_crc else 0)
        body = {
            "name": f"projects/{project}/secrets/{name}/versions/{chosen.number}",
            "payload": {
                "data": base64.b64encode(chosen.data).decode(),
                "dataCrc32c": str(crc),
            },
        }
        return _json(200, body)

    def _list(self, project: str, name: str, filter_: str) -> Response:
        with self.lock:
            if project != self.project or name not in self.secrets:
                return _error(
                    404, "NOT_FOUND", f"Secret [projects/{project}/secrets/{name}] not found."
                )
            versions = list(self.secrets[name])
        if filter_:
            m = re.fullmatch(r"state:(\w+)", filter_.strip())
            if not m:
                return _error(400, "INVALID_ARGUMENT", "Unsupported filter.")
            versions = [v for v in versions if v.state == m.group(1)]
        # The API lists newest first.
        items: list[dict[str, Any]] = [
            {
                "name": f"projects/{project}/secrets/{name}/versions/{v.number}",
                "state": v.state,
                "createTime": "2024-01-01T00:00:00Z",
            }
            for v in sorted(versions, key=lambda v: v.number, reverse=True)
        ]
        return _json(200, {"versions": items, "totalSize": len(items)})


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json(status, {"error": {"code": status, "message": message, "status": code}})


@contextmanager
def secret_manager(
    fake: FakeSecretManager | None = None,
) -> Iterator[tuple[FakeSecretManager, Recorder, str]]:
    """Run a fake Secret Manager on loopback; yields (state, recorder, endpoint URL)."""
    fake = fake or FakeSecretManager()
    recorder = Recorder(fake.handle)
    with serve(recorder) as url:
        yield fake, recorder, url
