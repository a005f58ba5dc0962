"""Every third-party package our code imports is declared in pyproject.toml.

A package that arrives only as another's dependency (werkzeug under
functions-framework) can vanish or move with that package's next release; the
deployed functions would then fail at import. Each import is resolved to the
distribution that installed it: functions/ must find theirs among the runtime
dependencies, shared/, cosma/ and soak/ also in the `local` extra, and tests/ and
scripts/ also among the dev extra.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
OURS = {"shared", "cosma", "functions", "tests", "bench", "scripts", "soak"}
# Imported only where the library that needs them found them installed.
OPTIONAL = {"brotli"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        project: dict[str, object] = tomllib.load(handle)["project"]
    return project


def declared(*extras: str) -> set[str]:
    project = _project()
    specs = list(project["dependencies"])  # type: ignore[call-overload]
    optional: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    for extra in extras:
        specs += optional[extra]
    return {_normalize(Requirement(spec).name) for spec in specs}


def imports(folder: str) -> set[str]:
    """Absolute module names imported anywhere under `folder`."""
    found: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from google.cloud import bigquery`: the name may be the module.
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    # scripts/ import each other by file name, as `python scripts/x.py` allows.
    siblings = {p.stem for p in (ROOT / folder).glob("*.py")} if folder == "scripts" else set()
    return {
        name
        for name in found
        if name.split(".")[0]
        not in sys.stdlib_module_names | OURS | OPTIONAL | siblings | {"__future__"}
    }


@cache
def _owners() -> dict[Path, str]:
    owners: dict[Path, str] = {}
    for dist in importlib.metadata.distributions():
        for file in dist.files or ():
            owners[Path(str(dist.locate_file(file))).resolve()] = _normalize(dist.metadata["Name"])
    return owners


def distribution(module: str) -> str:
    """The distribution whose files hold `module` (namespace packages such as
    `google.cloud` are shared, so the deepest importable name decides)."""
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:depth]))
        except (ImportError, ValueError):  # a name inside a module, or one without a spec
            continue
        if spec is not None and spec.origin not in (None, "namespace"):
            owner = _owners().get(Path(spec.origin).resolve())
            if owner is None:
                raise AssertionError(f"{module}: {spec.origin} belongs to no distribution")
            return owner
    raise AssertionError(f"{module}: not importable here")


@pytest.mark.parametrize(
    ("folder", "extras"),
    [
        # The DuckDB adapter ships in shared/ but loads only in local mode (the cloud's
        # warehouse is BigQuery; tests/unit/test_cold_imports.py), so `local` holds it.
        ("shared", ("local",)),
        ("functions", ()),
        ("cosma", ("local",)),
        # The soak drives the local system (`make soak`): what `make run` installs.
        ("soak", ("local",)),
        ("scripts", ("local", "dev")),
        # tests/conformance/ holds our connectors to the platforms' official SDKs.
        ("tests", ("local", "dev", "emulators", "conformance")),
    ],
)
def test_every_import_is_declared(folder: str, extras: tuple[str, ...]) -> None:
    allowed = declared(*extras)
    undeclared = {m: d for m in sorted(imports(folder)) if (d := distribution(m)) not in allowed}
    assert not undeclared, f"{folder}/ imports undeclared packages: {undeclared}"


def test_the_check_sees_a_transitive_dependency() -> None:
    # werkzeug comes with functions-framework too; it is our own declaration that counts.
    assert distribution("werkzeug.wrappers") == "werkzeug"
    assert distribution("google.cloud.bigquery") == "google-cloud-bigquery"
    assert "flask" not in declared()
