"""Pods that have finished (phase Succeeded or Failed) give their addresses back (issue 11).

Jobs and evicted pods stay in the API long after they ran; Kube-OVN releases
their addresses, and so does nicpool, StatefulSet retention aside. No
kubelet runs here, so the test writes ``status.phase`` as a kubelet would.
The production controller runs in this process (cool-down off, so a freed
address can go straight to the next pod and show that it was freed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import wait_for
from ops.lab.kube import ControlPlane
from store.core.identity import AttachmentRef, PodRef, Provider
from tests.controller.inprocess import InProcessController, start_controller

pytestmark = pytest.mark.controller

NETWORKS = "k8s.v1.cni.cncf.io/networks"


@pytest.fixture
def small(control_plane: ControlPlane, kube_namespace: str) -> Iterator[tuple[Cluster, str, str]]:
    """A NAD and a /29 Subnet (.2 .. .6); yields (cluster, namespace, provider)."""
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    provider = f"net.{ns}"
    config = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": provider}}
    cluster.create_nad(ns, "net", json.dumps(config))
    cluster.create_subnet(f"{ns}-fin", provider=provider, cidrBlock="10.99.0.0/29")
    yield cluster, ns, provider
    cluster.delete_cluster_object("subnets", f"{ns}-fin")


@pytest.fixture
def controller(control_plane: ControlPlane) -> Iterator[InProcessController]:
    running = start_controller(control_plane, address_cooldown=0.0, refusal_base=3600.0)
    yield running
    running.stop()


def address(cluster: Cluster, ns: str, pod: str, provider: str) -> str:
    return cluster.allocated(ns, pod, provider)[f"{provider}.kubernetes.io/ip_address"]


def fill(cluster: Cluster, ns: str, provider: str) -> dict[str, str]:
    held = {}
    for n in range(5):
        cluster.create_pod(ns, f"p{n}", {NETWORKS: f"{ns}/net"})
        held[f"p{n}"] = address(cluster, ns, f"p{n}", provider)
    return held


@pytest.mark.parametrize(
    ("phase", "reason"), [("Succeeded", ""), ("Failed", ""), ("Failed", "Evicted")]
)
def test_a_finished_pod_gives_its_address_to_the_next_pod(
    small: tuple[Cluster, str, str], controller: InProcessController, phase: str, reason: str
) -> None:
    cluster, ns, provider = small
    held = fill(cluster, ns, provider)
    cluster.create_pod(ns, "waiting", {NETWORKS: f"{ns}/net"})
    cluster.wait_event(ns, "waiting", "SubnetExhausted")

    cluster.set_pod_phase(ns, "p1", phase, reason)

    assert address(cluster, ns, "waiting", provider) == held["p1"]
    # The release wakes the waiting pod first, then deletes p1's IP object.
    wait_for("p1's IP object gone", lambda: cluster.ip_object(f"p1.{ns}.{provider}") is None)
    ref = AttachmentRef(PodRef(ns, "p1"), Provider(provider))
    assert controller.rt.ipam.get(ref) is None


def test_a_pod_finished_before_the_controller_saw_it_is_never_allocated(
    control_plane: ControlPlane, small: tuple[Cluster, str, str]
) -> None:
    cluster, ns, provider = small
    cluster.create_pod(ns, "done", {NETWORKS: f"{ns}/net"})
    cluster.set_pod_phase(ns, "done", "Succeeded")
    running = start_controller(control_plane, address_cooldown=0.0)
    try:
        cluster.create_pod(ns, "alive", {NETWORKS: f"{ns}/net"})
        address(cluster, ns, "alive", provider)  # the controller did its work meanwhile
        # Every pod revisited and nothing queued or running (other tests' refused
        # pods may wait in the backoff heap): "done" had every chance.
        running.wait_settled()
        assert f"{provider}.kubernetes.io/allocated" not in cluster.annotations(ns, "done")
        assert running.rt.ipam.get(AttachmentRef(PodRef(ns, "done"), Provider(provider))) is None
    finally:
        running.stop()


def test_a_failed_statefulset_pod_keeps_its_address_for_its_successor(
    small: tuple[Cluster, str, str], controller: InProcessController
) -> None:
    """The StatefulSet controller deletes a failed pod and creates it again: same address."""
    cluster, ns, provider = small
    labels = {"app": "db"}
    template = {
        "metadata": {"labels": labels, "annotations": {NETWORKS: f"{ns}/net"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": labels},
                 "template": template},
    }  # fmt: skip
    cluster.apps.create_namespaced_stateful_set(ns, sts)
    first = wait_for("db-0", lambda: cluster.pods(ns, "app=db"))[0]
    before = address(cluster, ns, "db-0", provider)

    cluster.set_pod_phase(ns, "db-0", "Failed", "Evicted")

    def successor() -> bool:
        pods = cluster.pods(ns, "app=db")
        return bool(pods) and pods[0].metadata.uid != first.metadata.uid

    wait_for("the StatefulSet to replace the failed db-0", successor)
    assert address(cluster, ns, "db-0", provider) == before  # the successor's
