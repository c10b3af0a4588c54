"""Releases: who gets woken, and what a refused release leaves alone (issue 8, item 15).

Real apiserver and etcd, the production controller in this process (so a
refusal backoff of an hour can tell "woken by the release" from "retried by
its backoff").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import wait_for
from ops.lab.kube import ControlPlane
from reconciler.kube.resources import IPS
from reconciler.podflow import release_unless_retained
from store.core.identity import AttachmentRef, PodRef, PodUID, Provider, SubnetName
from store.core.requests import UNFENCED, AllocationRequest
from store.leases import Ipam
from tests.controller.inprocess import InProcessController, network_and_controller, start_controller
from tests.support.ctl import Ctl

pytestmark = pytest.mark.controller

NETWORKS = "k8s.v1.cni.cncf.io/networks"


@pytest.fixture
def small(
    control_plane: ControlPlane, kube_namespace: str
) -> Iterator[tuple[Cluster, str, str, InProcessController]]:
    """A /29 subnet (five addresses: .2 .. .6) and a controller whose refusals wait an hour."""
    for cluster, provider, controller in network_and_controller(
        control_plane, kube_namespace, "10.95.0.0/29", refusal_base=3600.0
    ):
        yield cluster, kube_namespace, provider, controller


def test_a_pod_refused_for_want_of_addresses_is_woken_by_a_release(
    small: tuple[Cluster, str, str, InProcessController],
) -> None:
    cluster, ns, provider, _ = small
    for n in range(5):
        cluster.create_pod(ns, f"p{n}", {NETWORKS: f"{ns}/net"})
        cluster.allocated(ns, f"p{n}", provider)
    cluster.create_pod(ns, "waiting", {NETWORKS: f"{ns}/net"})
    cluster.wait_event(ns, "waiting", "SubnetExhausted")
    freed = cluster.annotations(ns, "p2")[f"{provider}.kubernetes.io/ip_address"]
    cluster.delete_pod(ns, "p2")
    got = cluster.allocated(ns, "waiting", provider)  # long before its hour of backoff
    assert got[f"{provider}.kubernetes.io/ip_address"] == freed


def test_a_release_the_store_refuses_keeps_the_successors_records(
    small: tuple[Cluster, str, str, InProcessController],
) -> None:
    """The index still holds the old pod's attachment; the store holds the new pod's.
    Releasing the old one is refused by uid, and must not drop the successor's
    index entry or delete the IP object the successor now owns."""
    cluster, ns, provider, controller = small
    cluster.create_pod(ns, "db", {NETWORKS: f"{ns}/net"})
    cluster.allocated(ns, "db", provider)
    controller.wait_index_loaded()
    ref = AttachmentRef(PodRef(ns, "db"), Provider(provider))
    stale = controller.rt.index.get(ref)
    assert stale is not None
    # A successor (uid "successor") took the NIC over, as another leader would.
    [current] = Ipam(controller.etcd, controller.prefix).allocate(
        [
            AllocationRequest(
                ref=ref,
                uid=PodUID("successor"),
                subnet=SubnetName(f"{ns}-net"),
                interface="net1",
                replaces=stale.uid,
            )
        ],
        fence=UNFENCED,
    )
    assert not release_unless_retained(controller.rt, stale)
    assert controller.rt.index.get(ref) == current
    assert controller.rt.ipam.get(ref) == current
    assert cluster.ip_object(f"db.{ns}.{provider}") is not None


def test_an_ip_object_whose_delete_failed_is_deleted_when_the_release_is_retried(
    small: tuple[Cluster, str, str, InProcessController],
) -> None:
    """The release commits in etcd, then deleting the pod's IP object fails (a reset
    connection to the apiserver). The retry must still delete it. Found by the fault
    tier (seed 21, mixed faults): such IP objects outlived their pods for good."""
    cluster, ns, provider, controller = small
    cluster.create_pod(ns, "gone", {NETWORKS: f"{ns}/net"})
    cluster.allocated(ns, "gone", provider)
    controller.wait_index_loaded()
    name = f"gone.{ns}.{provider}"
    wait_for("the pod's IP object", lambda: cluster.ip_object(name))
    controller.kube.fail_next_delete(IPS)
    cluster.delete_pod(ns, "gone")
    ref = AttachmentRef(PodRef(ns, "gone"), Provider(provider))
    wait_for("the lease released", lambda: controller.rt.ipam.get(ref) is None)
    wait_for("the IP object deleted", lambda: cluster.ip_object(name) is None, 30)
    assert controller.kube.failed_deletes == 1


def _ip_object(name: str, ns: str, labels: dict[str, str]) -> dict[str, Any]:
    spec = {"podName": name.split(".", maxsplit=1)[0], "namespace": ns, "subnet": f"{ns}-small"}
    spec |= {"ipAddress": "10.95.0.6", "v4IpAddress": "10.95.0.6", "macAddress": "", "podType": ""}
    return {
        "apiVersion": "kubeovn.io/v1",
        "kind": "IP",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def test_an_ip_object_left_without_a_lease_is_collected_and_no_other(
    control_plane: ControlPlane, kube_namespace: str
) -> None:
    """An IP object nicpool wrote can outlive its lease (the release committed, then its
    DELETE failed and leadership moved before the retry): the GC collects it after the
    grace. One nicpool did not write stays. Found by the fault tier (seed 2026, mixed)."""
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    controller = start_controller(control_plane, gc_interval=0.5, gc_grace=2.0, status_interval=0.5)
    try:
        controller.wait_index_loaded()
        mine, theirs = f"ghost.{ns}.net.{ns}", f"kubeovn.{ns}.net.{ns}"
        nicpool = {"app.kubernetes.io/managed-by": "nicpool"}
        for name, labels in ((mine, nicpool), (theirs, {})):
            cluster.custom.create_cluster_custom_object(
                "kubeovn.io", "v1", "ips", _ip_object(name, ns, labels)
            )
        wait_for("the leaseless IP object collected", lambda: cluster.ip_object(mine) is None, 60)
        assert cluster.ip_object(theirs) is not None
    finally:
        controller.stop()
        cluster.delete_cluster_object("ips", theirs)


def _statefulset(ns: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {
            "replicas": 1,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}, "annotations": annotations},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


def test_release_force_frees_a_retained_address_once_the_pod_is_gone(
    control_plane: ControlPlane, small: tuple[Cluster, str, str, InProcessController]
) -> None:
    """A StatefulSet pod's address survives its pod (retention). ``release --force``
    while the pod lives marks it: nothing is freed under the live pod, and when the
    pod goes the controller frees it instead of keeping it for the successor."""
    cluster, ns, provider, controller = small
    assert control_plane.etcd is not None
    cluster.apps.create_namespaced_stateful_set(ns, _statefulset(ns, {NETWORKS: f"{ns}/net"}))
    wait_for("db-0 created", lambda: cluster.pods(ns, "app=db"))
    first = cluster.allocated(ns, "db-0", provider)[f"{provider}.kubernetes.io/ip_address"]
    ctl = Ctl(control_plane.etcd.endpoint, controller.prefix, str(control_plane.kubeconfig))

    marked = ctl.run("release", first, "--force")
    assert marked.returncode == 0, marked.stderr
    assert ctl.json("lease", "show", first)["pod"] == "db-0"  # still held: the pod lives

    old_uid = cluster.core.read_namespaced_pod("db-0", ns).metadata.uid
    cluster.core.delete_namespaced_pod("db-0", ns, grace_period_seconds=0)

    def recreated_and_allocated() -> bool:
        pods = [p for p in cluster.pods(ns, "app=db") if p.metadata.uid != old_uid]
        return bool(
            pods and (pods[0].metadata.annotations or {}).get(f"{provider}.kubernetes.io/allocated")
        )

    wait_for("db-0 recreated and allocated", recreated_and_allocated)
    second = cluster.annotations(ns, "db-0")[f"{provider}.kubernetes.io/ip_address"]
    assert second != first  # not kept for the successor
    assert ctl.run("lease", "show", first).returncode == 1  # freed
