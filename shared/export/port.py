"""The export-sink port: where client exports are written and read back from.

A sink holds objects under keys (`<org>/<client>/<export id>/<name>`). Invariants
both adapters keep (tests/integration/test_export_contract.py checks them on both):

- keys are relative paths of opaque names only (`check_key`): nothing a caller
  passes can reach outside the sink;
- an object appears whole or not at all: a write that fails leaves no object;
- `keys(prefix)` lists exactly the objects written under `prefix`, sorted;
- `open_read` is seekable (a Parquet footer is read without the whole object)
  and `chunks` streams an object in bounded pieces, so no reader holds a large
  export in memory;
- a missing object is `NotFound`; any other failure of the store is `Unavailable`.

`uri(key)` is where a warehouse that writes by itself (BigQuery's extract job)
puts an object: `gs://bucket/key` for a bucket, "" for a sink no warehouse
can reach, in which case the warehouse adapter writes through `open_write`.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO

from shared import errors

__all__ = ["CHUNK_BYTES", "ExportFolder", "ExportSink", "check_key"]

CHUNK_BYTES = 1024 * 1024  # what a download streams at a time
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def check_key(key: str, *, wildcard: bool = False) -> str:
    """`key` if every segment is an opaque name (no `..`, no leading `/`), else NotFound.
    With `wildcard`, `*` may stand in a name (BigQuery numbers the shards it writes)."""
    segments = (key.replace("*", "0") if wildcard else key).split("/")
    if not key or any(not _SEGMENT.match(s) or ".." in s for s in segments):
        raise errors.NotFound("No such export object.")
    return key


class ExportSink(abc.ABC):
    """Objects by key: written once, listed, described and streamed back."""

    technology: str

    @abc.abstractmethod
    def uri(self, key: str) -> str:
        """Where a warehouse writes `key` (which may hold a `*`) by itself, or "" when it
        cannot reach this sink."""

    @abc.abstractmethod
    def open_write(self, key: str, content_type: str) -> AbstractContextManager[BinaryIO]:
        """A binary stream for a new object; it exists once the block ends without error."""

    @abc.abstractmethod
    def keys(self, prefix: str) -> list[str]:
        """Every object under `prefix` (a folder, ending in `/`), sorted."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes; NotFound if there is none."""

    @abc.abstractmethod
    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A seekable binary stream of the object; NotFound if there is none."""

    def chunks(self, key: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The object in pieces of at most `chunk_bytes` (for streaming a download)."""
        with self.open_read(key) as stream:
            while chunk := stream.read(chunk_bytes):
                yield chunk

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients."""


class ExportFolder:
    """The objects of one export: a sink and a folder in it. This is what a warehouse
    adapter writes into (`shared.warehouse.port.ExportTarget`)."""

    def __init__(self, sink: ExportSink, prefix: str) -> None:
        self.sink = sink
        self.prefix = check_key(prefix.rstrip("/")) + "/"

    def key(self, name: str) -> str:
        return check_key(self.prefix + name)

    def uri(self, name: str) -> str:
        return self.sink.uri(check_key(self.prefix + name, wildcard=True))

    def open_write(
        self, name: str, content_type: str = "application/vnd.apache.parquet"
    ) -> AbstractContextManager[BinaryIO]:
        return self.sink.open_write(self.key(name), content_type)

    def names(self) -> list[str]:
        """The names of the folder's objects, sorted."""
        return [key[len(self.prefix) :] for key in self.sink.keys(self.prefix)]
