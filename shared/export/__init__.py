"""The export-sink port, its manifest and download logic; adapters in their own modules.

    from shared.export import ExportSink, ExportFolder, seal, open_download

`GCSExportSink` (`shared.export.gcs`) and `LocalExportSink` (`shared.export.local`)
are imported only by the runtime that picks one, so google.cloud.storage loads
only where a bucket is configured.
"""

from __future__ import annotations

from shared.export.manifest import (
    MANIFEST,
    Download,
    Export,
    ExportObject,
    export_prefix,
    new_export_id,
    open_download,
    seal,
)
from shared.export.port import ExportFolder, ExportSink, check_key

__all__ = [
    "MANIFEST",
    "Download",
    "Export",
    "ExportFolder",
    "ExportObject",
    "ExportSink",
    "check_key",
    "export_prefix",
    "new_export_id",
    "open_download",
    "seal",
]
