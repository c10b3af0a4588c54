"""kubelet's configuration: a real node, with every side effect kept in the lab.

What differs from a kubeadm node, and why:

* ``failCgroupV1: false`` and ``cgroupDriver: cgroupfs``: this machine has
  cgroup v1 (with a v2 mount beside) and no systemd;
* ``cgroupRoot``: all pod cgroups under one lab-owned root, removed at teardown;
* ``failSwapOn: false``; ``oomScoreAdj: 0`` (lowering its own score needs
  CAP_SYS_RESOURCE, which this machine's bounding set lacks);
* ``podLogsDir``, ``volumePluginDir``, ``staticPodPath``, ``--root-dir``,
  ``--cert-dir``: lab directories, not /var/log/pods, /usr/libexec/...;
* image garbage collection off (``imageGCHighThresholdPercent: 100``): the
  images were imported, nothing could pull them back; eviction thresholds
  low: the machine's disk is shared and a cleanup would evict nicpool;
* ``resolvConf``: a lab file (pods need no DNS here, and the machine's
  resolver is not theirs to use);
* authentication: x509 client certificates from the cluster CA (the
  apiserver's) and webhook, authorization by webhook, as kubeadm does.

kubelet runs in the node's network and mount namespaces; its kernel
tunables are answered there (see :mod:`ops.node.mounts`), so
``protectKernelDefaults`` stays off without touching the machine.
"""

from __future__ import annotations

import json
from pathlib import Path

from ops.node.layout import CGROUP_ROOT, NODE_IP, NODE_NAME, Layout


def config(layout: Layout) -> dict[str, object]:
    directory = layout.kubelet_dir
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "healthzBindAddress": "127.0.0.1",
        "readOnlyPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(layout.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": CGROUP_ROOT,
        "failCgroupV1": False,
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "staticPodPath": str(directory / "manifests"),
        "podLogsDir": str(layout.root / "pod-logs"),
        "volumePluginDir": str(directory / "volume-plugins"),
        "resolvConf": str(directory / "resolv.conf"),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "protectKernelDefaults": False,
        "serializeImagePulls": False,
        "registerNode": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
    }


def argv(binary: Path, layout: Layout) -> list[str]:
    directory = layout.kubelet_dir
    for sub in ("manifests", "volume-plugins", "pki"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (layout.root / "pod-logs").mkdir(parents=True, exist_ok=True)
    (directory / "resolv.conf").write_text("# nicpool node: pods get no resolver\n")
    path = directory / "config.json"
    path.write_text(json.dumps(config(layout), indent=2) + "\n")
    return [
        str(binary),
        f"--config={path}",
        f"--kubeconfig={layout.node_kubeconfigs / 'kubelet.kubeconfig'}",
        f"--root-dir={directory / 'root'}",
        f"--cert-dir={directory / 'pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        "--v=1",
    ]
