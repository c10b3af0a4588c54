"""Sampling the nicpool controller with py-spy while it works, summarised for the JSON.

``py-spy record --format raw --nonblocking`` attaches to the controller's
pid (root may ptrace it) and writes collapsed stacks, one line per distinct
stack with its sample count; idle threads (blocked in a lock or a socket
read) are left out, so the samples are where the controller burns CPU.
:func:`summarise` turns them into the share of samples per area (TLS and
HTTP to the apiserver, JSON, gRPC to etcd, nicpool's own code, ...) by
leaf frame, and the nicpool functions with the most inclusive samples.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

AREAS = (
    ("reconciler/", "nicpool code"),
    ("store/", "nicpool code"),
    ("ssl", "TLS (ssl)"),
    ("urllib3", "HTTP client (urllib3, http)"),
    ("http/client", "HTTP client (urllib3, http)"),
    ("json", "JSON encode/decode"),
    ("grpc", "gRPC to etcd"),
    ("pyetcd", "gRPC to etcd"),
    ("google/protobuf", "gRPC to etcd"),
    ("threading", "threads, queues, locks"),
    ("queue", "threads, queues, locks"),
    ("logging", "logging"),
    ("prometheus_client", "metrics"),
)


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


class Recorder:
    def __init__(self, pid: int, output: Path) -> None:
        self.output = output
        binary = py_spy()
        self.process: subprocess.Popen[bytes] | None = None
        if binary is not None:
            argv = [binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "100"]
            argv += ["--nonblocking", "--output", str(output)]
            self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> dict[str, Any]:
        if self.process is None:
            return {"error": "py-spy is not installed (pip install -e .[bench])"}
        self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        if not self.output.exists():
            return {"error": err.decode(errors="replace")[-500:]}
        return summarise(self.output.read_text())


def _frame(text: str) -> tuple[str, str]:
    """``function (file:line)`` -> (function, file)."""
    name, _, where = text.rpartition(" (")
    return (name or text), where.rstrip(")").rsplit(":", 1)[0]


def _area(path: str) -> str:
    for needle, label in AREAS:
        if needle in path:
            return label
    return "other (interpreter, stdlib)"


def summarise(raw: str) -> dict[str, Any]:
    areas: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")[1:]]  # first entry: the thread
        if not frames:
            continue
        total += count
        areas[_area(frames[-1][1])] += count
        own = {f"{name} ({Path(path).parent.name}/{Path(path).name})" for name, path in frames}
        for name in own:
            if "reconciler/" in name or "store/" in name:
                inclusive[name] += count
    share = {area: round(100 * n / total, 1) for area, n in areas.most_common()} if total else {}
    top = (
        {name: round(100 * n / total, 1) for name, n in inclusive.most_common(12)} if total else {}
    )
    return {
        "samples": total,
        "leaf_share_percent_by_area": share,
        "nicpool_functions_inclusive_percent": top,
    }
