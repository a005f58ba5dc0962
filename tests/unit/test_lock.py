"""The lock files: current with pyproject.toml, one resolution, and what this
environment runs (`make test` installs requirements.lock and nothing else)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock", ROOT / "scripts" / "lock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock = _lock_module()
FULL = (ROOT / lock.LOCK).read_text()
DEPLOY = (ROOT / lock.DEPLOY_LOCK).read_text()


@pytest.mark.parametrize("name", [lock.LOCK, lock.DEPLOY_LOCK])
def test_each_lock_is_current_with_pyproject(name: str) -> None:
    text = (ROOT / name).read_text()
    assert lock.recorded_digest(text) == lock.inputs_digest(ROOT), "run `make lock`"


def test_a_changed_dependency_makes_the_lock_stale(tmp_path: Path) -> None:
    for name in ("pyproject.toml", lock.DEPLOY_LOCK):
        shutil.copy(ROOT / name, tmp_path / name)
    assert lock.read_current(tmp_path, lock.DEPLOY_LOCK) == DEPLOY
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10"', '"orjson>=3.11"'))
    with pytest.raises(lock.LockError, match="make lock"):
        lock.read_current(tmp_path, lock.DEPLOY_LOCK)


def test_the_lock_covers_every_extra_but_the_bench() -> None:
    extras = lock.locked_extras(ROOT)
    assert {"dev", "local"} <= set(extras)
    assert "bench" not in extras
    assert f"# extras: {', '.join(extras)}" in FULL


def test_the_deploy_lock_is_the_runtime_part_of_the_same_resolution() -> None:
    # Keyed by name and marker: a package may be pinned once per Python range
    # (svix's `deprecated` is 1.x below 3.12, 3.x from 3.12 on).
    def key(line: str) -> tuple[str, str]:
        requirement = Requirement(line)
        return requirement.name.lower(), str(requirement.marker or "")

    full = {key(line): (v, h) for line, v, h in lock.entries(FULL)}
    deploy = lock.entries(DEPLOY)
    assert deploy
    for line, version, hashes in deploy:
        assert full[key(line)] == (version, hashes), line
    deployed = {Requirement(line).name.lower() for line, _, _ in deploy}
    # Test and local tools never reach the cloud.
    assert not deployed & {"pytest", "hypothesis", "pgserver", "duckdb", "mypy", "ruff"}


def test_every_pin_is_exact_and_hashed() -> None:
    for text in (FULL, DEPLOY):
        for line, version, hashes in lock.entries(text):
            assert str(Requirement(line).specifier) == f"=={version}", line
            assert hashes and all(h.startswith("sha256:") for h in hashes), line


def test_this_environment_runs_exactly_the_lock() -> None:
    checked = 0
    for line, version, _ in lock.entries(FULL):
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        assert importlib.metadata.version(requirement.name) == version, requirement.name
        checked += 1
    assert checked > 50
