"""`GCSExportSink`: client exports in a Cloud Storage bucket (google-cloud-storage).

The bucket is the environment's export bucket (terraform/modules/exports): uniform
access, public access prevented, objects deleted by a lifecycle rule after a set
number of days. BigQuery's extract job writes the Parquet objects into it as the
datasets function's account (`uri`); this adapter writes the manifest, reads the
Parquet footers and streams objects back for the download route.

- Objects are uploaded only once their writer's block ends cleanly (a failed
  write sends nothing), with `if_generation_match=0`: an existing object is
  never replaced.
- Reads are ranged (`Blob.open("rb")`), so a footer read or a streamed download
  never holds a whole object in memory.
- Library errors map to `shared.errors` once, in `_translated`.
"""

from __future__ import annotations

import concurrent.futures
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any, BinaryIO, cast

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions

from shared import errors
from shared.export.port import ExportSink, check_key

_UPLOAD_CHUNK = 8 * 1024 * 1024  # resumable upload pieces (a multiple of 256 KiB)
_READ_CHUNK = 1024 * 1024


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except errors.CosmaError:
        raise
    except api_exceptions.NotFound as exc:
        raise errors.NotFound("No such export object.") from exc
    except api_exceptions.PreconditionFailed as exc:
        raise errors.Conflict("The export object exists already.") from exc
    except (
        api_exceptions.GoogleAPICallError,
        api_exceptions.RetryError,
        auth_exceptions.GoogleAuthError,
        requests.exceptions.RequestException,
        concurrent.futures.TimeoutError,
        ConnectionError,
    ) as exc:
        raise errors.Unavailable("The export bucket is unavailable.") from exc


class GCSExportSink(ExportSink):
    technology = "gcs"

    def __init__(self, bucket: str, *, project: str = "", endpoint: str = "") -> None:
        if not bucket:
            raise errors.Unavailable("The export bucket is not configured.")
        self.bucket_name = bucket
        self._project = project
        self._endpoint = endpoint

    @cached_property
    def _bucket(self) -> Any:
        from google.cloud import storage  # type: ignore[attr-defined]

        if self._endpoint:
            # A local endpoint (tests, emulators): no Google credentials involved.
            from google.auth.credentials import AnonymousCredentials

            client = storage.Client(
                project=self._project or "local",
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": self._endpoint},
            )
        else:
            with _translated():
                client = storage.Client(project=self._project or None)
        return client.bucket(self.bucket_name)

    def close(self) -> None:
        bucket = self.__dict__.pop("_bucket", None)
        if bucket is not None:
            bucket.client.close()

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{check_key(key, wildcard=True)}"

    @contextmanager
    def open_write(self, key: str, content_type: str) -> Iterator[BinaryIO]:
        blob = self._bucket.blob(check_key(key), chunk_size=_UPLOAD_CHUNK)
        # Spooled, then uploaded once the block ends cleanly: an error sends nothing.
        # (A `Blob.open("wb")` writer left unclosed still finishes its upload when
        # the garbage collector closes it, so it cannot express "no object".)
        with tempfile.SpooledTemporaryFile(max_size=_UPLOAD_CHUNK) as spool:
            yield cast(BinaryIO, spool)
            with _translated():
                blob.upload_from_file(
                    spool, rewind=True, content_type=content_type, if_generation_match=0
                )

    def keys(self, prefix: str) -> list[str]:
        with _translated():
            folder = check_key(prefix.rstrip("/")) + "/"
            blobs = self._bucket.client.list_blobs(self._bucket, prefix=folder)
            return sorted(blob.name for blob in blobs)

    def size(self, key: str) -> int:
        with _translated():
            blob = self._bucket.get_blob(check_key(key))
        if blob is None:
            raise errors.NotFound("No such export object.")
        return int(blob.size)

    @contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        blob = self._bucket.blob(check_key(key))
        with _translated():
            blob.reload()
            reader = blob.open("rb", chunk_size=_READ_CHUNK)
        try:
            with _translated():
                yield reader
        finally:
            reader.close()
