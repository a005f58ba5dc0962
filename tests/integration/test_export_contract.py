"""One contract, two export sinks: a local folder, and a Cloud Storage bucket through
the real google-cloud-storage client against the local storage emulator."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared import errors
from shared.export import MANIFEST, ExportFolder, ExportSink, open_download, seal
from shared.export.gcs import GCSExportSink
from shared.export.local import LocalExportSink
from tests.support.storage_emulator import StorageEmulator

BUCKET = "cosma-test-exports"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def emulator() -> Iterator[StorageEmulator]:
    storage = StorageEmulator()
    with storage.running():
        storage.create_bucket(BUCKET)
        yield storage


@pytest.fixture(params=["local", "gcs"])
def sink(
    request: pytest.FixtureRequest, tmp_path: Path, emulator: StorageEmulator
) -> Iterator[ExportSink]:
    chosen: ExportSink
    if request.param == "local":
        chosen = LocalExportSink(tmp_path / "exports")
    else:
        chosen = GCSExportSink(BUCKET, project="cosma-test", endpoint=emulator.url)
    yield chosen
    chosen.close()


def folder(sink: ExportSink) -> ExportFolder:
    return ExportFolder(sink, f"org_test/{uuid.uuid4()}/20260301T120000000000Z-0a1b2c3d")


def parquet(rows: int) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"n": pa.array(range(rows), pa.int64())}), buffer)
    return buffer.getvalue()


def write(target: ExportFolder, name: str, data: bytes) -> None:
    with target.open_write(name) as stream:
        stream.write(data)


def read(sink: ExportSink, key: str) -> bytes:
    return b"".join(sink.chunks(key))


def test_an_object_is_listed_sized_and_read_back_whole(sink: ExportSink) -> None:
    target = folder(sink)
    data = parquet(5)
    write(target, "a-000000000000.parquet", data)
    key = target.key("a-000000000000.parquet")
    assert target.names() == ["a-000000000000.parquet"]
    assert sink.size(key) == len(data)
    assert read(sink, key) == data
    with sink.open_read(key) as stream:  # seekable: the footer alone gives the rows
        assert pq.ParquetFile(stream).metadata.num_rows == 5


def test_a_write_that_fails_leaves_no_object(sink: ExportSink) -> None:
    target = folder(sink)
    with pytest.raises(RuntimeError), target.open_write("half.parquet") as stream:
        stream.write(b"PAR1" + b"x" * 1000)
        raise RuntimeError("the warehouse went away")
    gc.collect()  # a writer finalized by the garbage collector must not publish it either
    assert target.names() == []
    with pytest.raises(errors.NotFound):
        sink.size(target.key("half.parquet"))


def test_a_folder_lists_only_its_own_objects(sink: ExportSink) -> None:
    client = f"org_test/{uuid.uuid4()}"
    first = ExportFolder(sink, f"{client}/e1")
    neighbour = ExportFolder(sink, f"{client}/e10")  # a prefix of one is not the other
    write(first, "x.parquet", parquet(1))
    write(neighbour, "y.parquet", parquet(1))
    write(neighbour, "z.parquet", parquet(1))
    assert first.names() == ["x.parquet"]
    assert neighbour.names() == ["y.parquet", "z.parquet"]
    assert ExportFolder(sink, f"{client}/e2").names() == []


def test_a_missing_object_is_not_found(sink: ExportSink) -> None:
    key = folder(sink).key("nothing.parquet")
    with pytest.raises(errors.NotFound):
        sink.size(key)
    with pytest.raises(errors.NotFound), sink.open_read(key):
        pass


@pytest.mark.parametrize(
    "key", ["../escape", "/etc/passwd", "a/../../b", "a//b", "", "a/.hidden", "a/b c"]
)
def test_keys_cannot_leave_the_sink(sink: ExportSink, key: str) -> None:
    with pytest.raises(errors.NotFound):
        sink.size(key)
    with pytest.raises(errors.NotFound), sink.open_write(key, "application/octet-stream"):
        pass


def test_chunks_stream_in_bounded_pieces(sink: ExportSink) -> None:
    target = folder(sink)
    data = bytes(range(256)) * 1000
    write(target, "big.parquet", data)
    pieces = list(sink.chunks(target.key("big.parquet"), 64 * 1024))
    assert max(len(p) for p in pieces) <= 64 * 1024 and len(pieces) >= 4
    assert b"".join(pieces) == data


def test_only_a_bucket_can_be_written_by_a_warehouse_itself(sink: ExportSink) -> None:
    target = folder(sink)
    uri = target.uri("a-*.parquet")
    if isinstance(sink, GCSExportSink):
        assert uri == f"gs://{BUCKET}/{target.prefix}a-*.parquet"
    else:
        assert uri == ""


def test_seal_lists_rows_size_and_sha256_and_writes_the_manifest(sink: ExportSink) -> None:
    target = folder(sink)
    blobs = {"a-000000000000.parquet": parquet(3), "b-000000000000.parquet": parquet(7)}
    for name, data in blobs.items():
        write(target, name, data)
    done = seal(
        target,
        export_id="20260301T120000000000Z-0a1b2c3d",
        client_id="c",
        created_at=NOW,
        expires_at=NOW + dt.timedelta(hours=1),
    )
    assert [(o.name, o.rows, o.size, o.sha256) for o in done.objects] == [
        (name, rows, len(data), hashlib.sha256(data).hexdigest())
        for (name, data), rows in zip(blobs.items(), (3, 7), strict=True)
    ]
    assert done.rows == 10
    assert target.names() == [*blobs, MANIFEST]
    manifest = read(sink, target.key(MANIFEST))
    assert done.manifest.size == len(manifest)
    assert done.manifest.sha256 == hashlib.sha256(manifest).hexdigest()
    assert b'"rows": 7' in manifest and b"expires_at" in manifest


def test_a_download_is_served_until_its_link_expires(sink: ExportSink) -> None:
    target = folder(sink)
    data = parquet(4)
    write(target, "a-000000000000.parquet", data)
    expires = NOW + dt.timedelta(minutes=5)
    seal(target, export_id="x", client_id="c", created_at=NOW, expires_at=expires)
    download = open_download(target, "a-000000000000", NOW + dt.timedelta(minutes=4))
    assert (download.name, download.size) == ("a-000000000000.parquet", len(data))
    assert b"".join(download.chunks) == data
    assert b"".join(open_download(target, "manifest", NOW).chunks).startswith(b"{")
    with pytest.raises(errors.NotFound):
        open_download(target, "not-listed", NOW)
    with pytest.raises(errors.Gone):
        open_download(target, "a-000000000000", expires)
    with pytest.raises(errors.NotFound):
        open_download(folder(sink), "a-000000000000", NOW)  # an export never made
