"""From raw outcomes to the numbers of ``peers.json``: percentiles, ratios, the machine.

``systems`` rows carry the fields the issue asks for (``name``, ``pods``,
``nics_per_pod``, ``callers``, ``seconds``, ``add_p50_ms``, ``add_p99_ms``,
``errors``) and a few more. ``seconds`` is, for a system that runs CNI
calls, first pod creation -> last ADD returned; for the floor (no CNI
calls, ``callers`` 0), first pod creation -> last pod observed patched.
For nicpool, ``allocated_seconds`` is first pod creation -> last pod
observed with ``allocated: "true"`` on every NIC, and
``allocated_p50_ms``/``allocated_p99_ms`` are per pod, its create call ->
that observation.
"""

from __future__ import annotations

import os
import platform
import time
from collections import Counter
from typing import Any

from tests.bench.peers.workload import Outcome


def percentile(samples: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no samples)."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def row(outcome: Outcome, load: float) -> dict[str, Any]:
    """One ``systems`` entry."""
    workload = outcome.workload
    adds = [e for e in outcome.adds if e.error is None]
    latencies = [(e.ended - e.started) * 1000 for e in adds]
    errors = [e.error for e in outcome.adds if e.error is not None]
    entry: dict[str, Any] = {
        "name": outcome.system,
        "pods": workload.pods,
        "nics_per_pod": workload.nics,
        "callers": workload.callers,
        "seconds": None,
        "add_p50_ms": _ms(percentile(latencies, 50)),
        "add_p99_ms": _ms(percentile(latencies, 99)),
        "errors": len(errors),
        "adds": len(outcome.adds),
    }
    if outcome.adds:
        entry["seconds"] = round(max(e.ended for e in outcome.adds) - outcome.begin, 2)
        entry["add_max_ms"] = _ms(max((e.ended - e.started) * 1000 for e in outcome.adds))
    if outcome.dels:
        entry["del_seconds"] = round(outcome.del_seconds, 2)
        entry["del_errors"] = sum(e.error is not None for e in outcome.dels)
    if outcome.done or outcome.system in ("nicpool", "floor"):
        entry.update(_done(outcome))
    if outcome.system == "floor":
        entry["seconds"] = entry.pop("allocated_seconds")
        entry["patched_p50_ms"] = entry.pop("allocated_p50_ms")
        entry["patched_p99_ms"] = entry.pop("allocated_p99_ms")
    entry["error_samples"] = [f"{n} x {text}" for text, n in Counter(errors).most_common(3)]
    entry["load_average_1m_before"] = round(load, 2)
    entry["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return entry


def _done(outcome: Outcome) -> dict[str, Any]:
    names = list(outcome.created)
    done = [n for n in names if n in outcome.done]
    waits = [(outcome.done[n] - outcome.created[n]) * 1000 for n in done]
    last = max((outcome.done[n] for n in done), default=None)
    return {
        "allocated_seconds": None if last is None else round(last - outcome.begin, 2),
        "allocated_p50_ms": _ms(percentile(waits, 50)),
        "allocated_p99_ms": _ms(percentile(waits, 99)),
        "pods_never_done": len(names) - len(done),
    }


def find(rows: list[dict[str, Any]], name: str, pods: int, nics: int, callers: int | None) -> Any:
    for entry in rows:
        same = (entry["name"], entry["pods"], entry["nics_per_pod"]) == (name, pods, nics)
        if same and (callers is None or entry["callers"] == callers):
            return entry
    return None


def ratios(rows: list[dict[str, Any]]) -> None:
    """Add ``ratio_to_floor`` to every nicpool row (and ``vs_whereabouts`` where both ran)."""
    for entry in rows:
        if entry["name"] == "floor":
            continue
        floor = find(rows, "floor", entry["pods"], entry["nics_per_pod"], None)
        if floor and floor["seconds"] and entry["seconds"] is not None:
            entry["ratio_to_floor"] = round(entry["seconds"] / floor["seconds"], 2)
            if entry.get("allocated_seconds") is not None:
                allocated = entry["allocated_seconds"] / floor["seconds"]
                entry["allocated_ratio_to_floor"] = round(allocated, 2)


def headline(rows: list[dict[str, Any]], pods: int, nics: int, callers: int) -> dict[str, Any]:
    """The issue's two ratios, taken at ``pods`` x ``nics``, ``callers`` callers."""
    nicpool = find(rows, "nicpool", pods, nics, callers)
    where = find(rows, "whereabouts", pods, nics, callers)
    floor = find(rows, "floor", pods, nics, None)
    result: dict[str, Any] = {"headline_workload": f"{pods} pods x {nics} NICs, {callers} callers"}
    speedup = None
    if nicpool and where and nicpool["seconds"] and where["seconds"] is not None:
        speedup = round(where["seconds"] / nicpool["seconds"], 2)
    result["speedup_vs_whereabouts"] = speedup
    result["ratio_to_floor"] = nicpool.get("ratio_to_floor") if nicpool else None
    result["allocated_ratio_to_floor"] = (
        nicpool.get("allocated_ratio_to_floor") if nicpool else None
    )
    result["floor_seconds"] = floor["seconds"] if floor else None
    result["goals"] = {
        "speedup_vs_whereabouts >= 10 with zero nicpool errors": bool(
            speedup is not None and speedup >= 10 and nicpool and nicpool["errors"] == 0
        ),
        "ratio_to_floor <= 1.5": bool(
            result["ratio_to_floor"] is not None and result["ratio_to_floor"] <= 1.5
        ),
    }
    return result


def machine() -> dict[str, Any]:
    """Cores, load average, CPU model, kernel and Python: what every figure states."""
    model = ""
    try:
        for line in open("/proc/cpuinfo").read().splitlines():  # noqa: SIM115 (tiny file)
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
