"""Fixtures of the fault tier: the parts it needs, and the reports it prints at the end.

A fault run needs root (network namespaces), the CNI reference plugins,
openssl and the test binaries (an etcd that forms a TLS cluster,
kube-apiserver, kube-controller-manager); each missing part fails in CI
and skips elsewhere (``tests.support.components.missing``).

Every run's report (seed, faults, operations checked, anomalies) is printed
in pytest's terminal summary, passing or not, so ``make test`` shows it.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from ops.lab import netns
from ops.lab.cni import REFERENCE_PLUGINS
from tests.controller.conftest import kube_assets_or_missing
from tests.support.components import missing

_REPORTS: list[str] = []


@pytest.fixture(scope="session")
def fault_assets() -> Path:
    """The binaries' directory, once everything else a fault run needs is there too."""
    reason = netns.why_unavailable()
    if reason is not None:
        missing("network namespaces", reason)
    if not os.access(REFERENCE_PLUGINS / "macvlan", os.X_OK):
        missing("CNI macvlan plugin", f"install containernetworking-plugins ({REFERENCE_PLUGINS})")
    if shutil.which("openssl") is None:
        missing("openssl", "the fault tier makes its etcd cluster's certificates with it")
    return kube_assets_or_missing()


@pytest.fixture(autouse=True)
def sigterm_cleans_up() -> Iterator[None]:
    """SIGTERM (a CI job cancelled) unwinds like Ctrl-C, so a run stops what it started."""

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupted)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def fault_report() -> Callable[[str], None]:
    """Keep a run's report for the terminal summary."""
    return _REPORTS.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORTS:
        terminalreporter.section("fault tier")
        for text in _REPORTS:
            for line in text.splitlines():
                terminalreporter.write_line(line)
