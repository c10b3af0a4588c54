"""Print every benchmark result in ``tests/bench/results/*.json`` as markdown tables.

``make bench`` runs the benchmarks, then this. Each result file becomes one
table of its scalar numbers (nested objects flattened to dotted names), so a
new benchmark shows up here without changes to this module. Files that are
not valid JSON objects are named, not skipped silently.

``peers.json`` is the exception: its rows are systems side by side, so it
gets the table the README shows (system, workload, time, ADD p50/p99,
errors, ratio to the floor) and one for the scale steps
(:func:`peers_table`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def flatten(value: Any, name: str = "") -> list[tuple[str, Any]]:
    """(dotted name, scalar) pairs; lists of scalars are joined, other lists are counted."""
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, inner in value.items():
            rows += flatten(inner, f"{name}.{key}" if name else str(key))
        return rows
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(name, ", ".join(str(v) for v in value))]
        return [(f"{name} (entries)", len(value))]
    return [(name, value)]


def cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render(path: Path) -> str:
    """A peers result (``peers*.json``) side by side; any other file as a flat table."""
    if path.name.startswith("peers"):
        try:
            return f"## {path.stem}\n\n" + peers_table(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"## {path.stem}\n\n(unreadable: {exc})\n"
    return table(path)


def table(path: Path) -> str:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return f"## {path.stem}\n\n(unreadable: {exc})\n"
    if not isinstance(doc, dict):
        return f"## {path.stem}\n\n(not a JSON object)\n"
    lines = [f"## {path.stem}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {cell(name)} | {cell(value)} |" for name, value in flatten(doc)]
    return "\n".join(lines) + "\n"


SYSTEM_ORDER = {"floor": 0, "nicpool": 1, "host-local": 2, "whereabouts": 3}


def _num(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def peers_table(doc: dict[str, Any]) -> str:
    """The side-by-side table and the scale table of ``peers.json``."""
    rows = sorted(
        doc.get("systems", []),
        key=lambda r: (r["pods"], r["nics_per_pod"], r["callers"], SYSTEM_ORDER.get(r["name"], 9)),
    )
    lines = [
        "| system | workload | time (s) | ADD p50 (ms) | ADD p99 (ms) | errors | ratio to floor "
        "| CPU s, all processes | load (1 min, before/after) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        shape = f"{r['pods']} x {r['nics_per_pod']}"
        if r["name"] == "floor":
            shape += ", creates + 1 patch/pod"
            ratio = "1.00"
        else:
            shape += f", {r['callers']} callers"
            ratio = _num(r.get("ratio_to_floor"), 2)
        seconds = _num(r["seconds"], 2)
        if r.get("allocated_seconds") is not None and r["name"] != "floor":
            seconds += f" (allocated {_num(r['allocated_seconds'], 2)})"
        errors = f"{r['errors']}" + (
            f" ({r['pods_never_done']} pods not done)" if r.get("pods_never_done") else ""
        )
        lines.append(
            f"| {r['name']} | {shape} | {seconds} | {_num(r['add_p50_ms'])} | "
            f"{_num(r['add_p99_ms'])} | {errors} | {ratio} | {_num(cpu_total(r))} | "
            f"{_num(r.get('load_average_1m_before'))}/{_num(r.get('load_average_1m_after'))} |"
        )
    out = ["\n".join(lines)]
    scale = doc.get("scale", [])
    if scale:
        out.append(scale_table(scale))
    return "\n\n".join(out) + "\n"


def cpu_total(row: dict[str, Any]) -> float | None:
    """CPU seconds of every process the run started, over the whole workload (ADDs and DELs)."""
    found = (row.get("where") or {}).get("cpu_seconds")
    return sum(found.values()) if found else None


def _ctl(step: dict[str, Any], name: str) -> str:
    found = step.get(f"nicpoolctl_{name}") or {}
    if not found:
        return "-"
    if "error" in found or found.get("exit") not in (0, 1):
        return f"**failed** (exit {found.get('exit')}, {_num(found.get('seconds'), 2)} s)"
    return _num(found.get("seconds"), 2)


def scale_table(steps: list[dict[str, Any]]) -> str:
    lines = [
        "| leases | restart -> first allocation (s) | leader ready (s) | index load (s) | "
        "`audit` (s) | `backup` (s) | `usage` (s) | etcd bytes per lease | controller RSS (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in steps:
        if "error" in s:
            lines.append(f"| {s['leases']:,} | **failed**: {cell(s['error'])[:200]} |")
            continue
        rss = s.get("controller_rss_mib_after_restart", {}).get("VmRSS")
        lines.append(
            f"| {s['leases']:,} | {_num(s.get('restart_to_first_allocation_s'), 2)} | "
            f"{_num(s.get('restart_leader_ready_s'), 2)} | {_num(s.get('index_load_s'), 2)} | "
            f"{_ctl(s, 'audit')} | {_ctl(s, 'backup')} | {_ctl(s, 'usage')} | "
            f"{_num(s.get('bytes_per_lease'), 0)} | {_num(rss, 0)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.table", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    files = sorted(args.directory.glob("*.json"))
    if not files:
        print(f"no results in {args.directory}; run make bench-store / bench-cni / bench-e2e")
        return 1
    print("\n".join(render(path) for path in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
