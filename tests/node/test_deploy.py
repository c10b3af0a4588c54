"""nicpool as ``kubectl apply -k`` leaves it on a real node, under a real kubelet.

The controller's three replicas run as uid 65532 and read their etcd key
(the Secret's files are group 65532 through ``fsGroup``); the agent's init
container installed ``kube-ovn`` into the node's /opt/cni/bin with
``python -m cnibin.install`` (one ``-IS`` file, compiled cache beside it);
the agent's probe endpoints each answer for themselves; the apiserver
enforces the manifests' RBAC.
"""

from __future__ import annotations

import subprocess

import pytest

from ops.node.cluster import AGENT_SELECTOR, CONTROLLER_SELECTOR, NICPOOL, NodeCluster

pytestmark = pytest.mark.node


def test_controller_replicas_run_as_nonroot_and_read_their_etcd_key(node: NodeCluster) -> None:
    pods = node.pods(NICPOOL, CONTROLLER_SELECTOR)
    assert len(pods) == 3 and all(node.ready(p) for p in pods)
    name = pods[0]["metadata"]["name"]
    assert node.exec(name, "id", "-u", namespace=NICPOOL).strip() == "65532"
    key = node.exec(name, "head", "-c", "27", "/etc/nicpool/etcd/tls.key", namespace=NICPOOL)
    assert key.startswith("-----BEGIN")


def test_init_container_installed_the_plugin_with_the_installer(node: NodeCluster) -> None:
    plugin = node.layout.cni_bin / "kube-ovn"
    assert plugin.read_text().splitlines()[0] == "#!/usr/bin/python3 -IS"
    assert (node.layout.cni_bin / ".kube-ovn.cpython-311.pyc").exists(), "installer warm-up"
    done = subprocess.run(
        [str(plugin)], input=b"{}", env={"CNI_COMMAND": "VERSION"}, capture_output=True, check=False
    )
    assert done.returncode == 0 and b"1.1.0" in done.stdout, done


def test_agent_probe_endpoints_answer_for_themselves(node: NodeCluster) -> None:
    (agent,) = node.pods(NICPOOL, AGENT_SELECTOR)
    name = agent["metadata"]["name"]
    assert node.proxy_get(NICPOOL, name, 10666, "/healthz").strip() == "ok"
    assert node.proxy_get(NICPOOL, name, 10666, "/readyz").strip() == "ok"
    assert "nicpool_cni_request_seconds" in node.proxy_get(NICPOOL, name, 10666, "/metrics")
    with pytest.raises(RuntimeError, match=r"NotFound|not found"):
        node.proxy_get(NICPOOL, name, 10666, "/no-such-path")


@pytest.mark.parametrize(
    ("account", "verb", "resource", "allowed"),
    [
        ("nicpool-controller", "patch", "pods", "yes"),
        ("nicpool-controller", "create", "ips.kubeovn.io", "yes"),
        ("nicpool-controller", "list", "secrets", "no"),
        ("nicpool-agent", "patch", "pods", "no"),
    ],
)
def test_the_apiserver_enforces_the_manifests_rbac(
    node: NodeCluster, account: str, verb: str, resource: str, allowed: str
) -> None:
    user = f"--as=system:serviceaccount:{NICPOOL}:{account}"
    try:
        answer = node.kubectl("auth", "can-i", verb, resource, "-A", user).strip()
    except RuntimeError as refused:  # can-i exits 1 when the answer is no
        answer = str(refused).rsplit(":", 1)[-1].strip()
    assert answer == allowed
