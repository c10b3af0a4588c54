"""The node's mount namespace: a node's paths, and kubelet's sysctls, kept off the machine.

containerd and kubelet share one mount namespace of their own, persisted in
``<root>/ns/mnt`` (``unshare --mount=FILE``) so each can be started into it
later with ``nsenter``. Its propagation is private: nothing mounted inside
(kubelet's volume tmpfs mounts, containerd's overlay snapshots and netns
pins, runc's bind mounts) ever appears on the machine, and since kubelet
and containerd see the same mounts, a volume kubelet prepares is the one
containerd hands to runc. Once no process is left inside and the file is
unmounted, the kernel drops the namespace and every mount in it.

Inside it:

* each of :data:`~ops.node.layout.NODE_PATHS` is a bind mount of its lab
  directory; a mountpoint missing on the machine is created (an empty
  directory, recorded and removed at teardown);
* kubelet's kernel tunables (it writes ``vm.overcommit_memory``,
  ``kernel.panic``, ``kernel.panic_on_oops``, ... at start, and with
  ``protectKernelDefaults`` refuses to start instead): each one whose
  machine value differs gets a file holding kubelet's value bind-mounted over
  its ``/proc/sys`` entry, so kubelet reads what it wants and the machine's
  sysctls are never written.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from ops.node.layout import NODE_PATHS, Layout

KUBELET_SYSCTLS = {
    # pkg/kubelet/cm/container_manager_linux.go: setupKernelTunables
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def _inside(layout: Layout, *argv: str) -> None:
    _run("nsenter", f"--mount={layout.mount_ns}", "--", *argv)


def _make_dirs(path: Path) -> list[str]:
    """mkdir -p, returning the directories it created, outermost first."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir()
    return [str(d) for d in reversed(missing)]


def create(layout: Layout, created: list[str]) -> None:
    """The namespace with its bind mounts.

    Machine directories it has to create as mountpoints are appended to
    ``created`` as they are made, so a failure half way still leaves the
    list teardown needs.
    """
    layout.ns_dir.mkdir(parents=True, exist_ok=True)
    # unshare persists a namespace only on a mount that is not shared.
    _run("mount", "--bind", str(layout.ns_dir), str(layout.ns_dir))
    _run("mount", "--make-private", str(layout.ns_dir))
    layout.mount_ns.touch()
    _run("unshare", f"--mount={layout.mount_ns}", "--propagation", "private", "true")
    for path in NODE_PATHS:
        layout.node_path(path).mkdir(parents=True, exist_ok=True)
        created += _make_dirs(Path(path))
        _inside(layout, "mount", "--bind", str(layout.node_path(path)), path)
    layout.sysctl_dir.mkdir(parents=True, exist_ok=True)
    for name, wanted in KUBELET_SYSCTLS.items():
        entry = Path("/proc/sys") / name
        if not entry.exists() or entry.read_text().strip() == wanted:
            continue
        value = layout.sysctl_dir / name.replace("/", ".")
        value.write_text(wanted + "\n")
        _inside(layout, "mount", "--bind", str(value), str(entry))


def exists(layout: Layout) -> bool:
    return layout.mount_ns.exists() and _is_mountpoint(layout.mount_ns)


def _is_mountpoint(path: Path) -> bool:
    target = str(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == target:
            return True
    return False


def delete(layout: Layout, created: list[str]) -> None:
    """Drop the namespace (its mounts go with it) and the directories made for it.

    Call once every process inside has exited; a process still inside would
    keep the namespace, and its mounts, alive.
    """
    for path in (layout.mount_ns, layout.ns_dir):
        if _is_mountpoint(path):
            _run("umount", str(path))
    for directory in reversed(created):
        # Not empty: something else put files there since; leave it.
        with contextlib.suppress(OSError):
            Path(directory).rmdir()


def machine_sysctls() -> dict[str, str]:
    """The machine's values of kubelet's tunables, for checks before and after."""
    found = {}
    for name in KUBELET_SYSCTLS:
        entry = Path("/proc/sys") / name
        if entry.exists():
            found[name] = entry.read_text().strip()
    return found
