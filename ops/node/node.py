"""Bring the node up, one step at a time, recording each in ``state.json``.

:func:`up` starts, in order: the network namespace and the loopback
forwarder, both etcds, kube-apiserver, kube-controller-manager and
kube-scheduler, the cgroup root and the mount namespace, the CNI
configuration, containerd (and imports the images into it), and kubelet;
it returns once the node is ``Ready`` and untainted. Any failure tears down
what was started and raises :class:`NodeError` with the failing
component's log tail. :class:`~ops.node.cluster.NodeCluster` is what callers use
afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ops.lab.ports import free_port
from ops.node import cgroups, control, kubelet, mounts, network, pki, probes, runtime, teardown
from ops.node.daemons import spawn
from ops.node.layout import (
    APISERVER_PORT,
    KUBE_ETCD_PORT,
    NICPOOL_ETCD_PORT,
    Layout,
)
from ops.node.state import State

REPO = Path(__file__).resolve().parents[2]


class NodeError(RuntimeError):
    """The node could not be brought up; the message names the step and shows its log."""


@dataclass(frozen=True)
class Inputs:
    """What the node runs: binaries and image archives (see :func:`ops.node.assets.find`)."""

    kube_bin: Path
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet."""
    multus: Path
    images: tuple[Path, ...]


