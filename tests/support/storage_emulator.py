"""A local Cloud Storage: `gcp-storage-emulator` (PyPI, the `emulators` extra), in memory,
on a free loopback port, in a thread of the test process.

What was checked against google-cloud-storage 3.x here: bucket creation,
resumable uploads (`Blob.open("wb")`), listing by prefix, object metadata (size,
md5, crc32c, content type) and ranged reads (`Blob.open("rb")`) all behave as
on Cloud Storage. It does not check V4 signatures or their expiry (a signed URL
is served after it expires and with a forged signature), and it ignores
`if_generation_match` preconditions (an object is replaced), so tests must not
rely on either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from gcp_storage_emulator.server import create_server


class StorageEmulator:
    def __init__(self) -> None:
        self._server = create_server("127.0.0.1", 0, in_memory=True)
        self.url = ""

    @contextmanager
    def running(self) -> Iterator[StorageEmulator]:
        self._server.start()
        try:
            # The emulator binds port 0 itself and keeps the socket on its API thread.
            self.url = f"http://127.0.0.1:{self._server._api._httpd.server_port}"
            yield self
        finally:
            self._server.stop()

    def create_bucket(self, name: str) -> None:
        response = requests.post(
            f"{self.url}/storage/v1/b",
            params={"project": "cosma-test"},
            json={"name": name},
            timeout=10,
        )
        response.raise_for_status()

    def objects(self, bucket: str, prefix: str = "") -> list[str]:
        response = requests.get(
            f"{self.url}/storage/v1/b/{bucket}/o", params={"prefix": prefix}, timeout=10
        )
        response.raise_for_status()
        return sorted(item["name"] for item in response.json().get("items", []))

    def upload(self, bucket: str, name: str, data: bytes, content_type: str) -> None:
        """What BigQuery's extract job does to the bucket: a media upload of one object."""
        response = requests.post(
            f"{self.url}/upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "media", "name": name},
            data=data,
            headers={"Content-Type": content_type},
            timeout=10,
        )
        response.raise_for_status()
