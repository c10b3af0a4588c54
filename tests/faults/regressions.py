"""Seeds that once exposed a defect, kept as regression cases (issue 9: every bug found).

Each names the fault that exposed the defect and what the checker saw; the
run replays that seed with only that fault (same workload sequence, same
fault parameters; timings on a real machine vary, so a seed makes the bug
likely, not certain, and the CI schedule runs every fault anyway).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Regression:
    seed: int
    faults: tuple[str, ...]
    caught: str
    """The defect, as the checker reported it, and where it was fixed."""


REGRESSIONS: tuple[Regression, ...] = ()
