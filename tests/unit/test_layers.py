"""The functions' entry points stay thin: no database, warehouse, secrets or
platform access of their own, and nothing of the local bootstrap.

The layers of `shared` themselves are held by import-linter (`make lint`,
`[tool.importlinter]` in pyproject.toml); `functions/<name>/main.py` files are
loaded by path, not as a package, so this test reads their imports itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted((ROOT / "functions").glob("*/main.py"))
# What a handler may not reach past the services: SQL, SDKs, adapters.
FORBIDDEN = (
    "shared.db",
    "shared.migrate",
    "shared.secrets",
    "shared.warehouse",
    "shared.platforms",
    "shared.tenancy",
    "psycopg",
    "google",
    "duckdb",
    "requests",
    "cosma",
)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_every_function_is_read() -> None:
    assert {p.parent.name for p in FUNCTIONS} >= {"auth", "oauth", "datasets", "query", "sync"}


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda p: p.parent.name)
def test_functions_import_no_adapter(path: Path) -> None:
    reached = sorted(
        name
        for name in imported(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    )
    assert reached == [], f"{path.parent.name}/main.py imports {reached}"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    probe = tmp_path / "main.py"
    probe.write_text("from shared.db import Database\nimport psycopg\n")
    assert {"shared.db", "psycopg"} <= imported(probe)
