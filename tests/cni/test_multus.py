"""The Multus step: the real Multus thin plugin, a real kube-apiserver, the
seed's NAD and pod annotations, delegating to macvlan, which execs kube-ovn.

Multus (v4, built once from the Go module proxy by
ops/tools/build-multus.sh into a cache outside the repository) reads the
pod and its ``k8s.v1.cni.cncf.io/networks`` annotation from the apiserver,
fetches the NetworkAttachmentDefinition, runs the cluster network (a bridge
with host-local, standing in for the primary CNI) as eth0 and macvlan as
net1 with Multus's CNI_ARGS, and writes the network-status annotation back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.lab.cni import (
    AgentProcess,
    CniOutcome,
    exec_plugin,
    multus_binary,
    multus_config,
    netns_shims,
    pod_args,
)
from ops.lab.examples import seed_nad
from ops.lab.kube import ControlPlane, find_assets
from ops.lab.netns import MASTER, Lab, Netns
from tests.cni.conftest import Leases, container_id
from tests.support.components import missing

pytestmark = pytest.mark.cni


@pytest.fixture(scope="module")
def multus() -> Path:
    binary = multus_binary()
    if binary is None:
        missing("Multus thin plugin", "bash ops/tools/build-multus.sh failed (Go module proxy?)")
    assert binary is not None
    return binary


@pytest.fixture(scope="module")
def control_plane() -> Iterator[ControlPlane]:
    assets = find_assets()
    if assets is None:
        missing(
            "kube-apiserver", "run bash ops/tools/build-test-binaries.sh or set KUBEBUILDER_ASSETS"
        )
    assert assets is not None
    with ControlPlane(assets=assets, controller_manager=False) as cp:
        cp.install_crds()
        cp.apply_yaml(yaml.safe_dump(seed_nad(master=MASTER)))
        yield cp


def create_pod(cp: ControlPlane, name: str, annotations: dict[str, str]) -> dict[str, Any]:
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"containers": [{"name": "c", "image": "docker.io/library/alpine:edge"}]},
    }
    (pod,) = cp.apply_yaml(json.dumps(doc))
    return pod


def cluster_network(tmp_path: Path) -> dict[str, Any]:
    return {
        "cniVersion": "0.3.1",
        "name": "cluster",
        "type": "bridge",
        "bridge": "br-cluster",
        "ipam": {
            "type": "host-local",
            "subnet": "10.244.0.0/24",
            "dataDir": str(tmp_path / "host-local"),
        },
    }


@pytest.fixture
def node(lab: Lab, agent: AgentProcess, cni_path: list[Path], tmp_path: Path) -> dict[str, Any]:
    """The node side: test host netns, agent socket, CNI_PATH with netns shims."""
    assert lab.host is not None
    shims = netns_shims(tmp_path / "shims", lab.host.name, ("macvlan", "bridge"))
    return {"lab": lab, "cni_path": [shims, *cni_path], "socket_dir": agent.socket.parent}


class MultusRun:
    """Execs the real Multus for one pod, as kubelet would."""

    def __init__(self, multus: Path, cp: ControlPlane, node: dict[str, Any], tmp: Path) -> None:
        self.multus, self.cp, self.node, self.tmp = multus, cp, node, tmp
        self.config = multus_config(
            kubeconfig=cp.kubeconfig,
            cache_dir=tmp / "multus",
            bin_dir=node["cni_path"][1],
            cluster_network=cluster_network(tmp),
        )

    def __call__(self, command: str, pod: dict[str, Any], netns: Netns, cid: str) -> CniOutcome:
        meta = pod["metadata"]
        outcome = exec_plugin(
            self.multus,
            command,
            self.config,
            cni_path=self.node["cni_path"],
            container_id=cid,
            ifname="eth0",
            netns_path=netns.path,
            cni_args=pod_args(meta["namespace"], meta["name"], meta["uid"]),
            openvswitch_dir=self.node["socket_dir"],
        )
        log = self.tmp / "multus" / "multus.log"
        outcome.stderr += log.read_text()[-3000:] if log.exists() else ""
        return outcome

    def network_status(self, name: str) -> list[dict[str, Any]]:
        from kubernetes.client import CoreV1Api

        live = CoreV1Api(self.cp.api_client()).read_namespaced_pod(name, "default")
        annotations = (live.metadata.annotations if live.metadata else None) or {}
        return list(json.loads(annotations["k8s.v1.cni.cncf.io/network-status"]))


@pytest.fixture
def multus_run(
    multus: Path, control_plane: ControlPlane, node: dict[str, Any], tmp_path: Path
) -> MultusRun:
    return MultusRun(multus, control_plane, node, tmp_path)


def test_multus_default_route_through_macvlan(
    multus_run: MultusRun, node: dict[str, Any], leases: Leases
) -> None:
    """The seed's samplepod-route: networks JSON with default-route 172.17.0.1."""
    networks = [{"name": "macvlan", "namespace": "default", "default-route": ["172.17.0.1"]}]
    pod = create_pod(
        multus_run.cp, "samplepod-route", {"k8s.v1.cni.cncf.io/networks": json.dumps(networks)}
    )
    leases.seed_subnet()
    att = leases.allocate(
        "samplepod-route", "macvlan.default", uid=pod["metadata"]["uid"], default_route=True
    )
    netns = node["lab"].pod("route")
    cid = container_id()
    added = multus_run("ADD", pod, netns, cid)
    assert added.ok, added.stdout + added.stderr
    assert netns.addresses("net1") == [f"{att.ips[0].ip}/16"]
    route = netns.default_route()
    assert route is not None
    assert (route["gateway"], route["dev"]) == ("172.17.0.1", "net1")
    assert multus_run("DEL", pod, netns, cid).ok


