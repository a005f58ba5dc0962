"""Check docs/security.md against the test suite.

    python scripts/check_security_doc.py            every promise listed; every test id exists
    python scripts/check_security_doc.py --run      ...and every listed test passes (none skipped)
    python scripts/check_security_doc.py --strict   ...and no row is left TODO

The table in docs/security.md has one row per promise of the security page:
`| promise | kept by | proven by |`, the proof being pytest node ids in
backticks. A row whose tests are not written yet says TODO; that passes
unless --strict. Exit status 0 when the document holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"

# The promises of the public page; each must have its row.
PROMISES = (
    "authentication",
    "roles",
    "client assignments",
    "encryption in transit",
    "encryption at rest",
    "isolation of API and workers",
    "dataset per client per platform",
    "RLS",
    "ownership checks",
    "parameterized queries",
    "validation",
    "CORS",
    "rate limits",
    "OAuth scopes",
    "disconnect",
    "Sentry scrubbing",
    "audit trail",
    "incident data",
    "disclosure",
)
_NODE_ID = re.compile(r"`(tests/[^`\s]+?\.py::[^`\s]+)`")


@dataclass
class Row:
    promise: str
    ids: list[str] = field(default_factory=list)
    todo: bool = False


def parse(text: str) -> list[Row]:
    rows: list[Row] = []
    for line in text.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] == "promise":
            continue
        proof = " ".join(cells[2:])
        rows.append(Row(cells[0], _NODE_ID.findall(proof), "TODO" in proof))
    return rows


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


class CannotCollect(Exception):
    """pytest could not list the tests: the ids cannot be checked at all."""


def collected(files: list[str]) -> set[str]:
    out = _pytest("--collect-only", "-q", *files)
    found = {line.strip() for line in out.stdout.splitlines() if "::" in line}
    # 0: collected; 1: some tests failed to import (the others are listed). Anything
    # else (pytest missing, a broken conftest) lists nothing, and every id would
    # read as "no such test": say why instead.
    if out.returncode not in (0, 1) or (not found and files):
        reason = (out.stderr.strip() or out.stdout.strip()).splitlines()
        raise CannotCollect(
            f"{sys.executable} -m pytest could not collect the tests"
            f" ({reason[-1] if reason else f'exit status {out.returncode}'}). Run this"
            " script with the project's environment: `.venv/bin/python"
            " scripts/check_security_doc.py` (`make test` creates it)."
        )
    return found


def exists(node_id: str, found: set[str]) -> bool:
    # A parametrized test is listed by its function id and collected per parameter.
    return node_id in found or any(n.startswith(node_id + "[") for n in found)


def run(ids: list[str]) -> list[str]:
    """Run exactly these tests; the ids that failed, errored or were skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        _pytest("-q", f"--junitxml={junit}", *ids)
        if not junit.exists():
            return list(ids)
        bad: set[str] = set()
        for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314
            if any(case.find(tag) is not None for tag in ("failure", "error", "skipped")):
                path = case.get("classname", "").replace(".", "/") + ".py"
                name = case.get("name", "").split("[", 1)[0]
                bad.add(f"{path}::{name}")
        return sorted(i for i in ids if i in bad or i.split("[", 1)[0] in bad)


def check(text: str, *, strict: bool, run_tests: bool) -> list[str]:
    problems: list[str] = []
    rows = parse(text)
    names = [r.promise for r in rows]
    for promise in PROMISES:
        if promise not in names:
            problems.append(f"no row for the promise {promise!r}")
    for row in rows:
        if not row.ids and not row.todo:
            problems.append(f"{row.promise}: no test proves it")
        if row.todo and strict:
            problems.append(f"{row.promise}: still TODO")
    ids = sorted({i for r in rows for i in r.ids})
    files = sorted({i.split("::", 1)[0] for i in ids})
    missing_files = [f for f in files if not (ROOT / f).exists()]
    problems += [f"{f}: no such test file" for f in missing_files]
    found = collected([f for f in files if f not in missing_files]) if files else set()
    missing = [i for i in ids if i.split("::", 1)[0] not in missing_files and not exists(i, found)]
    problems += [f"{i}: no such test" for i in missing]
    if run_tests and not problems:
        problems += [f"{i}: does not pass" for i in run(ids)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run the listed tests too")
    parser.add_argument("--strict", action="store_true", help="fail on TODO rows")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    text = args.doc.read_text()
    try:
        problems = check(text, strict=args.strict, run_tests=args.run)
    except CannotCollect as exc:
        print(f"security doc: {exc}", file=sys.stderr)
        return 2
    rows = parse(text)
    todo = [r.promise for r in rows if r.todo]
    for problem in problems:
        print(f"security doc: {problem}", file=sys.stderr)
    print(
        f"security doc: {len(rows)} promises, {sum(len(r.ids) for r in rows)} test ids,"
        f" {len(todo)} with TODO{': ' + ', '.join(todo) if todo else ''}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
