"""A new leader allocates new pods while the pod list is still arriving (issue 13).

At 50,000 pods the list takes seconds; a restarted controller used to
campaign only once it was in, so a new pod waited for all of it. Now a new
pod (no ``allocated`` annotation) is queued as its list page arrives, while
the pods an earlier leader allocated wait for the whole list and the index.
The test serves the pod list one pod a page and holds it after chosen pods,
as a huge list would still be on its way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import wait_for
from ops.lab.kube import ControlPlane
from reconciler.kube.config import load_endpoint
from reconciler.kube.resources import PODS
from tests.controller.inprocess import UnreliableKube, start_controller, watch_syncs

pytestmark = pytest.mark.controller

NETWORKS = "k8s.v1.cni.cncf.io/networks"


@pytest.fixture
def visits(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Pod syncs by ``ns/name``."""
    counted: Counter[str] = Counter()
    watch_syncs(monkeypatch, "pod", lambda _rt, key: counted.update([key]))
    return counted


@pytest.fixture
def network(control_plane: ControlPlane, kube_namespace: str) -> Iterator[tuple[Cluster, str]]:
    cluster = Cluster(control_plane.api_client())
    provider = cluster.ipam_network(kube_namespace, f"{kube_namespace}-net", "10.94.0.0/24")
    yield cluster, provider
    cluster.delete_cluster_object("subnets", f"{kube_namespace}-net")


def test_a_new_leader_allocates_a_new_pod_before_the_pod_list_is_complete(
    control_plane: ControlPlane,
    kube_namespace: str,
    network: tuple[Cluster, str],
    visits: Counter[str],
) -> None:
    """Listed in order: ``a-new`` (created while nobody led), ``b-old`` (allocated by
    the earlier leader), then the rest of the list, held. ``a-new`` is allocated at
    once; ``b-old`` waits, unvisited, for the whole list, then keeps its addresses."""
    ns, (cluster, provider) = kube_namespace, network
    earlier = start_controller(control_plane)
    try:
        cluster.create_pod(ns, "b-old", {NETWORKS: f"{ns}/net"})
        before = cluster.allocated(ns, "b-old", provider)
    finally:
        earlier.stop()  # resigns: nobody leads while the new pod is created
    cluster.create_pod(ns, "a-new", {NETWORKS: f"{ns}/net"})
    kube = UnreliableKube(load_endpoint(str(control_plane.kubeconfig)), page=1)
    kube.hold_lists_after(PODS, f"{ns}/a-new")
    kube.hold_lists_after(PODS, f"{ns}/b-old")
    visits.clear()
    handle = start_controller(control_plane, prefix=earlier.prefix, kube=kube)
    try:
        cluster.allocated(ns, "a-new", provider)
        kube.release_lists_after(PODS, f"{ns}/a-new")  # b-old's page comes while leading
        pods = handle.rt.informer(PODS)
        wait_for("b-old listed", lambda: pods.get(f"{ns}/b-old"))
        handle.wait_idle()
        assert not pods.synced.is_set()
        assert not handle.rt.index.loaded  # read once the pod list is in
        assert visits[f"{ns}/b-old"] == 0
        kube.release_lists_after(PODS, f"{ns}/b-old")
        wait_for("the revisit of every pod once the list is in", lambda: visits[f"{ns}/b-old"])
        assert cluster.annotations(ns, "b-old") == before
    finally:
        kube.release_every_list()
        handle.stop()