@dataclass
class _Bringup:
    layout: Layout
    inputs: Inputs
    state: State
    started: float

    def mark(self, milestone: str) -> None:
        self.state.timings[milestone] = round(time.monotonic() - self.started, 2)
        self.state.save(self.layout.state_file)

    def daemon(self, name: str, argv: list[str], *, mount_ns: bool = False) -> None:
        pid = spawn(
            name,
            argv,
            log_dir=self.layout.logs,
            netns=network.netns_path(),
            mount_ns=self.layout.mount_ns if mount_ns else None,
        )
        self.state.daemons[name] = pid.to_json()
        self.state.save(self.layout.state_file)

    def wait(self, what: str, probe: Callable[[], bool], timeout: float, log: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.state.pid(log)
            if pid is not None and not pid.alive():
                raise NodeError(f"{log} exited while waiting for {what}:\n{self.log_tail(log)}")
            if probe():
                return
            time.sleep(0.1)
        raise NodeError(
            f"timed out after {timeout:.0f} s waiting for {what}:\n{self.log_tail(log)}"
        )

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.layout.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def up(layout: Layout, inputs: Inputs, *, timeout: float = 180.0) -> State:
    """Start the node; returns its state once the node is Ready."""
    if layout.state_file.exists():
        raise NodeError(f"a node is already recorded in {layout.state_file}: make cluster-down")
    teardown.down(layout)  # whatever an earlier crash left behind
    if layout.root.exists():
        shutil.rmtree(layout.root)
    layout.logs.mkdir(parents=True)
    b = _Bringup(layout, inputs, State(kube_bin=str(inputs.kube_bin)), time.monotonic())
    b.state.save(layout.state_file)
    try:
        b.state.tokens = pki.make_pki(layout.pki)
        network.create()
        _forwarder(b)
        _control_plane(b)
        _runtime(b)
        b.daemon("kubelet", kubelet.argv(inputs.kube_bin / "kubelet", layout), mount_ns=True)
        b.mark("kubelet started")
        b.wait("the node to be Ready and untainted", lambda: probes.node_ready(layout), timeout,
               "kubelet")  # fmt: skip
        b.mark("node ready")
    except BaseException:
        teardown.down(layout)
        raise
    return b.state


def _control_plane(b: _Bringup) -> None:
    """Both etcds, then the apiserver, then its controllers and the scheduler."""
    layout, bins = b.layout, b.inputs.kube_bin
    b.daemon("kube-etcd", control.kube_etcd(bins / "etcd", layout))
    b.daemon("nicpool-etcd", control.nicpool_etcd(bins / "etcd", layout))
    b.wait("the cluster's etcd", lambda: probes.kube_etcd_ok(b.state), 30, "kube-etcd")
    b.wait("nicpool's etcd", lambda: probes.nicpool_etcd_ok(layout, b.state), 30,
           "nicpool-etcd")  # fmt: skip
    _etcd_auth(b)
    _kubeconfigs(layout, b.state)
    b.daemon("kube-apiserver", control.apiserver(bins / "kube-apiserver", layout))
    b.wait("kube-apiserver /readyz", lambda: probes.apiserver_ready(layout, b.state), 90,
           "kube-apiserver")  # fmt: skip
    b.mark("apiserver ready")
    b.daemon("kube-controller-manager", control.controller_manager(
        bins / "kube-controller-manager", layout))  # fmt: skip
    b.daemon("kube-scheduler", control.scheduler(bins / "kube-scheduler", layout))
    probes.apply_lab_rbac(layout)


def _etcd_auth(b: _Bringup) -> None:
    """Roles per component, as an operator sets them up: ``nicpoolctl access setup`` as root."""
    pki = b.layout.pki
    argv = [
        sys.executable, "-m", "reconciler.ctl.main",
        f"--etcd-endpoints=https://127.0.0.1:{b.state.ports['nicpool-etcd']}",
        f"--etcd-cacert={pki / 'etcd-ca.crt'}",
        f"--etcd-cert={pki / 'root.crt'}", f"--etcd-key={pki / 'root.key'}",
        "access", "setup",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False, timeout=60)
    if done.returncode != 0:
        raise NodeError(f"nicpoolctl access setup failed: {done.stderr.strip()}")
    b.mark("etcd auth enabled")


def _runtime(b: _Bringup) -> None:
    """cgroups, the mount namespace, CNI config, containerd and the images."""
    layout = b.layout
    cgroups.create()
    try:
        mounts.create(layout, b.state.created_dirs)
    finally:
        b.state.save(layout.state_file)
    server = f"https://127.0.0.1:{APISERVER_PORT}"
    runtime.install_cni(
        layout, multus=b.inputs.multus, server=server, token=b.state.tokens["multus"]
    )
    b.daemon("containerd", runtime.containerd_argv(layout), mount_ns=True)
    b.wait("containerd's socket", lambda: probes.containerd_ok(layout), 30, "containerd")
    for archive in b.inputs.images:
        runtime.import_image(layout, archive)
    b.mark("images imported")


def _forwarder(b: _Bringup) -> None:
    """Loopback ports on the machine into the node (see :mod:`ops.node.forward`)."""
    ports = {name: free_port() for name in ("apiserver", "nicpool-etcd", "kube-etcd")}
    targets = {"apiserver": APISERVER_PORT, "nicpool-etcd": NICPOOL_ETCD_PORT,
               "kube-etcd": KUBE_ETCD_PORT}  # fmt: skip
    mappings = [f"127.0.0.1:{ports[n]}=127.0.0.1:{targets[n]}" for n in ports]
    argv = [sys.executable, "-m", "ops.node.forward", "--netns", str(network.netns_path())]
    pid = spawn("forward", [*argv, *mappings], log_dir=b.layout.logs, cwd=REPO)
    b.state.daemons["forward"] = pid.to_json()
    b.state.ports = ports
    b.state.save(b.layout.state_file)


def _kubeconfigs(layout: Layout, state: State) -> None:
    ca = layout.pki / "ca.crt"
    layout.node_kubeconfigs.mkdir(parents=True, exist_ok=True)
    inside = f"https://127.0.0.1:{APISERVER_PORT}"
    for name in ("kube-controller-manager", "kube-scheduler", "kubelet"):
        user = pki.IDENTITIES[name][0]
        path = layout.node_kubeconfigs / f"{name}.kubeconfig"
        path.write_text(pki.kubeconfig(inside, ca, user, state.tokens[name]))
        path.chmod(0o600)
    outside = f"https://127.0.0.1:{state.ports['apiserver']}"
    layout.admin_kubeconfig.write_text(
        pki.kubeconfig(outside, ca, pki.IDENTITIES["admin"][0], state.tokens["admin"])
    )
    layout.admin_kubeconfig.chmod(0o600)
