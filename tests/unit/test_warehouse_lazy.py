"""Cold start: the datasets function and a DuckDB runtime never import the BigQuery SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import sys, tempfile
from pathlib import Path
from cosma.server import load_function
from shared.runtime import Runtime
from shared.settings import Settings
load_function("datasets")
assert "pyarrow" not in sys.modules, "pyarrow at import"
runtime = Runtime(Settings(warehouse="duckdb", warehouse_dir=Path(tempfile.mkdtemp())))
assert type(runtime.warehouse).__name__ == "DuckDBWarehouse"
assert "google.cloud.bigquery" not in sys.modules, "bigquery imported"
bq = Runtime(Settings(warehouse="bigquery", gcp_project="p", bigquery_endpoint="http://127.0.0.1:9"))
assert type(bq.warehouse).__name__ == "BigQueryWarehouse"
assert "google.cloud.bigquery" in sys.modules
print("ok")
"""


def test_bigquery_is_imported_only_for_the_bigquery_adapter() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