def test_multus_macvlan_as_the_main_nic(
    multus_run: MultusRun, node: dict[str, Any], leases: Leases
) -> None:
    """The seed's samplepod-macvlan: v1.multus-cni.io/default-network: default/macvlan."""
    pod = create_pod(
        multus_run.cp, "samplepod-macvlan", {"v1.multus-cni.io/default-network": "default/macvlan"}
    )
    leases.seed_subnet()
    att = leases.allocate(
        "samplepod-macvlan", "macvlan.default", uid=pod["metadata"]["uid"], interface="eth0"
    )
    netns = node["lab"].pod("main")
    cid = container_id()
    added = multus_run("ADD", pod, netns, cid)
    assert added.ok, added.stdout + added.stderr
    assert netns.addresses("eth0") == [f"{att.ips[0].ip}/16"]
    route = netns.default_route()
    assert route is not None
    assert (route["gateway"], route["dev"]) == ("172.17.0.1", "eth0")
    assert multus_run("DEL", pod, netns, cid).ok
    assert "eth0" not in netns.links()


def test_real_multus_delegates_to_macvlan_and_kube_ovn(
    multus_run: MultusRun, node: dict[str, Any], leases: Leases
) -> None:
    """The seed's samplepod: k8s.v1.cni.cncf.io/networks: default/macvlan."""
    pod = create_pod(multus_run.cp, "samplepod", {"k8s.v1.cni.cncf.io/networks": "default/macvlan"})
    leases.seed_subnet()
    att = leases.allocate("samplepod", "macvlan.default", uid=pod["metadata"]["uid"])
    netns = node["lab"].pod("samplepod")
    cid = container_id()
    added = multus_run("ADD", pod, netns, cid)
    assert added.ok, added.stdout + added.stderr
    assert netns.addresses("net1") == [f"{att.ips[0].ip}/16"]
    assert netns.addresses("eth0")[0].startswith("10.244.0.")
    # A secondary NIC leaves the cluster network's routing alone.
    assert netns.default_route() is None
    status = multus_run.network_status("samplepod")
    macvlan = next(s for s in status if s["name"] == "default/macvlan")
    assert macvlan["interface"] == "net1"
    assert macvlan["ips"] == [att.ips[0].ip]

    deleted = multus_run("DEL", pod, netns, cid)
    assert deleted.ok, deleted.stdout + deleted.stderr
    assert "net1" not in netns.links()
