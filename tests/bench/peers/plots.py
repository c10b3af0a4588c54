"""The peers benchmark's figures (matplotlib, Agg): latency CDFs, progress over time, restart.

``python -m tests.bench.peers.plots`` redraws them from
``results/peers.json`` and ``results/peers/samples.json`` without running
anything. Every figure carries a footer with the machine (cores, CPU model,
load average at start and end of the run) and the date, because these
numbers come from a shared 2-core machine and mean little without them.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

RESULTS = Path(__file__).resolve().parents[1] / "results"
COLORS = {"nicpool": "tab:blue", "host-local": "tab:green", "whereabouts": "tab:red"}
COLORS["floor"] = "tab:gray"


def footer(result: dict[str, Any]) -> str:
    m = result.get("machine", {})
    start = "/".join(str(x) for x in m.get("load_average_at_start", []))
    end = "/".join(str(x) for x in m.get("load_average", []))
    return (
        f"{m.get('cpus')} cores ({m.get('cpu_model', '')}); load average 1/5/15 min "
        f"{start} at start, {end} at end; measured {result.get('measured_at', '')}"
    )


def _save(fig: Figure, result: dict[str, Any], path: Path) -> Path:
    lines = textwrap.wrap(footer(result), width=int(fig.get_figwidth() * 17))
    text = "\n".join(lines)
    fig.text(0.01, 0.005, text, fontsize=7, color="dimgray", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.035 * len(lines) * 4 / fig.get_figheight(), 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def latency_cdfs(result: dict[str, Any], samples: list[dict[str, Any]], out: Path) -> Path | None:
    pods = max((s["pods"] for s in samples), default=0)
    nics = max((s["nics_per_pod"] for s in samples if s["pods"] == pods), default=0)
    chosen = [s for s in samples if (s["pods"], s["nics_per_pod"]) == (pods, nics) and s["add_ms"]]
    callers = sorted({s["callers"] for s in chosen})
    if not callers:
        return None
    fig, axes = plt.subplots(1, len(callers), figsize=(4.2 * len(callers), 3.8), squeeze=False)
    for ax, count in zip(axes[0], callers, strict=True):
        for s in (s for s in chosen if s["callers"] == count):
            values = sorted(s["add_ms"])
            ys = [(i + 1) / len(values) for i in range(len(values))]
            ax.step(values, ys, where="post", label=s["name"], color=COLORS.get(s["name"]))
        ax.set_xscale("log")
        ax.set_xlabel("ADD latency, ms (log)")
        ax.set_title(f"{pods} pods x {nics} NICs, {count} callers", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("fraction of ADDs")
    axes[0][0].legend(fontsize=8)
    return _save(fig, result, out / "latency-cdf.png")


def progress_over_time(
    result: dict[str, Any], samples: list[dict[str, Any]], out: Path
) -> Path | None:
    pods = max((s["pods"] for s in samples), default=0)
    nics = max((s["nics_per_pod"] for s in samples if s["pods"] == pods), default=0)
    callers = max((s["callers"] for s in samples if s["pods"] == pods), default=0)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    drawn = False
    for s in samples:
        if (s["pods"], s["nics_per_pod"]) != (pods, nics):
            continue
        color = COLORS.get(s["name"])
        if s["name"] == "floor":
            _curve(ax, s["done_s"], "floor: pods patched", color, "--")
            drawn = True
        elif s["callers"] == callers:
            _curve(ax, s["add_done_s"], f"{s['name']}: ADDs returned", color, "-")
            if s["done_s"]:
                _curve(ax, s["done_s"], f"{s['name']}: pods allocated", color, ":")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("seconds since the first pod creation (log)")
    ax.set_ylabel("fraction done")
    ax.set_title(f"Throughput: {pods} pods x {nics} NICs, {callers} callers", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, result, out / "throughput.png")


def _curve(ax: Any, times: list[float], label: str, color: str | None, style: str) -> None:
    if times:
        ys = [(i + 1) / len(times) for i in range(len(times))]
        ax.step(sorted(times), ys, where="post", label=label, color=color, linestyle=style)


def restart(result: dict[str, Any], out: Path) -> Path | None:
    steps = [s for s in result.get("scale", []) if "restart_to_first_allocation_s" in s]
    if not steps:
        return None
    leases = [s["leases"] for s in steps]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    series = (
        ("restart_to_first_allocation_s", "start -> first new pod allocated", "o-"),
        ("index_loaded_after_start_s", "start -> attachment index loaded", "s--"),
        ("restart_leader_ready_s", "start -> leader, ready to allocate", "^:"),
    )
    for key, label, style in series:
        ax.plot(leases, [s[key] for s in steps], style, label=label)
    ax.axhline(2.0, color="tab:red", alpha=0.5, linewidth=1, label="goal: 2 s")
    ax.set_xscale("log")
    ax.set_xlabel("leases in the store (log)")
    ax.set_ylabel("seconds")
    ax.set_title("nicpool controller restart vs lease count", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, result, out / "restart.png")


def draw(result: dict[str, Any], samples: list[dict[str, Any]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    made = [
        latency_cdfs(result, samples, out),
        progress_over_time(result, samples, out),
        restart(result, out),
    ]
    return [path for path in made if path is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.peers.plots", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS / "peers.json")
    parser.add_argument("--out", type=Path, default=RESULTS / "peers")
    args = parser.parse_args(argv)
    result = json.loads(args.results.read_text())
    samples_file = args.out / "samples.json"
    samples = json.loads(samples_file.read_text()) if samples_file.exists() else []
    for path in draw(result, samples, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
