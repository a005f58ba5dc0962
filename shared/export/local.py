"""`LocalExportSink`: the embedded default, a folder (`.cosma/exports` under `make run`).

An object is written to a hidden temporary file beside its place and linked into
place when complete (`os.link` fails if the name exists), so a reader never sees
half an object and an object is never overwritten.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from shared import errors
from shared.export.port import ExportSink, check_key

_PARTIAL = ".partial-"


class LocalExportSink(ExportSink):
    technology = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def uri(self, key: str) -> str:
        return ""  # no warehouse writes into a local folder by itself

    @contextmanager
    def open_write(self, key: str, content_type: str) -> Iterator[BinaryIO]:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(prefix=_PARTIAL, dir=path.parent)
        except OSError as exc:
            raise errors.Unavailable("The export folder cannot be written.") from exc
        try:
            with os.fdopen(fd, "wb") as stream:
                yield stream
            os.link(partial, path)
        except FileExistsError as exc:
            raise errors.Conflict("The export object exists already.") from exc
        except OSError as exc:
            raise errors.Unavailable("The export folder cannot be written.") from exc
        finally:
            Path(partial).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        folder = self._path(prefix.rstrip("/"))
        if not folder.is_dir():
            return []
        found = (
            path.relative_to(self.root).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(_PARTIAL)
        )
        return sorted(found)

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise errors.NotFound("No such export object.") from exc

    @contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        try:
            stream = self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise errors.NotFound("No such export object.") from exc
        with stream:
            yield stream
