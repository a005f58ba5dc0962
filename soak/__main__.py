"""`python -m soak [--seconds N] [--principal-ttl S] [--keep]` (see `soak/__init__.py`)."""

from __future__ import annotations

import argparse
import os
import sys

from soak.config import Knobs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("SOAK_SECONDS", "180")),
        help="how long the mixed load runs (default 180; SOAK_SECONDS)",
    )
    parser.add_argument(
        "--principal-ttl",
        type=float,
        default=float(os.environ.get("SOAK_PRINCIPAL_TTL", "30")),
        help="the membership cache's bound the servers run with and the removal check"
        " holds them to (default 30, the deployed value; SOAK_PRINCIPAL_TTL)",
    )
    parser.add_argument("--seed", type=int, default=22, help="the scenario's random seed")
    parser.add_argument(
        "--keep", action="store_true", help="keep the state folder (logs, records) after a pass"
    )
    args = parser.parse_args(argv)
    from soak.run import run

    knobs = Knobs(seconds=args.seconds, principal_ttl_s=args.principal_ttl, seed=args.seed)
    return run(knobs, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
