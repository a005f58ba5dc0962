"""Build one deployable source archive per Cloud Function.

Cloud Functions wants ``main.py`` and ``requirements.txt`` at the root of the
source archive, with local packages inside it. For each function this writes
``<out>/<name>.zip`` holding:

- ``main.py`` from ``functions/<name>/``;
- ``requirements.txt``: ``requirements-deploy.lock``, the runtime part of the
  lock ``make test`` installs from (exact versions, every file's hash, so Cloud
  Build's pip installs in hash-checking mode exactly what the tests ran); a lock
  older than ``pyproject.toml``'s dependencies is refused (see scripts/lock.py);
- a copy of the ``shared/`` package (without ``__pycache__`` or bytecode).

The archive is a pure function of those input bytes: entries are sorted,
timestamps fixed at 1980-01-01 and permissions fixed at 0644, so building
twice from the same tree gives the same bytes and Terraform (which names the
uploaded object after the archive's hash) only redeploys what changed.

Usage: ``python scripts/package.py [--root DIR] [--out DIR] [NAME ...]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import zipfile
from pathlib import Path

import lock

FUNCTIONS = ("auth", "oauth", "datasets", "query", "sync", "directory")

_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644  # regular file, rw-r--r--
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


class PackageError(Exception):
    """The source tree cannot produce the requested archive."""


def runtime_requirements(root: Path) -> bytes:
    """``root/requirements-deploy.lock``, refused when older than ``pyproject.toml``."""
    if not (root / "pyproject.toml").is_file():
        raise PackageError(f"{root / 'pyproject.toml'} not found")
    try:
        text = lock.read_current(root, lock.DEPLOY_LOCK)
    except lock.LockError as exc:
        raise PackageError(str(exc)) from exc
    if not lock.pins(text):
        raise PackageError(f"{root / lock.DEPLOY_LOCK} pins nothing")
    return text.encode()


def archive_entries(root: Path, name: str) -> dict[str, bytes]:
    """Map archive path -> file bytes for function ``name``."""
    fn_dir = root / "functions" / name
    main = fn_dir / "main.py"
    if not main.is_file():
        raise PackageError(f"{main} not found")
    if (fn_dir / "requirements.txt").exists():
        # One lock for every function: a requirements file of its own would deploy
        # what no test ran.
        raise PackageError(f"{fn_dir / 'requirements.txt'}: the lock is the only source")
    entries = {"main.py": main.read_bytes(), "requirements.txt": runtime_requirements(root)}

    shared = root / "shared"
    if not (shared / "__init__.py").is_file():
        raise PackageError(f"{shared} is not a package (no __init__.py)")
    for dirpath, dirnames, filenames in os.walk(shared, followlinks=True):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for filename in filenames:
            if filename.endswith(_SKIP_SUFFIXES):
                continue
            path = Path(dirpath) / filename
            entries[path.relative_to(root).as_posix()] = path.read_bytes()
    return entries


def write_archive(entries: dict[str, bytes], target: Path) -> None:
    """Write ``entries`` to ``target`` reproducibly (atomic replace)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for arcname in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
            info.create_system = 3  # unix, so external_attr means file mode everywhere
            info.external_attr = _FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[arcname], compresslevel=9)
    partial.replace(target)


def build(root: Path, out: Path, names: list[str]) -> list[Path]:
    """Build ``out/<name>.zip`` for each name; return the archive paths."""
    built = []
    for name in names:
        target = out / f"{name}.zip"
        write_archive(archive_entries(root, name), target)
        built.append(target)
    return built


def main(argv: list[str] | None = None) -> int:
    repo_root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: {' '.join(FUNCTIONS)}")
    parser.add_argument(
        "--root", type=Path, default=repo_root, help="source tree (default: this repository)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: ROOT/build)"
    )
    args = parser.parse_args(argv)

    names = args.names or list(FUNCTIONS)
    unknown = sorted(set(names) - set(FUNCTIONS))
    if unknown:
        parser.error(f"unknown function(s): {', '.join(unknown)}; known: {', '.join(FUNCTIONS)}")
    root = args.root.resolve()
    out = (args.out or root / "build").resolve()
    try:
        built = build(root, out, names)
    except PackageError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    for path in built:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path}  sha256:{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
