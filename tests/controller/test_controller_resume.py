"""A new controller finishes what an old one left: etcd is authoritative.

* Leases written but annotations missing (the old leader died in between):
  the new leader writes the annotations for the addresses already leased,
  allocating nothing new (``nicpool_workflow_resumes_total``).
* A pod deleted while no controller ran: the new leader frees its lease.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane
from store.config import EtcdSettings
from store.core.identity import AttachmentRef, PodRef, PodUID, Provider, SubnetName
from store.core.requests import UNFENCED, AllocationRequest
from store.etcd import connect
from store.leases import Ipam

pytestmark = pytest.mark.controller


@pytest.fixture
def setup(
    control_plane: ControlPlane, kube_namespace: str
) -> Iterator[tuple[Cluster, str, str, str, Ipam]]:
    assert control_plane.etcd is not None
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    provider = f"net.{ns}"
    config = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": provider}}
    cluster.create_nad(ns, "net", json.dumps(config))
    cluster.create_subnet(f"{ns}-resume", provider=provider, cidrBlock="10.90.0.0/24")
    prefix = f"/nicpool-resume-{uuid.uuid4().hex[:6]}/v1/"
    client = connect(EtcdSettings(endpoints=(control_plane.etcd.endpoint,)))
    yield cluster, ns, provider, prefix, Ipam(client, prefix)
    client.close()


def controller(control_plane: ControlPlane, prefix: str, name: str) -> ControllerProcess:
    assert control_plane.etcd is not None
    process = ControllerProcess(
        control_plane.kubeconfig, control_plane.etcd.endpoint, prefix, identity=name
    ).start()
    process.wait_leader()
    return process


def test_leases_without_annotations_are_finished_not_reallocated(
    control_plane: ControlPlane, setup: tuple[Cluster, str, str, str, Ipam]
) -> None:
    cluster, ns, provider, prefix, ipam = setup
    first = controller(control_plane, prefix, "first")
    try:  # the first controller registers the Subnet; then it "dies" before any pod exists
        wait_for("subnet registered", lambda: cluster.subnet(f"{ns}-resume").get("status"))
    finally:
        first.kill()
    cluster.create_pod(ns, "half-done", {"k8s.v1.cni.cncf.io/networks": f"{ns}/net"})
    uid = cluster.core.read_namespaced_pod("half-done", ns).metadata.uid
    # What the dead leader had committed to etcd before it could patch the pod:
    [leased] = ipam.allocate(
        [
            AllocationRequest(
                ref=AttachmentRef(PodRef(ns, "half-done"), Provider(provider)),
                uid=PodUID(uid),
                subnet=SubnetName(f"{ns}-resume"),
                interface="net1",
            )
        ],
        fence=UNFENCED,
    )
    second = controller(control_plane, prefix, "second")
    try:
        got = cluster.allocated(ns, "half-done", provider)
        assert got[f"{provider}.kubernetes.io/ip_address"] == leased.ip_csv()
        assert (second.metric("nicpool_workflow_resumes_total") or 0) >= 1
        assert len([a for a in ipam.attachments() if a.ref.pod.namespace == ns]) == 1
    finally:
        second.stop()


def test_a_pod_deleted_while_no_controller_ran_loses_its_lease(
    control_plane: ControlPlane, setup: tuple[Cluster, str, str, str, Ipam]
) -> None:
    cluster, ns, provider, prefix, ipam = setup
    first = controller(control_plane, prefix, "first")
    cluster.create_pod(ns, "short-lived", {"k8s.v1.cni.cncf.io/networks": f"{ns}/net"})
    cluster.allocated(ns, "short-lived", provider)
    first.stop()
    cluster.delete_pod(ns, "short-lived")
    assert [a for a in ipam.attachments() if a.ref.pod.namespace == ns]  # still leased
    second = controller(control_plane, prefix, "second")
    try:
        wait_for(
            "lease freed", lambda: not [a for a in ipam.attachments() if a.ref.pod.namespace == ns]
        )
        wait_for(
            "IP object deleted", lambda: cluster.ip_object(f"short-lived.{ns}.{provider}") is None
        )
    finally:
        second.stop()
