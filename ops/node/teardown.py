"""``make cluster-down``: every process, mount, cgroup, link and namespace of the node.

The node's processes are exactly those the lab started (recorded in
``state.json``) plus what they started in turn: every process in the node's
network namespace (containerd's shims, hostNetwork containers), in its mount
namespace, or in kubelet's cgroup root (pod containers). They are found by
those three facts, each compared by the namespace's inode, and killed by
process id, never by name. kubelet is stopped first, politely, so it does not
restart what is being killed.

Then the mount namespace is released (its mounts go with it), the cgroup
subtree removed bottom-up, the network namespace deleted (its links, the
bridge and the pods' veths with it), the mountpoints made on the machine
removed if still empty, and the lab directory removed except ``logs/``.
Teardown works from whatever is left: a bring-up that failed half way, or a
node whose ``state.json`` is gone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ops.node import cgroups, mounts, network
from ops.node.daemons import Pid, kill_all, stop
from ops.node.layout import Layout
from ops.node.state import State


def _ns_inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _processes_in(kind: str, inode: int | None) -> set[int]:
    if inode is None:
        return set()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / kind).st_ino == inode:
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def node_processes(layout: Layout) -> set[int]:
    """Every process in the node's namespaces or cgroup root (never this one)."""
    found = _processes_in("net", _ns_inode(network.netns_path()) if network.exists() else None)
    if mounts.exists(layout):
        found |= _processes_in("mnt", _ns_inode(layout.mount_ns))
    found |= cgroups.processes()
    found.discard(os.getpid())
    return found


def down(layout: Layout) -> list[str]:
    """Remove everything; returns what could not be removed (empty when clean)."""
    state = State.load(layout.state_file) or State()
    kubelet = state.pid("kubelet")
    if kubelet is not None:
        stop(kubelet, grace=15)
    recorded = [Pid.from_json(raw) for raw in state.daemons.values()]
    swept = [Pid.of(pid) for pid in node_processes(layout)]
    left: list[str] = []
    try:
        kill_all([p for p in recorded + swept if p.start])
        # Children that were being started while we looked.
        kill_all([Pid.of(pid) for pid in node_processes(layout)])
    except RuntimeError as error:  # unkillable (D state): report it, remove the rest
        left.append(str(error))
    mounts.delete(layout, state.created_dirs)
    left += [f"cgroup {path}" for path in cgroups.remove()]
    network.delete()
    if network.exists():
        left.append(f"network namespace {network.netns_path()}")
    if mounts.exists(layout):
        left.append(f"mount namespace {layout.mount_ns}")
    left += [f"directory {d}" for d in state.created_dirs if Path(d).exists()]
    if layout.root.exists() and not left:
        for entry in layout.root.iterdir():
            if entry.name == "logs":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return left


def leftovers(layout: Layout) -> list[str]:
    """What of the node still exists (for tests of teardown)."""
    found = [f"process {pid}" for pid in sorted(node_processes(layout))]
    found += [f"cgroup {path}" for path in cgroups.exists()]
    if network.exists():
        found.append(f"network namespace {network.netns_path()}")
    if mounts.exists(layout):
        found.append(f"mount namespace {layout.mount_ns}")
    return found
