"""Is each part of the node up? Asked from this machine, through the forwarded ports.

Each probe answers True or False and never raises for a part that is merely
not up yet; the bring-up polls them (:mod:`ops.node.node`).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from ops.node.kubectl import kubectl
from ops.node.layout import NODE_NAME, Layout
from ops.node.state import State

RBAC = Path(__file__).resolve().parent / "manifests" / "multus-rbac.yaml"


def _get(url: str, context: ssl.SSLContext | None = None, token: str | None = None) -> str | None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), context=context, timeout=2
        ) as response:
            return str(response.read().decode())
    except (OSError, urllib.error.HTTPError):
        return None


def etcd_tls(layout: Layout) -> ssl.SSLContext:
    """A client context for nicpool's etcd (nicpoolctl's identity; /health needs no role)."""
    context = ssl.create_default_context(cafile=str(layout.pki / "etcd-ca.crt"))
    context.load_cert_chain(
        str(layout.pki / "nicpool-admin.crt"), str(layout.pki / "nicpool-admin.key")
    )
    return context


def kube_etcd_ok(state: State) -> bool:
    body = _get(f"http://127.0.0.1:{state.ports['kube-etcd']}/health")
    return body is not None and '"health":"true"' in body


def nicpool_etcd_ok(layout: Layout, state: State) -> bool:
    url = f"https://127.0.0.1:{state.ports['nicpool-etcd']}/health"
    body = _get(url, etcd_tls(layout))
    return body is not None and '"health":"true"' in body


def apiserver_ready(layout: Layout, state: State) -> bool:
    context = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
    url = f"https://127.0.0.1:{state.ports['apiserver']}/readyz"
    return _get(url, context, state.tokens["admin"]) == "ok"


def containerd_ok(layout: Layout) -> bool:
    if not layout.containerd_socket.exists():
        return False
    done = subprocess.run(
        ["ctr", "--address", str(layout.containerd_socket), "version"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def node_ready(layout: Layout) -> bool:
    """Ready, and free of the not-ready taint (the node lifecycle controller's job)."""
    try:
        node = json.loads(kubectl(layout, "get", "node", NODE_NAME, "-o", "json", timeout=10))
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    ready = any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in node.get("status", {}).get("conditions", [])
    )
    taints = {t["key"] for t in node.get("spec", {}).get("taints", []) or []}
    return ready and "node.kubernetes.io/not-ready" not in taints


def apply_lab_rbac(layout: Layout) -> None:
    kubectl(layout, "apply", "-f", str(RBAC))
