"""Finding what the node runs, or saying exactly what is missing.

Binaries come from ``ops/tools/build-test-binaries.sh`` (kubelet and
kube-scheduler beside the control plane), Multus from
``ops/tools/build-multus.sh``, image archives from
``ops/tools/build-images.sh``, containerd, runc and ``ctr`` from Debian's
packages. :func:`find` never builds: ``make cluster`` and ``make test`` build
first (``make node-deps``), and a test run elsewhere skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ops.lab.binaries import REPO, find_assets
from ops.node.node import Inputs

KUBE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
TOOLS = ("containerd", "runc", "ctr", "nsenter", "unshare", "ip", "openssl", "kubectl")
IMAGES_SCRIPT = REPO / "ops" / "tools" / "build-images.sh"
MULTUS_SCRIPT = REPO / "ops" / "tools" / "build-multus.sh"


def _cached(script: Path, *args: str) -> list[Path] | None:
    done = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, check=False)
    if done.returncode:
        return None
    return [Path(line) for line in done.stdout.split()]


def find() -> Inputs | str:
    """The node's inputs, or why this machine cannot run the node."""
    if os.geteuid() != 0:
        return "the node needs root (network and mount namespaces, cgroups)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (make node-deps installs containerd and runc)"
    assets = find_assets()
    if assets is None or not all(os.access(assets / b, os.X_OK) for b in KUBE_BINARIES):
        return f"no {', '.join(KUBE_BINARIES)}: run make test-binaries"
    multus = _cached(MULTUS_SCRIPT, "--cached-only")
    if not multus:
        return "no Multus thin plugin: run bash ops/tools/build-multus.sh (make node-deps)"
    images = _cached(IMAGES_SCRIPT, "--cached-only")
    if not images:
        return "no node images: run bash ops/tools/build-images.sh (make node-deps)"
    return Inputs(kube_bin=assets, multus=multus[-1], images=tuple(images))
