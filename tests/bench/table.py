"""Print every benchmark result in ``tests/bench/results/*.json`` as markdown tables.

``make bench`` runs the benchmarks, then this. Each result file becomes one
table of its scalar numbers (nested objects flattened to dotted names), so a
new benchmark shows up here without changes to this module. Files that are
not valid JSON objects are named, not skipped silently.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.table", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    files = sorted(args.directory.glob("*.json"))
    if not files:
        print(f"no results in {args.directory}; run make bench-store / bench-cni / bench-e2e")
        return 1
    print("\n".join(table(path) for path in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
