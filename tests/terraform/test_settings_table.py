"""terraform/README.md's settings table: generated from `Settings` and the Terraform,
current, and complete (every variable described, nothing set that nobody reads)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from .hcl import ROOT

SCRIPT = ROOT / "scripts" / "settings_table.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_table", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


table = _script()


def test_the_document_is_current_and_complete() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_variable_settings_reads_is_in_the_table() -> None:
    text = (ROOT / "terraform" / "README.md").read_text()
    read = table.settings_variables()
    assert len(read) > 40
    for name in (
        "COSMA_EXPORT_DIR",
        "COSMA_WAREHOUSE",
        "COSMA_SYNC_BUDGET_S",
        "COSMA_RATE_LIMIT_IP",
    ):
        assert name in read
        assert f"| `{name}` |" in text
    assert "| `COSMA_SYNC_LEASE_S` | `600` | none (the default) |" in text


def test_defaults_and_secrets_come_from_the_code_and_the_terraform() -> None:
    rows = {row.name: row for row in table.rows()[0]}
    assert rows["COSMA_SYNC_FIRST_DAYS"].default == "90"
    assert rows["DATABASE_URL"].secret and rows["DATABASE_URL"].functions == [
        "auth", "oauth", "datasets", "query",
    ]  # fmt: skip
    assert rows["COSMA_KEYRING_DIR"].secret  # a mounted secret volume
    assert not rows["CLERK_ISSUER"].secret
    assert rows["SYNC_AUDIENCE"].functions == ["sync"]
    assert rows["<PLATFORM>_CLIENT_SECRET"].default is None  # read by the secrets port


def test_a_stale_document_fails_the_check(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(
        (ROOT / "terraform" / "README.md")
        .read_text()
        .replace("| `COSMA_SYNC_BATCH` | `2` |", "| `COSMA_SYNC_BATCH` | `3` |")
    )
    assert table.main(["--check", "--doc", str(stale)]) == 1
    assert table.main(["--check", "--doc", str(ROOT / "terraform" / "README.md")]) == 0


def test_an_undescribed_setting_fails_the_check() -> None:
    meaning = dict(table.MEANING)
    del meaning["COSMA_SYNC_BATCH"]
    _, problems = table.rows(meaning)
    assert "COSMA_SYNC_BATCH: no meaning in scripts/settings_table.py" in problems
