"""The fault tier: nicpool keeps its promises while etcd, the apiserver and the network break.

``test_each_fault_alone`` is the CI schedule: every fault once, in a seeded
order, under a steady workload, then the endgame and the checker (see
:mod:`tests.faults.run`). The seed is random unless ``NICPOOL_FAULTS_SEED``
is set, and printed with the report either way; a failing seed replays with
``make chaos MODE=alone SEED=<seed>``. ``NICPOOL_FAULTS_ARTIFACTS=<dir>``
keeps every log, the history and the report.

The seeds that once exposed a defect (:mod:`tests.faults.regressions`)
replay with ``make chaos-regressions``: each takes one to three minutes,
more than ``make test`` can spend on them, and this schedule runs every
fault they need on every run anyway.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.run import Plan, execute

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1800)]


def _artifacts(name: str) -> Path | None:
    base = os.environ.get("NICPOOL_FAULTS_ARTIFACTS")
    return Path(base) / name if base else None


def _run(plan: Plan, assets: Path, report: Callable[[str], None]) -> None:
    lines: list[str] = []
    outcome = execute(plan, assets, out=lines.append)
    report("\n".join(lines))
    assert outcome.verdict.ok, "\n".join(lines)


def test_each_fault_alone(fault_assets: Path, fault_report: Callable[[str], None]) -> None:
    seed = int(os.environ.get("NICPOOL_FAULTS_SEED") or random.SystemRandom().randrange(10**9))
    _run(Plan(seed=seed, artifacts=_artifacts(f"alone-{seed}")), fault_assets, fault_report)
