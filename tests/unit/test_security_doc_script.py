"""scripts/check_security_doc.py, run as docs/security.md once told people to run it:
with a Python that lacks the project's packages, it says so instead of reporting
every listed test as missing."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_python_without_the_project_gets_the_real_cause(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)
    result = subprocess.run(
        [str(bare / "bin" / "python"), str(ROOT / "scripts" / "check_security_doc.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "could not collect the tests" in result.stderr
    assert "No module named pytest" in result.stderr
    assert ".venv/bin/python scripts/check_security_doc.py" in result.stderr
    assert "no such test" not in result.stderr


def test_the_projects_python_still_checks_the_document() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_security_doc.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "promises" in result.stdout
