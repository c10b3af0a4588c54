"""kubelet's cgroup root, created in every hierarchy and removed with what is inside.

This machine mounts cgroup v1 controllers one per hierarchy, plus a cgroup v2
mount at ``/sys/fs/cgroup/unified`` (kubelet: ``failCgroupV1: false``,
``cgroupDriver: cgroupfs``). kubelet's ``cgroupRoot`` must exist in every
hierarchy before it starts, and all pods live below it, so teardown finds
every container process (``cgroup.procs`` of the subtree, in any hierarchy)
and removes the subtree bottom-up once they are gone. A new cpuset cgroup
starts with no CPUs and no memory nodes; it gets its parent's.
"""

from __future__ import annotations

import os
from pathlib import Path

from ops.node.layout import CGROUP_ROOT


def hierarchies() -> list[Path]:
    """Mount points of every cgroup (v1) and cgroup2 file system."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2"):
            found.append(Path(fields[4]))
    return found


def _is_cgroup_v1(mountpoint: Path) -> bool:
    return (mountpoint / "tasks").exists()


def create(root: str = CGROUP_ROOT) -> None:
    for mountpoint in hierarchies():
        if not _is_cgroup_v1(mountpoint):
            continue
        directory = mountpoint / root.lstrip("/")
        directory.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (directory / name).exists() and not (directory / name).read_text().strip():
                (directory / name).write_text((mountpoint / name).read_text())


def processes(root: str = CGROUP_ROOT) -> set[int]:
    """Every process in the subtree, in any hierarchy."""
    found: set[int] = set()
    for mountpoint in hierarchies():
        top = mountpoint / root.lstrip("/")
        for directory, _, files in os.walk(top):
            if "cgroup.procs" in files:
                text = Path(directory, "cgroup.procs").read_text()
                found.update(int(line) for line in text.split())
    return found


def remove(root: str = CGROUP_ROOT) -> list[str]:
    """Remove the subtree bottom-up; returns directories that would not go (still busy)."""
    left = []
    for mountpoint in hierarchies():
        top = mountpoint / root.lstrip("/")
        if not top.exists():
            continue
        for directory, _, _ in os.walk(top, topdown=False):
            try:
                os.rmdir(directory)
            except OSError:
                left.append(directory)
    return left


def exists(root: str = CGROUP_ROOT) -> list[Path]:
    return [m / root.lstrip("/") for m in hierarchies() if (m / root.lstrip("/")).exists()]
