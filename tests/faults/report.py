"""The summary a fault run prints: seed, faults, what was checked, anomalies."""

from __future__ import annotations

from collections import Counter

from tests.faults.history import History
from tests.faults.verdict import Verdict

PER_KIND = 10
"""Anomalies of one kind printed in full (the rest are counted; the history has them all)."""


def report(seed: int, mode: str, history: History, verdict: Verdict, operations: int) -> str:
    faults = [w for w in history.faults if w.name != "handover-probe"]
    adds = [a for a in history.cni if a.ok]
    lines = [
        f"seed {seed} ({mode}): {len(faults)} faults injected "
        f"({', '.join(f'{n} x{c}' for n, c in sorted(Counter(w.name for w in faults).items()))})",
        f"workload: {operations} operations, {verdict.pods} pods, "
        f"{len(adds)}/{len(history.cni)} CNI ADDs succeeded, "
        f"{len(history.intents)} deletions asked",
        f"history: {len(history.leases)} lease writes, {len(history.attachments)} attachment "
        f"writes, {len(history.elections)} election changes, {len(history.pods)} pod versions, "
        f"{len(history.exits)} process exits, {len(history.probes)} probes",
        f"operations checked: {verdict.operations}; "
        f"run took {history.ended - history.started:.0f} s",
        f"anomalies: {len(verdict.anomalies)}",
    ]
    shown: Counter[str] = Counter()
    for anomaly in verdict.anomalies:
        shown[anomaly.kind] += 1
        if shown[anomaly.kind] <= PER_KIND:
            lines.append(f"  t+{anomaly.at - history.started:6.1f} s  {anomaly}")
    lines += [
        f"  ... and {count - PER_KIND} more {kind}"
        for kind, count in sorted(shown.items())
        if count > PER_KIND
    ]
    return "\n".join(lines)
