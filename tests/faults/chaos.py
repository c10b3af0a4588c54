"""``make chaos DURATION=600 [SEED=n] [MODE=mixed|alone] [FAULTS=a,b]``: a long fault run.

Prints the seed first (a failing run is replayed with the same seed), each
fault as it ends, then the report; exits 1 when the checker found
anomalies, 2 when the machine lacks a part the run needs.
``--regressions`` (``make chaos-regressions``) replays instead every seed of
:mod:`tests.faults.regressions` with the faults that exposed its defect.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
from pathlib import Path
from types import FrameType

from ops.lab import netns
from ops.lab.binaries import find_assets
from tests.faults.regressions import REGRESSIONS
from tests.faults.run import Plan, execute
from tests.faults.schedule import ALONE, MIXED


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    p.add_argument("--duration", type=float, default=float(env("DURATION") or 600))
    p.add_argument(
        "--seed", type=int, default=int(env("SEED") or random.SystemRandom().randrange(10**9))
    )
    p.add_argument("--mode", choices=("mixed", "alone"), default=env("MODE") or "mixed")
    p.add_argument("--faults", default=env("FAULTS") or "", help="comma list (default: all)")
    p.add_argument("--bound", type=float, default=float(env("BOUND") or 90))
    p.add_argument("--scale", type=float, default=float(env("SCALE") or 1.0))
    p.add_argument("--regressions", action="store_true", help="replay the regression seeds")
    p.add_argument(
        "--artifacts",
        default=env("ARTIFACTS"),
        help="keep logs, history and report in this directory",
    )
    return p


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so every finally stops what it started


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    args = parser().parse_args()
    assets = find_assets()
    problem = netns.why_unavailable()
    if assets is None or problem is not None:
        print(f"chaos: cannot run here: {problem or 'no test binaries (make test-binaries)'}")
        return 2
    names = tuple(n for n in args.faults.split(",") if n)
    unknown = [n for n in names if n not in MIXED]
    if unknown:
        print(f"chaos: unknown faults {unknown}; known: {', '.join(MIXED)}")
        return 2
    artifacts = Path(args.artifacts) if args.artifacts else None
    if args.regressions:
        plans = [
            Plan(
                seed=r.seed,
                mode=r.mode,
                faults=r.faults,
                bound=args.bound,
                artifacts=_under(artifacts, r.seed),
            )
            for r in REGRESSIONS
        ]
    else:
        known = MIXED if args.mode == "mixed" else ALONE
        plans = [
            Plan(
                seed=args.seed,
                mode=args.mode,
                faults=names or known,
                duration=args.duration,
                bound=args.bound,
                scale=args.scale,
                artifacts=artifacts,
            )
        ]
    failed = 0
    for plan in plans:
        outcome = execute(plan, assets, out=lambda line: print(line, flush=True))
        failed += not outcome.verdict.ok
    return 1 if failed else 0


def _under(base: Path | None, seed: int) -> Path | None:
    return base / f"regression-{seed}" if base is not None else None


if __name__ == "__main__":
    sys.exit(main())
