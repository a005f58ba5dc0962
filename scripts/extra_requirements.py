"""The requirements of one unlocked extra, held to requirements.lock's versions.

    python scripts/extra_requirements.py conformance > .venv/conformance.txt
    pip install -r .venv/conformance.txt

Prints the extra's own requirements (pyproject.toml) and, as `-c` lines' target,
writes the lock's pins without their hashes beside the output (pip refuses
hash-checking mode for packages the lock does not list, such as the official
ad-platform SDKs): every package the extra shares with the project is installed
at the lock's version, the extra's own at the exact versions pyproject.toml pins.

Usage: ``python scripts/extra_requirements.py EXTRA [--constraints PATH]``
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*==[^\s\\]+(?:\s*;[^\\]+)?)", re.MULTILINE)


def pins(lock_text: str) -> list[str]:
    """`name==version[ ; marker]` of every pin of a hashed lock file."""
    return [match.group(1).strip() for match in _PIN.finditer(lock_text)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extra")
    parser.add_argument("--constraints", type=Path, default=ROOT / ".venv" / "constraints.txt")
    args = parser.parse_args(argv)
    with (ROOT / "pyproject.toml").open("rb") as handle:
        extras = tomllib.load(handle)["project"]["optional-dependencies"]
    if args.extra not in extras:
        print(f"no extra {args.extra!r} in pyproject.toml", file=sys.stderr)
        return 2
    lock = (ROOT / "requirements.lock").read_text()
    args.constraints.parent.mkdir(parents=True, exist_ok=True)
    args.constraints.write_text("\n".join(pins(lock)) + "\n")
    print(f"-c {args.constraints}")
    print("\n".join(extras[args.extra]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
