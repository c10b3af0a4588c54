"""nicpool on the node, installed the way ``ops/deploy/README.md`` tells a user to.

1. the namespace (``base/namespace.yaml``);
2. the Secrets ``nicpool-etcd-controller`` and ``nicpool-etcd-agent`` from the
   lab's etcd client certificates (CN ``nicpool-controller``, ``nicpool-agent``)
   (``kubectl create secret generic --from-file``, as the README shows);
3. ``kubectl apply -k ops/deploy/overlays/lab``: the base with the lab's image
   name, etcd endpoint and election TTL (see that kustomization);
4. wait until the agent DaemonSet and the 3-replica controller Deployment have
   rolled out (their readiness probes pass: the agent reads etcd, the
   controllers have synced) and one controller leads.

Everything goes through kubectl and the apiserver: the kubelet pulls nothing
(the image was imported), the init container installs ``kube-ovn`` into the
node's /opt/cni/bin, RBAC is the apiserver's.
"""

from __future__ import annotations

import time

from ops.lab.binaries import REPO
from ops.node.kubectl import kubectl
from ops.node.layout import Layout

OVERLAY = REPO / "ops" / "deploy" / "overlays" / "lab"
NAMESPACE = "nicpool-system"
SECRETS = {"nicpool-etcd-controller": "nicpool-controller", "nicpool-etcd-agent": "nicpool-agent"}
"""Secret -> the etcd user (certificate CN) it carries."""


def install(layout: Layout, *, timeout: float = 240.0) -> float:
    """Deploy and wait; returns the seconds it took."""
    started = time.monotonic()
    kubectl(layout, "apply", "-f", str(REPO / "ops" / "deploy" / "base" / "namespace.yaml"))
    pki = layout.pki
    for secret, user in SECRETS.items():
        manifest = kubectl(
            layout, "-n", NAMESPACE, "create", "secret", "generic", secret,
            f"--from-file=ca.crt={pki / 'etcd-ca.crt'}",
            f"--from-file=tls.crt={pki / f'{user}.crt'}",
            f"--from-file=tls.key={pki / f'{user}.key'}",
            "--dry-run=client", "-o", "yaml",
        )  # fmt: skip
        kubectl(layout, "apply", "-f", "-", stdin=manifest)
    kubectl(layout, "apply", "-k", str(OVERLAY))
    wait_rolled_out(layout, timeout=timeout)
    return time.monotonic() - started


def wait_rolled_out(layout: Layout, *, timeout: float = 240.0) -> None:
    for workload in ("daemonset/nicpool-agent", "deployment/nicpool-controller"):
        kubectl(
            layout, "-n", NAMESPACE, "rollout", "status", workload, f"--timeout={int(timeout)}s",
            timeout=timeout + 10,
        )  # fmt: skip
