"""An export's manifest, and the download of its objects until the link expires.

An export is a folder `<org>/<client>/<export id>/` in the sink: the Parquet
objects the warehouse wrote, and `manifest.json` beside them, written last.
The manifest lists each object with its row count (from the Parquet footer,
read without the rows), its size and its sha256 (streamed once), and when the
download expires. A download is served only for a name the manifest lists and
only before `expires_at`; after it the answer is Gone (the bucket's lifecycle
rule deletes the objects some days later).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared import errors
from shared.export.port import CHUNK_BYTES, ExportFolder

__all__ = [
    "MANIFEST",
    "Download",
    "Export",
    "ExportObject",
    "export_prefix",
    "new_export_id",
    "open_download",
    "seal",
]

MANIFEST = "manifest.json"
PARQUET = "application/vnd.apache.parquet"
_EXPORT_ID = re.compile(r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}$")
_MANIFEST_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ExportObject:
    name: str
    size: int
    sha256: str
    rows: int | None = None  # None for the manifest

    @property
    def stem(self) -> str:
        """The name in a download link (path parameters carry no dots)."""
        return self.name.rsplit(".", 1)[0]

    def public(self, url: str) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "size": self.size, "sha256": self.sha256}
        if self.rows is not None:
            body["rows"] = self.rows
        body["url"] = f"{url}/{self.stem}"
        return body


@dataclass(frozen=True)
class Export:
    export_id: str
    client_id: str
    created_at: dt.datetime
    expires_at: dt.datetime
    objects: tuple[ExportObject, ...]
    manifest: ExportObject

    @property
    def rows(self) -> int:
        return sum(o.rows or 0 for o in self.objects)

    @property
    def resource(self) -> str:
        """How the audit record names this export."""
        return f"/clients/{self.client_id}/exports/{self.export_id}"

    def public(self, base_url: str) -> dict[str, Any]:
        url = f"{base_url.rstrip('/')}{self.resource}"
        return {
            "export_id": self.export_id,
            "client_id": self.client_id,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "rows": self.rows,
            "objects": [o.public(url) for o in self.objects],
            "manifest": self.manifest.public(url),
        }


@dataclass(frozen=True)
class Download:
    name: str
    size: int
    content_type: str
    chunks: Iterator[bytes]


def new_export_id(now: dt.datetime) -> str:
    """Sortable by time, unguessable enough that two exports never share a folder."""
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}"


def export_prefix(org_id: str, client_id: str, export_id: str) -> str:
    """The export's folder; an id not of our making is NotFound, like a missing one."""
    if not _EXPORT_ID.match(export_id):
        raise errors.NotFound("No such export.")
    return f"{org_id}/{client_id}/{export_id}/"


def describe(folder: ExportFolder, name: str) -> ExportObject:
    """Size and sha256 of an object (its bytes streamed once) and, for Parquet, its row
    count from the footer (only the footer is read)."""
    import pyarrow.parquet as pq

    key = folder.key(name)
    digest = hashlib.sha256()
    size = 0
    for chunk in folder.sink.chunks(key, CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    rows: int | None = None
    if name.endswith(".parquet"):
        with folder.sink.open_read(key) as stream:
            try:
                rows = int(pq.ParquetFile(stream).metadata.num_rows)
            except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                raise errors.Unavailable("An exported object is not readable Parquet.") from exc
    return ExportObject(name, size, digest.hexdigest(), rows)


def seal(
    folder: ExportFolder,
    *,
    export_id: str,
    client_id: str,
    created_at: dt.datetime,
    expires_at: dt.datetime,
) -> Export:
    """Describe every object the warehouse wrote into `folder` and write the manifest."""
    names = [n for n in folder.names() if n != MANIFEST]
    if any(not n.endswith(".parquet") for n in names):
        raise errors.Unavailable("The export holds an unexpected object.")
    objects = tuple(describe(folder, name) for name in names)
    body = {
        "export_id": export_id,
        "client_id": client_id,
        "created_at": created_at.isoformat(),
        "expires_at": expires_at.isoformat(),
        "objects": [
            {"name": o.name, "rows": o.rows, "size": o.size, "sha256": o.sha256} for o in objects
        ],
    }
    data = json.dumps(body, indent=2, sort_keys=True).encode()
    with folder.open_write(MANIFEST, "application/json") as stream:
        stream.write(data)
    manifest = ExportObject(MANIFEST, len(data), hashlib.sha256(data).hexdigest())
    return Export(export_id, client_id, created_at, expires_at, objects, manifest)


def _manifest(folder: ExportFolder) -> dict[str, Any]:
    key = folder.key(MANIFEST)
    if folder.sink.size(key) > _MANIFEST_MAX_BYTES:
        raise errors.Unavailable("The export's manifest is too large.")
    with folder.sink.open_read(key) as stream:
        try:
            body: dict[str, Any] = json.loads(stream.read())
        except ValueError as exc:
            raise errors.Unavailable("The export's manifest is unreadable.") from exc
    return body


def open_download(folder: ExportFolder, stem: str, now: dt.datetime) -> Download:
    """An object of the export (by the name in its link), while the link is valid."""
    try:
        manifest = _manifest(folder)
    except errors.NotFound:
        raise errors.NotFound("No such export.") from None
    if now >= dt.datetime.fromisoformat(manifest["expires_at"]):
        raise errors.Gone("The download link has expired.")
    listed = {n["name"].rsplit(".", 1)[0]: n["name"] for n in manifest["objects"]}
    listed[MANIFEST.rsplit(".", 1)[0]] = MANIFEST
    name = listed.get(stem)
    if name is None:
        raise errors.NotFound("No such export object.")
    key = folder.key(name)
    size = folder.sink.size(key)  # a missing object fails here, before any byte is sent
    content_type = "application/json" if name == MANIFEST else PARQUET
    return Download(name, size, content_type, folder.sink.chunks(key, CHUNK_BYTES))
