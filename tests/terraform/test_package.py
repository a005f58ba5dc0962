"""scripts/package.py: one reproducible archive per function, laid out as Cloud Functions wants."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "package.py"


def _lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock", ROOT / "scripts" / "lock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock = _lock_module()

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
    _write(root / "requirements-deploy.lock", _deploy_lock(root))
    for name in ("auth", "oauth", "datasets", "query", "sync", "directory"):
        _write(root / "functions" / name / "main.py", f"def {name}(request):\n    return ''\n")
    _write(root / "shared" / "__init__.py", "")
    _write(root / "shared" / "settings.py", "X = 1\n")
    _write(root / "shared" / "warehouse" / "__init__.py", "")
    _write(root / "shared" / "warehouse" / "bigquery.py", "Y = 2\n")
    _write(root / "shared" / "__pycache__" / "settings.cpython-311.pyc", "junk")
    _write(root / "shared" / "warehouse" / "stale.pyc", "junk")
    return root


def _deploy_lock(root: Path) -> str:
    return (
        f"# inputs-sha256: {lock.inputs_digest(root)}\n"
        "functions-framework==3.10.2 \\\n    --hash=sha256:" + "a" * 64 + "\n"
        "pydantic==2.14.4 \\\n    --hash=sha256:" + "b" * 64 + "\n"
    )


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
        # the deploy lock, byte for byte: exact versions and hashes
        requirements = archive.read("requirements.txt")
        assert requirements == (tree / "requirements-deploy.lock").read_bytes()
        assert b"pydantic==2.14.4 \\\n    --hash=sha256:" in requirements
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert info.compress_type == zipfile.ZIP_DEFLATED


def test_a_function_requirements_file_is_refused(tree: Path, tmp_path: Path) -> None:
    _write(tree / "functions" / "sync" / "requirements.txt", "functions-framework>=3.5\ndlt\n")
    result = _package(tree, tmp_path / "build", "sync")
    assert result.returncode != 0
    assert "the lock is the only source" in result.stderr
    assert not (tmp_path / "build" / "sync.zip").exists()


def test_a_lock_older_than_pyproject_is_refused(tree: Path, tmp_path: Path) -> None:
    (tree / "pyproject.toml").write_text(PYPROJECT.replace("pydantic>=2.7", "pydantic>=2.8"))
    result = _package(tree, tmp_path / "build", "auth")
    assert result.returncode != 0
    assert "run `make lock`" in result.stderr
    assert not (tmp_path / "build" / "auth.zip").exists()


def test_a_missing_lock_is_refused(tree: Path, tmp_path: Path) -> None:
    (tree / "requirements-deploy.lock").unlink()
    result = _package(tree, tmp_path / "build", "auth")
    assert result.returncode != 0
    assert "requirements-deploy.lock not found" in result.stderr


def test_the_real_archives_carry_exactly_what_the_tests_run(tmp_path: Path) -> None:
    """Every pin of each function's requirements.txt is the version this test
    session imports, and carries hashes (pip's hash-checking mode in Cloud Build)."""
    out = tmp_path / "build"
    result = _package(ROOT, out)
    assert result.returncode == 0, result.stderr
    for name in ("auth", "oauth", "datasets", "query", "sync"):
        with zipfile.ZipFile(out / f"{name}.zip") as archive:
            text = archive.read("requirements.txt").decode()
        entries = lock.entries(text)
        assert {"functions-framework", "werkzeug", "pydantic", "cryptography"} <= set(
            lock.pins(text)
        )
        for line, version, hashes in entries:
            requirement = Requirement(line)
            assert str(requirement.specifier) == f"=={version}", line
            assert hashes and all(h.startswith("sha256:") for h in hashes), line
            if requirement.marker is None or requirement.marker.evaluate():
                installed = importlib.metadata.version(requirement.name)
                assert installed == version, f"{name}: {requirement.name} {installed}"


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
