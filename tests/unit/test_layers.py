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
    "soak",
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


def _layered_modules() -> set[str]:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["id"] == "layers"]
    return {name.strip() for layer in layers for name in layer.split(":")}


def test_every_module_of_shared_has_a_layer() -> None:
    # A module outside the contract could import anything: each gets its tier.
    import grimp

    graph = grimp.build_graph("shared")
    unplaced = sorted(graph.find_children("shared") - _layered_modules())
    assert unplaced == [], f"add {unplaced} to a layer in [tool.importlinter]"


def test_no_two_modules_of_shared_import_each_other() -> None:
    # Siblings of one layer may import each other; never both ways, even indirectly.
    import itertools

    import grimp

    graph = grimp.build_graph("shared")
    cycles = [
        (a, b)
        for a, b in itertools.combinations(sorted(graph.find_children("shared")), 2)
        if graph.chain_exists(importer=a, imported=b, as_packages=True)
        and graph.chain_exists(importer=b, imported=a, as_packages=True)
    ]
    assert cycles == []


# The soak and the benchmarks drive the system from outside; nothing deployed or local
# imports them.
OUTSIDE = ("soak", "bench")


def test_the_library_and_the_local_tooling_import_neither_soak_nor_bench() -> None:
    library = sorted([*(ROOT / "shared").rglob("*.py"), *(ROOT / "cosma").rglob("*.py")])
    assert len(library) > 50
    reached = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported(path)
            if any(name == f or name.startswith(f + ".") for f in OUTSIDE)
        )
        for path in library
    }
    assert {path: names for path, names in reached.items() if names} == {}
