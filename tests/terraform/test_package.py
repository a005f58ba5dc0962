"""scripts/package.py: one reproducible archive per function, laid out as Cloud Functions wants."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "package.py"

PYPROJECT = """\
[project]
name = "fake"
version = "0"
dependencies = [
    "functions-framework>=3.5",
    "pydantic>=2.7",
]
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    _write(root / "pyproject.toml", PYPROJECT)
    for name in ("auth", "oauth", "datasets", "query", "sync", "directory"):
        _write(root / "functions" / name / "main.py", f"def {name}(request):\n    return ''\n")
    _write(root / "functions" / "sync" / "requirements.txt", "functions-framework>=3.5\ndlt\n")
    _write(root / "shared" / "__init__.py", "")
    _write(root / "shared" / "settings.py", "X = 1\n")
    _write(root / "shared" / "warehouse" / "__init__.py", "")
    _write(root / "shared" / "warehouse" / "bigquery.py", "Y = 2\n")
    _write(root / "shared" / "__pycache__" / "settings.cpython-311.pyc", "junk")
    _write(root / "shared" / "warehouse" / "stale.pyc", "junk")
    return root


def _package(root: Path, out: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), "--out", str(out), *names],
        capture_output=True,
        text=True,
        check=False,
    )


def _touch_everything(root: Path, when: int) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            os.utime(Path(dirpath) / name, (when, when))


def test_builds_every_function_by_default(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    result = _package(tree, out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "auth.zip",
        "datasets.zip",
        "directory.zip",
        "oauth.zip",
        "query.zip",
        "sync.zip",
    ]


def test_archive_is_byte_for_byte_reproducible(tree: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    assert _package(tree, first).returncode == 0
    _touch_everything(tree, 1_700_000_000)  # mtimes must not leak into the archive
    os.chmod(tree / "shared" / "settings.py", 0o600)  # nor do file modes
    assert _package(tree, second).returncode == 0
    for name in ("auth", "oauth", "datasets", "query", "sync", "directory"):
        assert (first / f"{name}.zip").read_bytes() == (second / f"{name}.zip").read_bytes()


def test_content_changes_change_the_archive(tree: Path, tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    assert _package(tree, before, "query").returncode == 0
    (tree / "shared" / "settings.py").write_text("X = 2\n")
    assert _package(tree, after, "query").returncode == 0
    assert (before / "query.zip").read_bytes() != (after / "query.zip").read_bytes()


def test_layout_main_requirements_and_shared(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    assert _package(tree, out, "auth").returncode == 0
    with zipfile.ZipFile(out / "auth.zip") as archive:
        names = archive.namelist()
        assert names == [
            "main.py",
            "requirements.txt",
            "shared/__init__.py",
            "shared/settings.py",
            "shared/warehouse/__init__.py",
            "shared/warehouse/bigquery.py",
        ]
        assert archive.read("main.py") == b"def auth(request):\n    return ''\n"
        # no per-function requirements.txt: the runtime dependencies of pyproject.toml
        assert archive.read("requirements.txt") == b"functions-framework>=3.5\npydantic>=2.7\n"
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert info.compress_type == zipfile.ZIP_DEFLATED


def test_function_requirements_file_wins(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    assert _package(tree, out, "sync").returncode == 0
    with zipfile.ZipFile(out / "sync.zip") as archive:
        assert archive.read("requirements.txt") == b"functions-framework>=3.5\ndlt\n"


def test_missing_main_fails(tree: Path, tmp_path: Path) -> None:
    (tree / "functions" / "query" / "main.py").unlink()
    result = _package(tree, tmp_path / "build", "query")
    assert result.returncode != 0
    assert "main.py" in result.stderr
    assert not (tmp_path / "build" / "query.zip").exists()


def test_unknown_function_is_rejected(tree: Path, tmp_path: Path) -> None:
    result = _package(tree, tmp_path / "build", "nope")
    assert result.returncode != 0
    assert "unknown function" in result.stderr
