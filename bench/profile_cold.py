"""Where a function's cold start goes: `python -m bench.profile_cold auth [query ...]`.

Sets up the same stage as `bench_serving` and runs each named function's cold
start once under `-X importtime`, then prints the slowest top-level imports
(cumulative microseconds) and the wall time of the whole sample. A tool for
finding what to make lazy; not part of `make bench`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.bench_serving import CHILD, ROOT, _stage


def _profile(env: dict[str, str], target: str, source: str, top: int) -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", CHILD, target, source],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    wall = time.perf_counter() - started
    rows: list[tuple[int, str]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if not cumulative.isdigit():
            continue
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((int(cumulative), f"{'  ' * depth}{name.strip()}"))
    marker = [ln for ln in result.stdout.splitlines() if ln.startswith("@@bench ")]
    print(f"== {target}: {wall * 1000:.0f} ms wall (under importtime), {marker}")
    # Top-level imports only (importtime indents children by two spaces).
    top_level = [(c, n) for c, n in rows if not n.startswith(" ")]
    for cumulative, name in sorted(top_level, reverse=True)[:top]:
        print(f"{cumulative / 1000:8.1f} ms  {name}")


def main(argv: list[str]) -> int:
    names = argv or ["hello", "auth"]
    with _stage() as stage:
        for name in names:
            subject = stage.hello if name == "hello" else stage.subjects[name]
            env = {**stage.env, "BENCH_REQUEST": json.dumps(subject.request())}
            _profile(env, subject.target, subject.source, top=25)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
