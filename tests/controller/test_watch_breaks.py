"""No live pod loses its address when the pod watch breaks or lags (issue 8, items 8 and 9).

Real apiserver, real etcd, the production controller in this process with a
client whose pod watch the test breaks mid-stream or holds back.

* A watch broken mid-stream used to resume from the list's resourceVersion,
  so the apiserver replayed history: a pod deleted and recreated under one
  name came back as ``(old=live, new=dead)``, and the live pod's lease and IP
  object were freed.
* A cache that lags the apiserver (a failover, a slow watch) used to plan
  the dead pod over the live one, and the store replaced the live pod's
  attachment without proof that its owner was gone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import wait_for
from ops.lab.kube import ControlPlane
from reconciler.metrics import SYNC_RETRIES
from store.core.identity import AttachmentRef, PodRef, PodUID, Provider, SubnetName
from store.core.requests import UNFENCED, AllocationRequest
from store.leases import Ipam
from tests.controller.inprocess import InProcessController, network_and_controller

pytestmark = pytest.mark.controller

NETWORKS = "k8s.v1.cni.cncf.io/networks"


@pytest.fixture
def setup(
    control_plane: ControlPlane, kube_namespace: str
) -> Iterator[tuple[Cluster, str, str, InProcessController]]:
    for cluster, provider, controller in network_and_controller(
        control_plane, kube_namespace, "10.91.0.0/24"
    ):
        yield cluster, kube_namespace, provider, controller


def recreate(cluster: Cluster, ns: str, name: str, provider: str) -> tuple[str, str]:
    """Delete the pod and create it again under the same name; its new uid and address."""
    cluster.delete_pod(ns, name)
    cluster.create_pod(ns, name, {NETWORKS: f"{ns}/net"})
    got = cluster.allocated(ns, name, provider)
    uid = cluster.core.read_namespaced_pod(name, ns).metadata.uid
    return uid, got[f"{provider}.kubernetes.io/ip_address"]


def test_a_watch_broken_mid_stream_never_frees_a_live_pods_lease(
    setup: tuple[Cluster, str, str, InProcessController],
) -> None:
    cluster, ns, provider, controller = setup
    cluster.create_pod(ns, "web", {NETWORKS: f"{ns}/net"})
    cluster.allocated(ns, "web", provider)
    uid, address = recreate(cluster, ns, "web", provider)
    ref = AttachmentRef(PodRef(ns, "web"), Provider(provider))
    before = controller.rt.ipam.get(ref)
    assert before is not None and before.uid == uid

    controller.kube.break_pod_watch()
    cluster.create_pod(ns, "marker", {NETWORKS: f"{ns}/net"})  # an event to break on
    wait_for("the pod watch to break", lambda: controller.kube.pod_watch_breaks == 1)
    # Events are delivered in order: once the marker (created after the break)
    # is allocated, anything a replay would have done has been done.
    cluster.create_pod(ns, "marker-2", {NETWORKS: f"{ns}/net"})
    cluster.allocated(ns, "marker-2", provider)

    after = controller.rt.ipam.get(ref)
    assert after == before, "the live pod's lease was released or replaced"
    annotations = cluster.annotations(ns, "web")
    assert annotations[f"{provider}.kubernetes.io/ip_address"] == address
    assert cluster.ip_object(f"web.{ns}.{provider}") is not None


def test_a_lagging_cache_never_plans_a_dead_pod_over_a_live_one(
    setup: tuple[Cluster, str, str, InProcessController],
) -> None:
    cluster, ns, provider, controller = setup
    cluster.create_pod(ns, "db", {NETWORKS: f"{ns}/net"})
    cluster.allocated(ns, "db", provider)
    old_uid = cluster.core.read_namespaced_pod("db", ns).metadata.uid
    controller.wait_index_loaded()

    controller.kube.hold_pod_watch()  # the controller's cache keeps the old pod
    cluster.delete_pod(ns, "db")
    cluster.create_pod(ns, "db", {NETWORKS: f"{ns}/net"})
    new_uid = cluster.core.read_namespaced_pod("db", ns).metadata.uid
    # What another leader (whose cache was current) wrote for the live pod:
    ref = AttachmentRef(PodRef(ns, "db"), Provider(provider))
    [live] = Ipam(controller.etcd, controller.prefix).allocate(
        [
            AllocationRequest(
                ref=ref,
                uid=PodUID(new_uid),
                subnet=SubnetName(f"{ns}-net"),
                interface="net1",
                replaces=PodUID(old_uid),
            )
        ],
        fence=UNFENCED,
    )
    behind = SYNC_RETRIES.labels("CacheBehind")
    seen = behind._value.get()
    controller.rt.index.put(live)  # as a new leader's index load would find it
    controller.rt.queue.add(("pod", f"{ns}/db"))
    wait_for("the controller to notice its cache is behind", lambda: behind._value.get() > seen)

    assert controller.rt.ipam.get(ref) == live, "the live pod's attachment was replaced"

    controller.kube.release_pod_watch()
    got = cluster.allocated(ns, "db", provider)
    assert got[f"{provider}.kubernetes.io/ip_address"] == live.ip_csv()
